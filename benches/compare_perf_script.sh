#!/usr/bin/env bash
# Offline decode speed: `nswatch report` against `perf script`, on the same perf.data, in
# one run, for each capture shape: a fork storm (FORK, NAMESPACES and EXIT records of
# short-lived tasks) and a setns storm (one NAMESPACES record per call of one task).
#
#   sudo benches/compare_perf_script.sh
#
# Environment knobs:
#   REPS=3            timed runs of every command (interleaved; the median is printed)
#   FORK_N=200000     forks of the loop; doubled (up to 3 times) until the file holds
#                     MIN_RECORDS records
#   MIN_RECORDS=500000
#   MMAP_PAGES=2048   perf record -m (per-CPU ring; large, so the storm loses little)
#   CAPTURES="fork setns"  the capture shapes measured
#   SETNS_CALLS=400000  setns calls of the setns storm (one thread flipping between two
#                     namespaces, benches/stress.c: one NAMESPACES record a call)
#   SETNS_NS=uts      the kind of namespace it flips (uts or net)
#   SETNS_SECONDS=60  the storm's longest run (it stops at SETNS_CALLS or then)
#   CARGO_TARGET_DIR  honoured for the release build (default: <repo>/target)
#   INPUT=FILE        measure this perf.data instead of recording the captures (needs no
#                     root); FILE stays as it is
#   BASE=PATH         another nswatch binary (an older build, say): its two reports are
#                     timed too, interleaved with this build's, and the ratios printed
#
# Commands timed (stdout to /dev/null, the file in the page cache, a warm-up run each):
#   nswatch report --format ndjson FILE
#   nswatch report FILE                       (text)
#   perf script --show-namespace-events --show-task-events -i FILE
#   benches/read_floor.c FILE                 (the floor: the records walked in time order,
#                                              touched and nothing made; see its header)
#   BASE report --format ndjson FILE, BASE report FILE   (with BASE=)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
FORK_N=${FORK_N:-200000}
MIN_RECORDS=${MIN_RECORDS:-500000}
MMAP_PAGES=${MMAP_PAGES:-2048}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CAPTURES=${CAPTURES:-"fork setns"}
SETNS_CALLS=${SETNS_CALLS:-400000}
SETNS_NS=${SETNS_NS:-uts}
SETNS_SECONDS=${SETNS_SECONDS:-60}
INPUT=${INPUT:-}
BASE=${BASE:-}

if [[ -n $INPUT ]]; then
    [[ -r $INPUT ]] || { echo "compare_perf_script.sh: INPUT=$INPUT is not readable" >&2; exit 1; }
    INPUT=$(realpath "$INPUT")
elif [[ $(id -u) -ne 0 ]]; then
    echo "compare_perf_script.sh: needs root (perf record -a), or INPUT=FILE" >&2
    exit 1
fi
if [[ -n $BASE ]]; then
    [[ -x $BASE ]] || { echo "compare_perf_script.sh: BASE=$BASE is not executable" >&2; exit 1; }
    BASE=$(realpath "$BASE")
fi
for tool in perf gcc cargo; do
    command -v "$tool" >/dev/null || { echo "compare_perf_script.sh: $tool not found" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/compare_perf_script.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "# $*" >&2; }

log "building nswatch (release) into $TARGET_DIR"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet)
NSWATCH=$TARGET_DIR/release/nswatch
[[ -x $NSWATCH ]] || { echo "compare_perf_script.sh: no $NSWATCH" >&2; exit 1; }

cat >"$TMP/forkloop.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Forks N children that exit at once: FORK, NAMESPACES and EXIT records for each. */
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            return 1;
        }
        if (p == 0)
            _exit(0);
        waitpid(p, NULL, 0);
    }
    return 0;
}
EOF
gcc -O2 -o "$TMP/forkloop" "$TMP/forkloop.c"
gcc -O2 -pthread -o "$TMP/stress" "$ROOT/benches/stress.c"
gcc -O2 -o "$TMP/read_floor" "$ROOT/benches/read_floor.c"

# Records in the file, as perf counts them (every record, perf's own included).
count_records() {
    perf report -D -i "$1" 2>/dev/null | awk '/TOTAL events:/ { n = $NF } END { print n + 0 }'
}

# Records the fork storm into $DATA; sets WHAT.
capture_fork() {
    n=$FORK_N
    records=0
    for attempt in 1 2 3 4; do
        log "perf record --namespaces -a -e dummy -- forkloop $n"
        (cd "$TMP" && perf record --namespaces -a -e dummy -m "$MMAP_PAGES" -q -o "$DATA" \
            -- ./forkloop "$n" >/dev/null 2>"$TMP/record.err") ||
            { cat "$TMP/record.err" >&2; exit 1; }
        records=$(count_records "$DATA")
        log "$records records"
        ((records >= MIN_RECORDS)) && break
        ((attempt == 4)) && { echo "compare_perf_script.sh: only $records records" >&2; exit 1; }
        n=$((n * 2))
    done
    WHAT="forkloop $n"
}

# Records the setns storm into $DATA; sets WHAT.
capture_setns() {
    local args=("$SETNS_SECONDS" 1 0 "$SETNS_CALLS" "$SETNS_NS")
    log "perf record --namespaces -a -e dummy -- stress setns ${args[*]}"
    (cd "$TMP" && perf record --namespaces -a -e dummy -m "$MMAP_PAGES" -q -o "$DATA" \
        -- ./stress setns "${args[@]}" >"$TMP/stress.out" 2>"$TMP/record.err") ||
        { cat "$TMP/record.err" >&2; exit 1; }
    records=$(count_records "$DATA")
    WHAT="setns storm: $(cat "$TMP/stress.out")"
}

# Times the three commands on $DATA and prints the table for capture $1.
measure() {
    lost=$(perf report -D -i "$DATA" 2>/dev/null | awk '/^ *LOST events:/ { print $NF; exit }')
    size=$(stat -c %s "$DATA")

    # Same work? Events each tool prints (outside the timing; perf prints a NAMESPACES event on
    # three lines, so its events are the lines naming a record type).
    nd_lines=$("$NSWATCH" report --format ndjson "$DATA" | wc -l)
    ps_lines=$(perf script --show-namespace-events --show-task-events -i "$DATA" 2>/dev/null |
        grep -c 'PERF_RECORD_' || true)

    declare -A CMD=(
        [ndjson]="\"$NSWATCH\" report --format ndjson \"$DATA\""
        [text]="\"$NSWATCH\" report \"$DATA\""
        [perf]="perf script --show-namespace-events --show-task-events -i \"$DATA\""
        [floor]="\"$TMP/read_floor\" \"$DATA\""
        [base_ndjson]="\"$BASE\" report --format ndjson \"$DATA\""
        [base_text]="\"$BASE\" report \"$DATA\""
    )
    ORDER=(ndjson text perf)
    # The floor reads little-endian file-mode captures with TIME in one sample type (its
    # header); another file is measured without it.
    if "$TMP/read_floor" "$DATA" 2>"$TMP/floor.err"; then
        ORDER+=(floor)
    else
        log "no floor for this file: $(cat "$TMP/floor.err")"
    fi
    [[ -n $BASE ]] && ORDER+=(base_ndjson base_text)
    declare -A TIMES

    # Prints wall seconds of one run, from bash's own clock: no process but the command's
    # runs within the interval.
    run_once() {
        local t0 t1
        t0=${EPOCHREALTIME/[^0-9]/}
        eval "${CMD[$1]}" >/dev/null 2>"$TMP/$1.err" || { cat "$TMP/$1.err" >&2; exit 1; }
        t1=${EPOCHREALTIME/[^0-9]/}
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e6 }'
    }

cat "$DATA" >/dev/null
TIMES=()
for k in "${ORDER[@]}"; do run_once "$k" >/dev/null; done # warm-up
for ((r = 1; r <= REPS; r++)); do
    for k in "${ORDER[@]}"; do
        t=$(run_once "$k")
        TIMES[$k]+="$t "
        log "run $r $k: ${t}s"
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.2f", n / t / 1e6 }'; }

m_nd=$(median "${TIMES[ndjson]}")
m_tx=$(median "${TIMES[text]}")
m_ps=$(median "${TIMES[perf]}")
[[ -n ${TIMES[floor]:-} ]] && m_fl=$(median "${TIMES[floor]}")

echo
echo "== $1 capture: $records records ($((size >> 20)) MiB, $WHAT, lost records: ${lost:-0})"
echo "events printed: nswatch ndjson $nd_lines, perf script $ps_lines"
echo "median of $REPS runs (all: ndjson [${TIMES[ndjson]% }] text [${TIMES[text]% }] perf [${TIMES[perf]% }] floor [${TIMES[floor]:-}])"
printf '%-58s %8.3fs  %6s M records/s\n' "nswatch report --format ndjson" "$m_nd" "$(rate "$records" "$m_nd")"
printf '%-58s %8.3fs  %6s M records/s\n' "nswatch report (text)" "$m_tx" "$(rate "$records" "$m_tx")"
printf '%-58s %8.3fs  %6s M records/s\n' "perf script --show-namespace-events --show-task-events" "$m_ps" "$(rate "$records" "$m_ps")"
echo "ratio (perf script / nswatch report text): $(ratio "$m_ps" "$m_tx")x"
echo "ratio (perf script / nswatch report --format ndjson): $(ratio "$m_ps" "$m_nd")x"
if [[ -n ${TIMES[floor]:-} ]]; then
    printf '%-58s %8.3fs  %6s M records/s\n' "read floor (benches/read_floor.c: time order, nothing made)" "$m_fl" "$(rate "$records" "$m_fl")"
    echo "ratio (perf script / read floor): $(ratio "$m_ps" "$m_fl")x"
fi
if [[ -n $BASE ]]; then
    m_bn=$(median "${TIMES[base_ndjson]}")
    m_bt=$(median "${TIMES[base_text]}")
    echo "BASE ($BASE), all: ndjson [${TIMES[base_ndjson]% }] text [${TIMES[base_text]% }]"
    printf '%-58s %8.4fs\n' "BASE report --format ndjson" "$m_bn" "BASE report (text)" "$m_bt"
    echo "this build against BASE (BASE's time / this build's): ndjson $(awk -v a="$m_bn" -v b="$m_nd" 'BEGIN { printf "%.3f", a / b }'), text $(awk -v a="$m_bt" -v b="$m_tx" 'BEGIN { printf "%.3f", a / b }')"
fi
}

if [[ -n $INPUT ]]; then
    DATA=$INPUT
    records=$(count_records "$DATA")
    WHAT="$INPUT"
    measure input
    exit 0
fi
for c in $CAPTURES; do
    DATA=$TMP/$c.data
    "capture_$c"
    measure "$c"
    rm -f "$DATA"
done
