#!/usr/bin/env bash
# Bootstrap cost: how long nswatch takes to learn the machine from /proc (every thread's 7
# namespace links, stat, the model built, groups named), against `lsns` (util-linux) on the
# same machine in the same run.
#
#   sudo benches/bootstrap_vs_lsns.sh            # 10,000 extra tasks
#   sudo env TASKS=20000 CONTAINERS=100 REPS=7 benches/bootstrap_vs_lsns.sh
#
# Figures, medians of REPS runs, interleaved so that load drift hits all alike:
#   census     the library's census::take (scan + model), timed inside `nswatch ps --stats`,
#              through the BPF task iterator (when it runs: root, BTF) and from /proc
#              (`ps --no-bpf`, the fallback)
#   ps         the whole `nswatch ps --format json` command, process start to exit, both ways
#   lsns       the whole `lsns --json` command (it reads /proc/PID/ns of processes only,
#              not of every thread, and builds no groups: less work than nswatch's)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TASKS=${TASKS:-10000}
CONTAINERS=${CONTAINERS:-0}
REPS=${REPS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bootstrap-bench-target}
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin nswatch
NSWATCH=$CARGO_TARGET_DIR/release/nswatch
WORK=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null; rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/many_tasks" "$ROOT/benches/many_tasks.c"
# The holder keeps the tasks until its stdin closes.
exec 3> >("$WORK/many_tasks" "$TASKS" "$CONTAINERS" > "$WORK/ready")
while ! grep -q ready "$WORK/ready" 2>/dev/null; do sleep 0.2; done
# ls fails when a task exits while it lists (set -e, pipefail): count what it saw.
total=$( (ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null || true) | wc -l)
procs=$( (ls -d /proc/[0-9]* 2>/dev/null || true) | wc -l)
echo "machine: $total tasks in $procs processes ($(cat "$WORK/ready"))"

# Microseconds, read by bash itself (a `date` process would be timed too).
now_ms() { echo "${EPOCHREALTIME/[^0-9]/}"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$WORK/lsns"
for way in bpf proc; do : > "$WORK/census-$way"; : > "$WORK/ps-$way"; done
ps_run() { # WAY [FLAGS]: one timed `nswatch ps`, its census time kept
  local way=$1; shift
  t0=$(now_ms); "$NSWATCH" ps --format json --stats "$@" > /dev/null 2> "$WORK/err-$way"; t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/ps-$way"
  sed -n 's/.*census of .* in \([0-9.]*\) ms.*/\1/p' "$WORK/err-$way" | awk '{print int($1*1000)}' >> "$WORK/census-$way"
}
for _ in $(seq "$REPS"); do
  ps_run bpf
  ps_run proc --no-bpf
  t0=$(now_ms); lsns --json > /dev/null; t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/lsns"
done
cb=$(median < "$WORK/census-bpf"); pb=$(median < "$WORK/ps-bpf")
cp=$(median < "$WORK/census-proc"); pp=$(median < "$WORK/ps-proc")
l=$(median < "$WORK/lsns")
grep -h 'census of' "$WORK/err-bpf" "$WORK/err-proc" || true
awk -v cb="$cb" -v pb="$pb" -v cp="$cp" -v pp="$pp" -v l="$l" -v n="$total" 'BEGIN {
  printf "census (scan + model), task iterator %8.1f ms  %6.2f us/task\n", cb/1000, cb/n
  printf "census (scan + model), /proc         %8.1f ms  %6.2f us/task\n", cp/1000, cp/n
  printf "nswatch ps --format json, iterator   %8.1f ms\n", pb/1000
  printf "nswatch ps --format json, /proc      %8.1f ms\n", pp/1000
  printf "lsns --json                          %8.1f ms\n", l/1000
  printf "ratio lsns / nswatch ps (iterator)   %8.2fx\n", l/pb
}'
