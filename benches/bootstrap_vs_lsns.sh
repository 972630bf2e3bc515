#!/usr/bin/env bash
# Bootstrap cost: how long nswatch takes to learn the machine from /proc (every thread's 7
# namespace links, stat, the model built, groups named), against `lsns` (util-linux) on the
# same machine in the same run.
#
#   sudo benches/bootstrap_vs_lsns.sh            # 10,000 extra tasks
#   TASKS=20000 GROUPS=100 REPS=7 sudo benches/bootstrap_vs_lsns.sh
#
# Three figures, medians of REPS runs, interleaved so that load drift hits all alike:
#   census     the library's census::take (scan + model), timed inside `nswatch ps --stats`
#   ps         the whole `nswatch ps --format json` command, process start to exit
#   lsns       the whole `lsns --json` command (it reads /proc/PID/ns of processes only,
#              not of every thread, and builds no groups: less work than nswatch's)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TASKS=${TASKS:-10000}
GROUPS=${GROUPS:-0}
REPS=${REPS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bootstrap-bench-target}
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin nswatch
NSWATCH=$CARGO_TARGET_DIR/release/nswatch
WORK=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null; rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/many_tasks" "$ROOT/benches/many_tasks.c"
# The holder keeps the tasks until its stdin closes.
exec 3> >("$WORK/many_tasks" "$TASKS" "$GROUPS" > "$WORK/ready")
while ! grep -q ready "$WORK/ready" 2>/dev/null; do sleep 0.2; done
total=$(ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null | wc -l)
procs=$(ls -d /proc/[0-9]* 2>/dev/null | wc -l)
echo "machine: $total tasks in $procs processes ($(cat "$WORK/ready"))"

now_ms() { echo $(( $(date +%s%N) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$WORK/census"; : > "$WORK/ps"; : > "$WORK/lsns"
for _ in $(seq "$REPS"); do
  t0=$(now_ms); "$NSWATCH" ps --format json --stats > /dev/null 2> "$WORK/err"; t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/ps"
  sed -n 's/.*census of .* in \([0-9.]*\) ms.*/\1/p' "$WORK/err" | awk '{print int($1*1000)}' >> "$WORK/census"
  t0=$(now_ms); lsns --json > /dev/null; t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/lsns"
done
c=$(median < "$WORK/census"); p=$(median < "$WORK/ps"); l=$(median < "$WORK/lsns")
grep 'census of' "$WORK/err" || true
awk -v c="$c" -v p="$p" -v l="$l" -v n="$total" 'BEGIN {
  printf "census (scan + model) %8.1f ms  %6.2f us/task\n", c/1000, c/n
  printf "nswatch ps --format json %5.1f ms\n", p/1000
  printf "lsns --json             %6.1f ms\n", l/1000
  printf "ratio lsns / nswatch ps  %5.2fx\n", l/p
}'
