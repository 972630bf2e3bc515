#!/usr/bin/env bash
# Idle CPU of `nswatch top`: the UI runs under tmux (a real terminal) on this machine for
# DURATION seconds (default 20) and its CPU time is read from /proc/PID/stat (utime +
# stime, in clock ticks), after a settling time that leaves out the start-up (the /proc scan
# and the probe's load). Run as root on a quiet machine:
#
#   CARGO_TARGET_DIR=/tmp/target-tui benches/top_idle_cpu.sh [DURATION] [extra top args]
#
# Prints the CPU time used and the share of one core.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
shift || true
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --workspace
BIN="$TARGET/release/nswatch"
SOCK="nswatch-idle-$$"
trap 'tmux -L "$SOCK" kill-server 2>/dev/null || true' EXIT
tmux -L "$SOCK" new-session -d -s idle -x 120 -y 40 "$BIN" top --export-dir /tmp "$@"
sleep 3
PID=$(tmux -L "$SOCK" display-message -p -t idle '#{pane_pid}')
grep -q nswatch "/proc/$PID/comm" || { echo "nswatch top is not running"; tmux -L "$SOCK" capture-pane -p -t idle; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks); W0=$(date +%s.%N)
sleep "$DURATION"
T1=$(ticks); W1=$(date +%s.%N)
tmux -L "$SOCK" capture-pane -p -t idle | head -2
awk -v t="$((T1 - T0))" -v hz="$HZ" -v w0="$W0" -v w1="$W1" 'BEGIN {
  cpu = t / hz; wall = w1 - w0;
  printf "nswatch top, idle: %.2f s of CPU in %.1f s = %.2f%% of one core\n", cpu, wall, 100 * cpu / wall }'
tmux -L "$SOCK" send-keys -t idle q
