#!/usr/bin/env bash
# Idle CPU of `nswatch record`: what it costs to watch a machine where little happens.
# nswatch records for DURATION seconds (default 20) after a settling time that leaves out
# the start-up (the census and the probe's load); its CPU is read from
# /proc/PID/task/*/schedstat (ns on a CPU, exact). Run as root on a quiet machine:
#
#   sudo benches/record_idle_cpu.sh [DURATION] [extra record args, e.g. -o /tmp/x.ndjson]
#
# Prints the CPU used, the share of one core, and the wake-ups from nswatch's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
shift || true
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/live-bench-target}
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/nswatch"
ARGS=("$@")
[[ ${#ARGS[@]} -gt 0 ]] || ARGS=(--count-only)
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
"$BIN" record "${ARGS[@]}" 2>"$ERR" >/dev/null &
PID=$!
sleep 3
cpu_ns() { cat /proc/"$PID"/task/*/schedstat | awk '{s += $1} END {print s}'; }
C0=$(cpu_ns); W0=$(date +%s%N)
sleep "$DURATION"
C1=$(cpu_ns); W1=$(date +%s%N)
kill -INT "$PID"
wait "$PID"
awk -v c="$((C1 - C0))" -v w="$((W1 - W0))" 'BEGIN {
  printf "nswatch record, idle: %.1f ms of CPU in %.1f s = %.3f%% of one core\n", c / 1e6, w / 1e9, 100 * c / w }'
grep -o "^nswatch record: [0-9]* records in [0-9.]* s" "$ERR" || true
grep -o "wake-ups [0-9]*" "$ERR" || true
