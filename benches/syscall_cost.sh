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
# Environment knobs:
#   REPS=5             repetitions (medians are printed)
#   CALLS=10000000     getppid() calls per run
#   CARGO_TARGET_DIR   honoured for the release build (default: <repo>/target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-5}
CALLS=${CALLS:-10000000}
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
cleanup() {
    [[ -n $TRACER ]] && kill -INT "$TRACER" 2>/dev/null && wait "$TRACER" 2>/dev/null
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
