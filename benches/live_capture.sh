#!/usr/bin/env bash
# Live-capture cost of `nswatch record`, against `perf record --namespaces`, in one run.
#
#   sudo benches/live_capture.sh
#
# Environment knobs:
#   REPS=3             repetitions of every configuration (medians are printed)
#   FORK_SECONDS=4     target length of the fork loop alone (N is calibrated for it)
#   FORK_N=            fixed fork count instead of calibrating
#   SETNS_SECONDS=5    length of the setns storm
#   SETNS_THREADS=2    threads of the setns storm
#   RING_SIZES="64 128 256 512"  --ring-pages values tried under the setns storm
#   CARGO_TARGET_DIR=/tmp/live-bench-target
#   OUTPUT=quiet       quiet: `nswatch record --count-only` (counts only); ndjson: every event
#                      written as NDJSON to a file (`-o`, deleted after each run); null:
#                      every event made into its NDJSON line and written to /dev/null
#                      (nswatch's whole work, without a file system's cost of keeping it)
#   BASE=              path of another nswatch binary (e.g. an older build): measured too,
#                      interleaved with this build's, for before/after in one run
#   FLOOR=0            1: also measured, interleaved, benches/side_band_floor.c ("floor"):
#                      the same perf events on every CPU, the namespaces it sees held,
#                      the rings drained without decoding. Its slowdown is the kernel's
#                      writing of the records alone, the floor under any tracer of them;
#                      FLOOR_FLAGS=--no-namespaces measures it without NAMESPACES records
#   BASE_RING=         the ring size BASE is measured at under the setns storm (one of
#                      RING_SIZES; default: this build's default, 256 pages)
#   NSW_FLAGS=         more `nswatch record` flags for every run (e.g. --no-bpf)
#   LOADS="fork setns" the loads measured (one of them alone for more reps of it)
#   METRICS=0          1: this build measured a second time with `--metrics` on, scraped
#                      every SCRAPE_EVERY=15 s (Prometheus's usual interval; the first
#                      scrape as the load starts) while the load runs: the "metrics"
#                      rows, interleaved with the others; the scrapes' CPU is the tracer's
#                      too (SCRAPE_EVERY=1 for a scraper 15 times as eager)
#   CONTAINER=0        1: every load runs inside new namespaces, as in a container
#                      (`unshare -m -u -i -n -p -f --mount-proc`), whose files no tracer
#                      holds unless it holds them itself
#   PIN=0              1: every load runs on the last CPU alone (`taskset -c`), the
#                      tracers anywhere: a fork loop's parent and child then share a CPU
#                      and the loop alone runs faster and steadier (the scheduler no
#                      longer places the child on either CPU)
#
# The fork loop's summary gives each rep's slowdown against the loop alone in the same
# rep, with a 95% confidence interval for their median: many short reps
# (REPS=25 FORK_SECONDS=2) bound a slowdown of a few percent better than a few long ones.
#
# CPU time of the tracer is read from /proc/PID/task/*/schedstat (ns run on a CPU, exact)
# right after the tracer has started and right before SIGINT: start-up (the /proc scan)
# and shutdown are not counted. "ns/rec" = that CPU time / perf records the tracer
# consumed (one per setns call under the storm); "+eBPF" divides by the eBPF probe's
# records too (one more per namespace syscall), every record read from a ring.
# Rows are interleaved by repetition (alone, nswatch, perf, alone, ...) so that drift in
# machine load hits every configuration alike, and the fork loop's tracers are compared
# rep by rep too: in how many reps nswatch slowed the loop less than perf record did, and
# the median of the per-rep differences (a sign test settles "cheaper than perf" where
# medians of noisy runs overlap).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
FORK_SECONDS=${FORK_SECONDS:-4}
SETNS_SECONDS=${SETNS_SECONDS:-5}
SETNS_THREADS=${SETNS_THREADS:-2}
RING_SIZES=${RING_SIZES:-"64 128 256 512"}
DEFAULT_RING=256
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/live-bench-target}
OUTPUT=${OUTPUT:-quiet}
BASE=${BASE:-}
read -r -a NSW_FLAGS <<<"${NSW_FLAGS:-}"
LOADS=${LOADS:-"fork setns"}
METRICS=${METRICS:-0}
SCRAPE_EVERY=${SCRAPE_EVERY:-15}
METRICS_PORT=${METRICS_PORT:-19464}
SCRAPER_PID=
has_load() { [[ " $LOADS " == *" $1 "* ]]; }
for l in $LOADS; do
    [[ $l == fork || $l == setns ]] ||
        { echo "live_capture.sh: LOADS=$LOADS: expected fork and/or setns" >&2; exit 1; }
done
case $OUTPUT in
    quiet | ndjson | null) ;;
    *) echo "live_capture.sh: OUTPUT=$OUTPUT: expected quiet, ndjson or null" >&2; exit 1 ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "live_capture.sh: needs root (system-wide perf events, setns)" >&2
    exit 1
fi

TMP=$(mktemp -d /tmp/live_capture.XXXXXX)
TRACER_PID=
cleanup() {
    [[ -n $SCRAPER_PID ]] && kill "$SCRAPER_PID" 2>/dev/null
    if [[ -n $TRACER_PID ]] && kill -0 "$TRACER_PID" 2>/dev/null; then
        kill -INT "$TRACER_PID" 2>/dev/null || true
        wait "$TRACER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

log() { echo "# $*" >&2; }

log "building nswatch (release) and stress"
(cd "$ROOT" && cargo build --release --quiet)
NSW=$CARGO_TARGET_DIR/release/nswatch
# The builds measured: this one ("new"), and BASE ("base") when given.
declare -A BIN=([new]=$NSW)
VARIANTS=(new)
if [[ -n $BASE ]]; then
    [[ -x $BASE ]] || { echo "live_capture.sh: BASE=$BASE is not executable" >&2; exit 1; }
    BIN[base]=$BASE
    VARIANTS=(base new)
fi
if ((METRICS)); then
    BIN[metrics]=$NSW
    VARIANTS+=(metrics)
fi
gcc -O2 -pthread -o "$TMP/stress" "$ROOT/benches/stress.c"
FLOOR=${FLOOR:-0}
if ((FLOOR)); then
    gcc -O2 -o "$TMP/side_band_floor" "$ROOT/benches/side_band_floor.c"
    BIN[floor]=$TMP/side_band_floor
    VARIANTS+=(floor)
fi
STRESS=$TMP/stress
LOAD=("$STRESS")
CONTAINER=${CONTAINER:-0}
((CONTAINER)) && LOAD=(unshare -m -u -i -n -p -f --mount-proc "$STRESS")
PIN=${PIN:-0}
PIN_CPU=$(($(nproc) - 1))
((PIN)) && LOAD=(taskset -c "$PIN_CPU" "${LOAD[@]}")

# CPU ns used so far by every thread of PID.
cpu_ns() {
    local sum=0 f v
    for f in /proc/"$1"/task/*/schedstat; do
        read -r v _ <"$f" 2>/dev/null || continue
        sum=$((sum + v))
    done
    echo "$sum"
}

# Median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'
}

# Waits (at most IDLE_WAIT s) until the machine is mostly idle (other users' builds
# skew every number); measured over 0.5 s from /proc/stat.
IDLE_WAIT=${IDLE_WAIT:-20}
IDLE_BUSY_PCT=${IDLE_BUSY_PCT:-25}
IDLE_TIMED_OUT=0
wait_idle() {
    local t0=$SECONDS busy limit=$IDLE_WAIT
    # Once a wait has timed out (a long job of someone else), only wait briefly.
    ((IDLE_TIMED_OUT)) && limit=3
    while :; do
        busy=$( { head -1 /proc/stat; sleep 0.5; head -1 /proc/stat; } | awk '
            { idle = $5 + $6; tot = 0; for (i = 2; i <= NF; i++) tot += $i
              if (NR == 1) { i0 = idle; t0 = tot } else { printf "%d", 100 - 100 * (idle - i0) / (tot - t0) } }')
        if ((busy <= IDLE_BUSY_PCT)); then
            IDLE_TIMED_OUT=0
            return
        fi
        if ((SECONDS - t0 >= limit)); then
            ((IDLE_TIMED_OUT)) || log "machine still ${busy}% busy after ${limit}s; measuring anyway"
            IDLE_TIMED_OUT=1
            BUSY_RUNS=$((BUSY_RUNS + 1))
            return
        fi
        sleep 1
    done
}
BUSY_RUNS=0

rate_of() { awk '{print $(NF-1)}' <<<"$1"; }

# The words given, in reverse order on even repetitions ($r): a build measured right
# after another one every time would pay for what that one left (caches, frequency).
in_turn() {
    if ((r % 2)); then
        echo "$@"
    else
        printf '%s\n' "$@" | tac | tr '\n' ' '
    fi
}

# Runs the workload "$@" under a tracer started by start_tracer; sets globals.
#   TRACER: "nswatch" (with NSW_ARGS) or "perf"
run_traced() {
    local tracer=$1; shift
    local err=$TMP/tracer.err
    case $tracer in
        nswatch)
            local out=(--count-only)
            [[ $OUTPUT == ndjson ]] && out=(-o "$TMP/out.ndjson")
            [[ $OUTPUT == null ]] && out=(-o /dev/null)
            local extra=()
            [[ $VARIANT == metrics ]] && extra=(--metrics "127.0.0.1:$METRICS_PORT")
            [[ $VARIANT == floor ]] && read -r -a extra <<<"${FLOOR_FLAGS:-}"
            "${BIN[$VARIANT]}" record "${out[@]}" "${NSW_FLAGS[@]}" "${extra[@]}" "${NSW_ARGS[@]}" 2>"$err" &
            TRACER_PID=$!
            sleep 1
            if [[ $VARIANT == metrics ]]; then
                while curl -sf -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics"; do
                    sleep "$SCRAPE_EVERY"
                done &
                SCRAPER_PID=$!
            fi
            ;;
        perf)
            rm -f "$TMP/perf.data"
            perf record --namespaces -a -e dummy -q -o "$TMP/perf.data" 2>"$err" &
            TRACER_PID=$!
            sleep 2
            ;;
    esac
    kill -0 "$TRACER_PID" || { cat "$err" >&2; exit 1; }
    local c0 c1
    c0=$(cpu_ns "$TRACER_PID")
    OUT=$("$@")
    c1=$(cpu_ns "$TRACER_PID")
    if [[ -n $SCRAPER_PID ]]; then
        kill "$SCRAPER_PID" 2>/dev/null || true
        wait "$SCRAPER_PID" 2>/dev/null || true
        SCRAPER_PID=
    fi
    kill -INT "$TRACER_PID"
    wait "$TRACER_PID" || true
    TRACER_PID=
    CPU_NS=$((c1 - c0))
    rm -f "$TMP/out.ndjson"
    RECORDS=0 LOST=0 LATE=0 BPF_RECORDS=0
    if [[ $tracer == nswatch ]]; then
        local s
        s=$(cat "$err")
        RECORDS=$(sed -n 's/^nswatch record: \([0-9]*\) records.*/\1/p' <<<"$s")
        LOST=$(grep -o 'lost records [0-9]*' <<<"$s" | head -1 | awk '{print $3}')
        LATE=$(grep -o '; late [0-9]*' <<<"$s" | head -1 | awk '{print $3}')
        BPF_RECORDS=$(grep -o 'namespace syscalls [0-9]*' <<<"$s" | awk '{print $3}')
        BPF_RECORDS=${BPF_RECORDS:-0}
        if [[ -z $RECORDS ]]; then
            echo "unexpected nswatch output:" >&2
            cat "$err" >&2
            exit 1
        fi
    fi
}

# --- fork loop --------------------------------------------------------------------------
declare -a F_ALONE F_PERF F_PERF_CPU
declare -A F_NSW F_NSW_NSREC F_NSW_REC F_NSW_LOST F_NSW_LATE F_NSW_CPU
N=0
if has_load fork; then
    if [[ -n ${FORK_N:-} ]]; then
        N=$FORK_N
    else
        wait_idle
        cal=$("${LOAD[@]}" fork 2000)
        N=$(awk -v r="$(rate_of "$cal")" -v s="$FORK_SECONDS" 'BEGIN { printf "%d", r * s }')
        log "calibration: $cal -> N=$N"
    fi

    for ((r = 1; r <= REPS; r++)); do
        wait_idle
        out=$("${LOAD[@]}" fork "$N")
        F_ALONE+=("$(rate_of "$out")")
        log "rep $r fork alone: $out"

        NSW_ARGS=()
        for VARIANT in $(in_turn "${VARIANTS[@]}"); do
            wait_idle
            run_traced nswatch "${LOAD[@]}" fork "$N"
            F_NSW[$VARIANT]+="$(rate_of "$OUT") "
            F_NSW_REC[$VARIANT]+="$RECORDS "
            F_NSW_LOST[$VARIANT]+="$LOST "
            F_NSW_LATE[$VARIANT]+="$LATE "
            F_NSW_CPU[$VARIANT]+="$CPU_NS "
            F_NSW_NSREC[$VARIANT]+="$(awk -v c="$CPU_NS" -v n="$RECORDS" 'BEGIN { printf "%.0f", n ? c / n : 0 }') "
            log "rep $r fork nswatch ($VARIANT): $OUT; records $RECORDS lost $LOST late $LATE cpu ${CPU_NS} ns"
        done

        wait_idle
        run_traced perf "${LOAD[@]}" fork "$N"
        F_PERF+=("$(rate_of "$OUT")")
        F_PERF_CPU+=("$CPU_NS")
        log "rep $r fork perf: $OUT; cpu ${CPU_NS} ns"
    done

fi

# --- setns storm ------------------------------------------------------------------------
# (build, ring size) pairs: every ring size for this build; BASE at the default size.
SLOTS=
for pages in $RING_SIZES; do
    [[ -n $BASE && $pages == "${BASE_RING:-$DEFAULT_RING}" ]] && SLOTS+="base:$pages "
    SLOTS+="new:$pages "
    ((METRICS)) && [[ $pages == "$DEFAULT_RING" ]] && SLOTS+="metrics:$pages "
    ((FLOOR)) && [[ $pages == "$DEFAULT_RING" ]] && SLOTS+="floor:$pages "
done
declare -a S_ALONE S_PERF
declare -A S_RATE S_REC S_RECS S_LOST S_LATE S_NSREC S_NSALL S_CPU
if has_load setns; then
    for ((r = 1; r <= REPS; r++)); do
        wait_idle
        out=$("${LOAD[@]}" setns "$SETNS_SECONDS" "$SETNS_THREADS")
        S_ALONE+=("$(rate_of "$out")")
        log "rep $r setns alone: $out"
        wait_idle
        run_traced perf "${LOAD[@]}" setns "$SETNS_SECONDS" "$SETNS_THREADS"
        S_PERF+=("$(rate_of "$OUT")")
        log "rep $r setns perf: $OUT; cpu ${CPU_NS} ns"
        for slot in $(in_turn $SLOTS); do
            pages=${slot#*:} VARIANT=${slot%%:*}
            NSW_ARGS=(--ring-pages "$pages")
            wait_idle
            run_traced nswatch "${LOAD[@]}" setns "$SETNS_SECONDS" "$SETNS_THREADS"
            el=$(awk '{for (i = 1; i < NF; i++) if ($(i+1) == "s,") print $i}' <<<"$OUT")
            S_RATE[$slot]+="$(rate_of "$OUT") "
            S_REC[$slot]+="$RECORDS "
            S_RECS[$slot]+="$(awk -v n="$RECORDS" -v e="$el" 'BEGIN { printf "%.0f", n / e }') "
            S_LOST[$slot]+="$LOST "
            S_LATE[$slot]+="$LATE "
            S_CPU[$slot]+="$CPU_NS "
            S_NSREC[$slot]+="$(awk -v c="$CPU_NS" -v n="$RECORDS" 'BEGIN { printf "%.0f", n ? c / n : 0 }') "
            S_NSALL[$slot]+="$(awk -v c="$CPU_NS" -v n="$((RECORDS + BPF_RECORDS))" 'BEGIN { printf "%.0f", n ? c / n : 0 }') "
            log "rep $r setns nswatch ($VARIANT) --ring-pages $pages: $OUT; records $RECORDS (eBPF $BPF_RECORDS) lost $LOST late $LATE cpu ${CPU_NS} ns"
        done
    done

fi

# --- table ------------------------------------------------------------------------------
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / a * 100 }'; }
ms() { awk -v c="$1" 'BEGIN { printf "%.0f", c / 1e6 }'; }

fa=$(median "${F_ALONE[@]}")
fp=$(median "${F_PERF[@]}")
fp_cpu=$(median "${F_PERF_CPU[@]}")
sa=$(median "${S_ALONE[@]}")
sp=$(median "${S_PERF[@]}")

# "wins/reps median": in how many reps the tracer's fork rate beat perf record's in the
# same rep, and the median per-rep slowdown difference (perf's minus nswatch's, points of
# the loop alone's rate; > 0: nswatch cost the loop less).
paired() {
    local -a nsw
    read -r -a nsw <<<"$1"
    local i wins=0 diffs=()
    for i in "${!nsw[@]}"; do
        ((${nsw[i]%.*} > ${F_PERF[i]%.*})) && wins=$((wins + 1))
        diffs+=("$(awk -v a="${F_ALONE[i]}" -v p="${F_PERF[i]}" -v n="${nsw[i]}" 'BEGIN { printf "%.2f", (n - p) / a * 100 }')")
    done
    echo "$wins/${#nsw[@]} $(median "${diffs[@]}")"
}

# The loop's slowdown rep by rep (the rates in $1 against the loop alone in the same rep,
# or against the rates in $2): "median lo hi", lo and hi the order statistics that bound
# the median with ~95% confidence whatever the distribution (ranks (n - 1.96 sqrt n) / 2
# from each end).
slowdowns() {
    local -a nsw ref
    read -r -a nsw <<<"$1"
    read -r -a ref <<<"${2:-${F_ALONE[*]}}"
    local i
    for i in "${!nsw[@]}"; do
        awk -v a="${ref[i]}" -v n="${nsw[i]}" 'BEGIN { printf "%.2f\n", (a - n) / a * 100 }'
    done | sort -g | awk '{ v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            k = int((NR - 1.96 * sqrt(NR)) / 2); if (k < 1) k = 1
            printf "%.1f %.1f %.1f", m, v[k], v[NR - k + 1]
        }'
}

echo
echo "nswatch live capture: $(nproc) CPUs, kernel $(uname -r), $REPS reps, medians, output: $OUTPUT"
((CONTAINER)) && echo "loads inside new namespaces: unshare -m -u -i -n -p -f --mount-proc"
((PIN)) && echo "loads pinned to CPU $PIN_CPU (taskset -c $PIN_CPU), tracers unpinned"
has_load fork && echo "fork loop: N=$N forks"
has_load setns && echo "setns storm: $SETNS_THREADS threads x ${SETNS_SECONDS}s"
((${#NSW_FLAGS[@]})) && echo "nswatch record flags: ${NSW_FLAGS[*]}"
[[ -n $BASE ]] && echo "builds: new = $NSW, base = $BASE"
echo
row() { printf '%-38s %12s %9s %10s %8s %6s %9s %8s %s\n' "$@"; }
row configuration "ops/s" slowdown records lost late "CPU ms" "ns/rec" ""
if has_load fork; then
    row "a) fork alone" "$fa" - - - - - - ""
    for v in "${VARIANTS[@]}"; do
        # shellcheck disable=SC2086
        {
            fn=$(median ${F_NSW[$v]})
            fn_rec=$(median ${F_NSW_REC[$v]})
            fn_lost=$(median ${F_NSW_LOST[$v]})
            fn_late=$(median ${F_NSW_LATE[$v]})
            fn_cpu=$(median ${F_NSW_CPU[$v]})
            fn_nsrec=$(median ${F_NSW_NSREC[$v]})
        }
        row "b) fork + nswatch ($v)" "$fn" "$(pct "$fa" "$fn")%" "$fn_rec" "$fn_lost" \
            "$fn_late" "$(ms "$fn_cpu")" "$fn_nsrec" "(ns/rec per rep: $(echo ${F_NSW_NSREC[$v]} | tr ' ' ','))"
    done
    row "c) fork + perf record --namespaces" "$fp" "$(pct "$fa" "$fp")%" - - - "$(ms "$fp_cpu")" - ""
fi
if has_load setns; then
    row "d) setns alone" "$sa" - - - - - - ""
    row "d) setns + perf record --namespaces" "$sp" "$(pct "$sa" "$sp")%" - - - - - ""
    for slot in $SLOTS; do
        pages=${slot#*:} v=${slot%%:*}
        # shellcheck disable=SC2086
        {
            sr=$(median ${S_RATE[$slot]})
            srec=$(median ${S_REC[$slot]})
            srecs=$(median ${S_RECS[$slot]})
            slost=$(median ${S_LOST[$slot]})
            slate=$(median ${S_LATE[$slot]})
            snsrec=$(median ${S_NSREC[$slot]})
            scpu=$(median ${S_CPU[$slot]})
        }
        tag="e) setns + nswatch ($v) pages=$pages"
        [[ $pages == "$DEFAULT_RING" ]] && tag="$tag*"
        row "$tag" "$sr" "$(pct "$sa" "$sr")%" "$srec" "$slost" "$slate" "$(ms "$scpu")" "$snsrec" \
            "($srecs rec/s; ns/rec per rep: $(echo ${S_NSREC[$slot]} | tr ' ' ','); +eBPF: $(median ${S_NSALL[$slot]}) ns/rec; lost per rep: $(echo ${S_LOST[$slot]} | tr ' ' ','))"
    done
fi
((BUSY_RUNS)) && echo "warning: $BUSY_RUNS measurements started while other work kept the machine >${IDLE_BUSY_PCT}% busy"
echo "(* = default ring size; ops/s = forks/s or setns calls/s; CPU ms = tracer CPU during the load)"
echo
for v in "${VARIANTS[@]}"; do
    # shellcheck disable=SC2086
    if has_load fork; then
        fn=$(median ${F_NSW[$v]})
        fn_lost=$(median ${F_NSW_LOST[$v]})
        fn_lost_max=$(printf '%s\n' ${F_NSW_LOST[$v]} | sort -n | tail -1)
        fn_cpu=$(median ${F_NSW_CPU[$v]})
        fn_nsrec=$(median ${F_NSW_NSREC[$v]})
        read -r wins diff <<<"$(paired "${F_NSW[$v]}")"
        echo "nswatch ($v): fork: $fn_nsrec ns CPU/record, $fn_lost lost (max $fn_lost_max), fork slowdown" \
            "$(pct "$fa" "$fn")% (perf record: $(pct "$fa" "$fp")%, CPU $(ms "$fp_cpu") ms vs nswatch $(ms "$fn_cpu") ms)"
        echo "nswatch ($v): fork loop faster than under perf record in $wins reps;" \
            "median per-rep difference $diff points of the loop's rate (> 0: nswatch cheaper)"
        read -r sm slo shi <<<"$(slowdowns "${F_NSW[$v]}")"
        echo "nswatch ($v): fork slowdown rep by rep (against the loop alone in the same rep):" \
            "median $sm% (95% confidence $slo% to $shi%, $REPS reps)"
    fi
    # shellcheck disable=SC2086
    if has_load setns; then
        ring=$DEFAULT_RING
        [[ $v == base ]] && ring=${BASE_RING:-$DEFAULT_RING}
        d="$v:$ring"
        echo "nswatch ($v): setns storm, $ring-page rings: $(median ${S_NSREC[$d]:-0}) ns CPU/record" \
            "($(median ${S_NSALL[$d]:-0}) counting the eBPF records)," \
            "$(median ${S_RECS[$d]:-0}) records/s consumed, lost $(median ${S_LOST[$d]:-0})," \
            "setns slowdown $(pct "$sa" "$(median ${S_RATE[$d]:-0})")% (perf record: $(pct "$sa" "$sp")%)"
    fi
done
if has_load fork && ((FLOOR)); then
    read -r sm slo shi <<<"$(slowdowns "${F_NSW[new]}" "${F_NSW[floor]}")"
    echo "nswatch (new) against the floor${FLOOR_FLAGS:+ ($FLOOR_FLAGS)}: the loop slower by $sm%" \
        "rep by rep (95% confidence $slo% to $shi%)"
fi
if has_load fork; then
    read -r sm slo shi <<<"$(slowdowns "${F_PERF[*]}")"
    echo "perf record: fork slowdown rep by rep: median $sm% (95% confidence $slo% to $shi%)"
fi
# Metrics on against off: CPU per record, the medians' ratio and the per-rep ratios.
if ((METRICS)); then
    more() {
        local -a off on
        read -r -a off <<<"$1"
        read -r -a on <<<"$2"
        local i reps=()
        for i in "${!off[@]}"; do
            reps+=("$(awk -v a="${off[i]}" -v b="${on[i]}" 'BEGIN { printf "%+.1f%%", (b - a) / a * 100 }')")
        done
        echo "$(median "${off[@]}") -> $(median "${on[@]}") ns/record," \
            "$(awk -v a="$(median "${off[@]}")" -v b="$(median "${on[@]}")" 'BEGIN { printf "%+.1f%%", (b - a) / a * 100 }')" \
            "(per rep: ${reps[*]})"
    }
    has_load fork && echo "metrics on: fork loop $(more "${F_NSW_NSREC[new]}" "${F_NSW_NSREC[metrics]}")"
    has_load setns && echo "metrics on: setns storm $(more "${S_NSREC[new:$DEFAULT_RING]}" "${S_NSREC[metrics:$DEFAULT_RING]}")"
fi
