#!/usr/bin/env bash
# What a tracer costs every syscall of the machine: a loop of getppid() (the cheapest
# syscall) timed alone, under `nswatch record`, under `nswatch record --no-bpf` and under
# `perf record --namespaces`, interleaved by repetition, in one run.
#
#   sudo benches/syscall_cost.sh
#
# The eBPF probe hooks raw_tp/sys_enter and sys_exit where the kernel has no BPF
# trampolines (no CONFIG_FUNCTION_TRACER): every task then takes the syscall slow path, and
# that is what this measures. With fentry (NSWATCH_BPF_HOOK=fentry, where it loads) only
# the eight hooked syscalls pay.
#
# Then the probe's own programs under a fork loop, from the kernel's BPF statistics
# (kernel.bpf_stats_enabled, set for that run only: each program's run_time_ns and run_cnt
# in its fdinfo): the time each run takes, and per fork.
#
# Environment knobs:
#   REPS=5             repetitions (medians are printed)
#   CALLS=10000000     getppid() calls per run
#   FORKS=20000        forks of the loop under the BPF statistics
#   CARGO_TARGET_DIR   honoured for the release build (default: <repo>/target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-5}
CALLS=${CALLS:-10000000}
FORKS=${FORKS:-20000}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ $(id -u) -ne 0 ]]; then
    echo "syscall_cost.sh: needs root (perf_event_open system-wide, BPF)" >&2
    exit 1
fi
for tool in perf gcc cargo; do
    command -v "$tool" >/dev/null || { echo "syscall_cost.sh: $tool not found" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/syscall_cost.XXXXXX)
TRACER=
STATS_WAS=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
cleanup() {
    [[ -n $TRACER ]] && kill -INT "$TRACER" 2>/dev/null && wait "$TRACER" 2>/dev/null
    echo "$STATS_WAS" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "# $*" >&2; }

log "building nswatch (release) into $TARGET_DIR"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet)
NSWATCH=$TARGET_DIR/release/nswatch

cat >"$TMP/loop.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* N getppid() calls; prints the ns per call. */
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
EOF
gcc -O2 -o "$TMP/loop" "$TMP/loop.c"

# Starts the tracer named $1 in the background (TRACER: its pid), once it is ready.
start() {
    case $1 in
    nswatch) "$NSWATCH" record --count-only -q >/dev/null 2>"$TMP/err" & ;;
    nswatch-no-bpf) "$NSWATCH" record --count-only -q --no-bpf >/dev/null 2>"$TMP/err" & ;;
    perf) perf record --namespaces -a -e dummy -q -o "$TMP/perf.data" 2>"$TMP/err" & ;;
    esac
    TRACER=$!
    # Past start-up (nswatch's /proc scan, perf's synthesized records).
    sleep 1.5
    kill -0 "$TRACER" 2>/dev/null || { cat "$TMP/err" >&2; exit 1; }
}

stop() {
    kill -INT "$TRACER"
    wait "$TRACER" || true
    TRACER=
}

CONFIGS=(alone nswatch nswatch-no-bpf perf)
declare -A NS
for ((r = 1; r <= REPS; r++)); do
    for c in "${CONFIGS[@]}"; do
        [[ $c == alone ]] || start "$c"
        v=$("$TMP/loop" "$CALLS")
        [[ $c == alone ]] || stop
        NS[$c]+="$v "
        log "rep $r $c: $v ns/call"
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "getppid() loop, $CALLS calls, median of $REPS runs, kernel $(uname -r), $(nproc) CPUs"
a=$(median "${NS[alone]}")
for c in "${CONFIGS[@]}"; do
    m=$(median "${NS[$c]}")
    printf '%-40s %8.1f ns/call  %+7.1f ns  (all: %s)\n' "$c" "$m" \
        "$(awk -v m="$m" -v a="$a" 'BEGIN { print m - a }')" "${NS[$c]% }"
done

# The probe's programs under a fork loop: "prog_id run_time_ns run_cnt" of each.
prog_stats() {
    local f
    for f in /proc/"$TRACER"/fdinfo/*; do
        grep -q '^prog_type' "$f" 2>/dev/null || continue
        awk '/^prog_id/ { i = $2 } /^run_time_ns/ { t = $2 } /^run_cnt/ { c = $2 }
            END { print i, t, c }' "$f"
    done | sort -n
}
if ! echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null; then
    echo "(no BPF statistics on this kernel: the programs' own time is not measured)"
    exit 0
fi
cat >"$TMP/forkloop.c" <<'EOF'
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* N forks of a child that exits at once. */
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        waitpid(p, NULL, 0);
    }
    return 0;
}
EOF
gcc -O2 -o "$TMP/forkloop" "$TMP/forkloop.c"
start nswatch
prog_stats >"$TMP/before"
"$TMP/forkloop" "$FORKS"
prog_stats >"$TMP/after"
stop
echo
echo "the eBPF probe's programs under a loop of $FORKS forks (kernel.bpf_stats_enabled):"
# The programs in the order they were loaded: sys_enter, then sys_exit.
join "$TMP/before" "$TMP/after" | awk -v forks="$FORKS" '
    $5 > $3 {
        n++
        name = (n == 1) ? "sys_enter" : (n == 2) ? "sys_exit" : "program " $1
        runs = $5 - $3
        ns = $4 - $2
        printf "%-40s %8.0f ns a run, %4.1f runs and %5.0f ns a fork\n", name, ns / runs, runs / forks, ns / forks
    }'
