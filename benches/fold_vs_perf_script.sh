#!/usr/bin/env bash
# Symbolization speed: `nswatch report --by container --folded` against `perf script`,
# on the same perf.data with callchains, in one run.
#
#   sudo benches/fold_vs_perf_script.sh
#
# Records `perf record -g -a` while two loads run until the file holds SAMPLES samples:
# nswatch itself reading a capture in a loop (Rust frames to demangle, a host binary) and
# the fork loop of benches/stress.c (kernel frames). Then times, interleaved, each with a
# warm-up run, stdout to /dev/null and the file in the page cache:
#   nswatch report --by container --folded FILE   (every frame named, stacks folded)
#   perf script -i FILE                            (every frame named, stacks printed)
# and prints the medians and their ratio.
#
# Environment knobs:
#   SAMPLES=100000    samples the capture holds at least
#   FREQ=4000         sampling frequency (perf record -F)
#   REPS=3            timed runs of each command
#   CARGO_TARGET_DIR  honoured for the release build (default: <repo>/target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SAMPLES=${SAMPLES:-100000}
FREQ=${FREQ:-4000}
REPS=${REPS:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ $(id -u) -ne 0 ]]; then
    echo "fold_vs_perf_script.sh: needs root (perf record -a)" >&2
    exit 1
fi

TMP=$(mktemp -d /var/tmp/fold_bench.XXXXXX)
LOADS=()
cleanup() {
    for p in "${LOADS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "# $*" >&2; }

log "building nswatch (release) into $TARGET_DIR"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet)
NSWATCH=$TARGET_DIR/release/nswatch
gcc -O2 -pthread -o "$TMP/stress" "$ROOT/benches/stress.c"

# A small capture for the Rust load to read over and over.
perf record --namespaces -a -e dummy -q -o "$TMP/small.data" -- "$TMP/stress" fork 20000 \
    >/dev/null 2>&1
DATA=$TMP/fold.data
samples() { perf report --stats -i "$1" 2>/dev/null | awk '/SAMPLE events:/ { print $3; exit }'; }

seconds=$(( SAMPLES / (FREQ * $(nproc)) + 2 ))
while :; do
    log "perf record -g -a -F $FREQ for ${seconds}s"
    (while :; do "$NSWATCH" report --format ndjson "$TMP/small.data" >/dev/null; done) &
    LOADS=($!)
    "$TMP/stress" fork 1000000000 >/dev/null &
    LOADS+=($!)
    perf record -g -a -F "$FREQ" -m 1024 -q -o "$DATA" -- sleep "$seconds" 2>"$TMP/record.err" ||
        { cat "$TMP/record.err" >&2; exit 1; }
    for p in "${LOADS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    LOADS=()
    n=$(samples "$DATA")
    ((n >= SAMPLES)) && break
    seconds=$(( seconds * SAMPLES / (n + 1) + 2 ))
done
size=$(stat -c %s "$DATA")

declare -A CMD=(
    [nswatch]="\"$NSWATCH\" report --by container --folded \"$DATA\""
    [perf]="perf script -i \"$DATA\""
)
ORDER=(nswatch perf)
declare -A TIMES
# Prints wall seconds of one run, from bash's own clock: no process but the command's runs
# within the interval.
run_once() {
    local t0 t1
    t0=${EPOCHREALTIME/[^0-9]/}
    eval "${CMD[$1]}" >/dev/null 2>"$TMP/$1.err" || { cat "$TMP/$1.err" >&2; exit 1; }
    t1=${EPOCHREALTIME/[^0-9]/}
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'
}
cat "$DATA" >/dev/null
for k in "${ORDER[@]}"; do run_once "$k" >/dev/null; done # warm-up
for ((r = 1; r <= REPS; r++)); do
    for k in "${ORDER[@]}"; do
        t=$(run_once "$k")
        TIMES[$k]+="$t "
        log "run $r $k: ${t}s"
    done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m_n=$(median "${TIMES[nswatch]}")
m_p=$(median "${TIMES[perf]}")
stacks=$("$NSWATCH" report --by container --folded "$DATA" | wc -l)
echo
echo "capture: $n samples with callchains ($((size >> 20)) MiB, $(nproc) CPUs, -F $FREQ); $stacks distinct folded stacks"
echo "median of $REPS runs (all: nswatch [${TIMES[nswatch]% }] perf [${TIMES[perf]% }])"
printf '%-52s %8.3fs\n' "nswatch report --by container --folded" "$m_n"
printf '%-52s %8.3fs\n' "perf script" "$m_p"
echo "ratio (perf script / nswatch folded): $(awk -v a="$m_p" -v b="$m_n" 'BEGIN { printf "%.1f", a / b }')x"
