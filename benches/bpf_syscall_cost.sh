#!/usr/bin/env bash
# What the eBPF probe costs a syscall, in one run, per hook kind: ns per call of a setns loop
# (traced) and of a getppid loop (untraced), alone, under `nswatch record --no-bpf` (perf
# side-band only: "no probe"), and under `nswatch record` with the probe forced onto raw_tp
# and onto fentry (NSWATCH_BPF_HOOK). The probe's own cost is a hook's column minus "no
# probe"; the ratios are hook / no probe. raw_tp makes every syscall of the machine take
# the slow path, so getppid pays too; with fentry it should cost what it costs alone. A
# kernel that refuses fentry programs gets "n/a" in that column, with the reason below.
# Then the programs' own time under a fork loop, from the kernel's BPF statistics.
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

# Whether the probe loads on fentry here; the reason it does not, in $tmp/fentry.why.
fentry=yes
NSWATCH_BPF_HOOK=fentry "$nsw" record -o /dev/null -- true 2>"$tmp/err" || true
if ! grep -q 'eBPF: on (fentry)' "$tmp/err"; then
  fentry=no
  sed -n 's/^nswatch: eBPF unavailable, recording namespace changes without their causes: //p' \
    "$tmp/err" >"$tmp/fentry.why"
fi

# measure MODE N WHERE: median ns per call over RUNS runs; WHERE is alone, none (nswatch
# --no-bpf), raw_tp or fentry (nswatch with its probe on that hook).
measure() {
  local mode=$1 n=$2 where=$3
  for _ in $(seq "$RUNS"); do
    case $where in
      alone) "$tmp/ns_loop" "$mode" "$n" ;;
      none) "$nsw" record --count-only --no-bpf -- "$tmp/ns_loop" "$mode" "$n" 2>/dev/null ;;
      raw_tp | fentry)
        NSWATCH_BPF_HOOK=$where "$nsw" record --count-only -- "$tmp/ns_loop" "$mode" "$n" 2>"$tmp/err"
        grep -q "eBPF: on ($where)" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
        grep -o 'lost syscall records [0-9]*' "$tmp/err" >>"$tmp/lost.$where.$mode"
        ;;
    esac
  done | awk '{print $3}' | median
}

printf '%-8s %10s %12s %12s %12s %13s %13s\n' syscall alone "no probe" raw_tp fentry \
  "raw_tp/none" "fentry/none"
for mode in setns getppid; do
  n=$N_SETNS; [ "$mode" = getppid ] && n=$N_PPID
  a=$(measure "$mode" "$n" alone)
  p=$(measure "$mode" "$n" none)
  r=$(measure "$mode" "$n" raw_tp)
  f=nan
  [ $fentry = yes ] && f=$(measure "$mode" "$n" fentry)
  awk -v m="$mode" -v a="$a" -v p="$p" -v r="$r" -v f="$f" 'BEGIN {
    fs = f == "nan" ? "n/a" : sprintf("%.1f ns", f)
    fr = f == "nan" ? "n/a" : sprintf("%.2fx", f / p)
    printf "%-8s %7.1f ns %9.1f ns %9.1f ns %12s %12.2fx %13s\n", m, a, p, r, fs, r / p, fr }'
done
for h in raw_tp fentry; do
  [ -f "$tmp/lost.$h.setns" ] &&
    echo "eBPF records lost in the $h setns runs: $(awk '{s += $4} END {print s}' "$tmp/lost.$h.setns")"
done
[ $fentry = yes ] || echo "fentry: n/a, the probe does not load on fentry here: $(cat "$tmp/fentry.why")"

# The probe's programs under a fork loop (raw_tp, the default hook), from the kernel's BPF
# statistics (kernel.bpf_stats_enabled, on for this run only): each program's run_time_ns
# and run_cnt, in its fdinfo, before and after N_FORKS forks.
N_FORKS=${N_FORKS:-20000}
stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
if ! echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null; then
  echo "fork loop: no BPF statistics on this kernel"
  exit 0
fi
trap 'echo "$stats_was" >/proc/sys/kernel/bpf_stats_enabled; rm -rf "$tmp"' EXIT
# "prog_id run_time_ns run_cnt" of each program of process $1.
prog_stats() {
  local f
  for f in /proc/"$1"/fdinfo/*; do
    grep -q '^prog_type' "$f" 2>/dev/null || continue
    awk '/^prog_id/ { i = $2 } /^run_time_ns/ { t = $2 } /^run_cnt/ { c = $2 }
      END { print i, t, c }' "$f"
  done | sort -n
}
NSWATCH_BPF_HOOK=raw_tp "$nsw" record --count-only -q >/dev/null 2>"$tmp/err" &
tracer=$!
sleep 1.5
prog_stats "$tracer" >"$tmp/before"
"$tmp/ns_loop" fork "$N_FORKS" >/dev/null
prog_stats "$tracer" >"$tmp/after"
kill -INT "$tracer"
wait "$tracer" || true
echo "the probe's programs under $N_FORKS forks (raw_tp; sys_enter, then sys_exit, as loaded):"
join "$tmp/before" "$tmp/after" | awk -v forks="$N_FORKS" '$5 > $3 {
    n++
    name = (n == 1) ? "sys_enter" : (n == 2) ? "sys_exit" : "program " $1
    runs = $5 - $3
    ns = $4 - $2
    printf "%-10s %6.0f ns a run, %4.1f runs and %5.0f ns a fork\n", name, ns / runs, runs / forks, ns / forks }'
