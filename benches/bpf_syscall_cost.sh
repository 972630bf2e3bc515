#!/usr/bin/env bash
# What the eBPF probe costs a syscall, in one run: ns per call of a setns loop (traced) and
# of a getppid loop (untraced: it pays only sys_enter's early return and sys_exit's one
# load), alone, under `nswatch record --no-bpf` (perf side-band only) and under
# `nswatch record` (perf + eBPF). The probe's own cost is the last minus the middle.
# Needs root. RUNS (default 5) runs of each; medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
N_SETNS=${N_SETNS:-200000}
N_PPID=${N_PPID:-5000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q
nsw="$CARGO_TARGET_DIR/release/nswatch"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/ns_loop" benches/ns_loop.c

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure MODE N WHERE: median ns per call over RUNS runs; WHERE is alone, perf (nswatch
# --no-bpf) or bpf (nswatch with its probe).
measure() {
  local mode=$1 n=$2 where=$3
  for _ in $(seq "$RUNS"); do
    case $where in
      alone) "$tmp/ns_loop" "$mode" "$n" ;;
      perf) "$nsw" record --quiet --no-bpf -- "$tmp/ns_loop" "$mode" "$n" 2>/dev/null ;;
      bpf)
        "$nsw" record --quiet -- "$tmp/ns_loop" "$mode" "$n" 2>"$tmp/err"
        grep -q 'eBPF: on' "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
        grep -o 'lost syscall records [0-9]*' "$tmp/err" >>"$tmp/lost.$mode"
        ;;
    esac
  done | awk '{print $3}' | median
}

printf '%-10s %14s %18s %18s %12s %12s\n' syscall alone "nswatch --no-bpf" "nswatch (eBPF)" "eBPF adds" "ratio"
for mode in setns getppid; do
  n=$N_SETNS; [ "$mode" = getppid ] && n=$N_PPID
  a=$(measure "$mode" "$n" alone)
  p=$(measure "$mode" "$n" perf)
  b=$(measure "$mode" "$n" bpf)
  awk -v m="$mode" -v a="$a" -v p="$p" -v b="$b" 'BEGIN {
    printf "%-10s %11.1f ns %15.1f ns %15.1f ns %9.1f ns %11.2fx\n", m, a, p, b, b - p, b / p }'
done
echo "eBPF records lost in the setns runs: $(awk '{s += $4} END {print s}' "$tmp/lost.setns")"
