#!/usr/bin/env bash
# Soak test: `nswatch record --count-only` (or writing NDJSON to a file) under continuous churn;
# watches its memory.
#
#   sudo benches/soak.sh [SECONDS]        (default 600)
#
# Environment knobs:
#   INTERVAL=10        seconds between RSS samples
#   LOAD=fork          fork: a fork/exit loop; setns: the setns storm (2 threads going back
#                      and forth between two net namespaces, the same threads all along);
#                      sandboxes: container churn, `unshare -n -u true` one after another
#                      (each a new group; with NSW_ARGS="--history 10s" the model gives
#                      them back after 10 s)
#   CHURN_N=5000       forks per `stress fork` invocation of the churn loop
#   OUTPUT=quiet       quiet: counts only; ndjson: every event written to a file in the
#                      temporary directory (deleted at the end; its size is printed)
#   NSWATCH=           an nswatch binary to run instead of building this tree's
#   NSW_ARGS="..."     extra arguments for nswatch record (e.g. "--ring-pages 16")
#   CARGO_TARGET_DIR=/tmp/live-bench-target
#
# Prints one line per sample (elapsed s, VmRSS kB, nswatch CPU s so far), then the
# first/max/last RSS, VmHWM, the fork count and nswatch's summary (records, lost).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${1:-600}
INTERVAL=${INTERVAL:-10}
CHURN_N=${CHURN_N:-5000}
read -r -a EXTRA <<<"${NSW_ARGS:-}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/live-bench-target}
LOAD=${LOAD:-fork}
OUTPUT=${OUTPUT:-quiet}
case $OUTPUT in
    quiet | ndjson) ;;
    *) echo "soak.sh: OUTPUT=$OUTPUT: expected quiet or ndjson" >&2; exit 1 ;;
esac
case $LOAD in
    fork | setns | sandboxes) ;;
    *) echo "soak.sh: LOAD=$LOAD: expected fork, setns or sandboxes" >&2; exit 1 ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "soak.sh: needs root (system-wide perf events)" >&2
    exit 1
fi

TMP=$(mktemp -d /tmp/soak.XXXXXX)
NSW_PID= CHURN_PID=
stop_churn() {
    [[ -n $CHURN_PID ]] || return 0
    local kids
    kids=$(ps -o pid= --ppid "$CHURN_PID" 2>/dev/null || true)
    kill "$CHURN_PID" 2>/dev/null || true
    # shellcheck disable=SC2086
    [[ -n $kids ]] && kill $kids 2>/dev/null || true
    wait "$CHURN_PID" 2>/dev/null || true
    CHURN_PID=
}
cleanup() {
    stop_churn
    if [[ -n $NSW_PID ]] && kill -0 "$NSW_PID" 2>/dev/null; then
        kill -INT "$NSW_PID" 2>/dev/null || true
        wait "$NSW_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -n ${NSWATCH:-} ]]; then
    NSW=$NSWATCH
else
    echo "# building nswatch (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet)
    NSW=$CARGO_TARGET_DIR/release/nswatch
fi
gcc -O2 -pthread -o "$TMP/stress" "$ROOT/benches/stress.c"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_s() { awk '{printf "%.2f", $1 / 1e9}' "/proc/$1/schedstat"; }

if [[ $OUTPUT == quiet ]]; then OUT_ARGS=(--count-only); else OUT_ARGS=(-o "$TMP/out.ndjson"); fi
"$NSW" record "${OUT_ARGS[@]}" "${EXTRA[@]}" 2>"$TMP/nsw.err" &
NSW_PID=$!
sleep 1
kill -0 "$NSW_PID" || { [[ $OUTPUT == ndjson ]] && echo "output: $(stat -c %s "$TMP/out.ndjson") bytes of NDJSON"
cat "$TMP/nsw.err" >&2; exit 1; }

if [[ $LOAD == fork ]]; then
    (
        trap 'exit 0' TERM
        while :; do "$TMP/stress" fork "$CHURN_N"; done
    ) >"$TMP/churn.out" 2>"$TMP/churn.err" &
    what="fork churn (stress fork $CHURN_N in a loop)"
elif [[ $LOAD == sandboxes ]]; then
    (
        trap 'exit 0' TERM
        n=0
        while :; do
            unshare -n -u true
            n=$((n + 1))
            ((n % 100)) || echo "$n" >"$TMP/sandboxes"
        done
    ) >"$TMP/churn.out" 2>"$TMP/churn.err" &
    what="container churn (unshare -n -u true in a loop)"
else
    # One storm for the whole run: the same two threads change namespaces all along.
    # (Longer than the soak: it is stopped, still running, after the last sample.)
    "$TMP/stress" setns "$((DURATION + 5))" 2 >"$TMP/churn.out" 2>"$TMP/churn.err" &
    what="a setns storm (stress setns, 2 threads)"
fi
CHURN_PID=$!

echo "soak: $NSW record ${OUT_ARGS[*]} ${EXTRA[*]} for ${DURATION}s under $what, RSS every ${INTERVAL}s"
printf '%8s %10s %10s\n' "t/s" "VmRSS/kB" "CPU/s"
declare -a RSS
start=$SECONDS
t=0
while :; do
    r=$(rss_kb "$NSW_PID")
    RSS+=("$r")
    printf '%8d %10d %10s\n' "$t" "$r" "$(cpu_s "$NSW_PID")"
    ((t >= DURATION)) && break
    step=$((DURATION - t < INTERVAL ? DURATION - t : INTERVAL))
    sleep "$step"
    t=$((SECONDS - start))
done
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$NSW_PID/status")
stop_churn
kill -INT "$NSW_PID"
wait "$NSW_PID" || true
NSW_PID=

max=$(printf '%s\n' "${RSS[@]}" | sort -n | tail -1)
echo
echo "RSS kB: first ${RSS[0]}, max $max, last ${RSS[-1]} (VmHWM $hwm); ${#RSS[@]} samples"
if [[ $LOAD == fork ]]; then
    runs=$(grep -c forks/s "$TMP/churn.out" || true)
    echo "churn: $runs completed runs of $CHURN_N forks (~$((runs * CHURN_N)) forks)," \
        "median rate $(awk '{print $(NF-1)}' "$TMP/churn.out" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') forks/s"
elif [[ $LOAD == sandboxes ]]; then
    echo "churn: ~$(cat "$TMP/sandboxes" 2>/dev/null || echo 0) sandboxes started and ended"
else
    echo "storm: setns records below (NAMESPACES)"
fi
[[ $OUTPUT == ndjson ]] && echo "output: $(stat -c %s "$TMP/out.ndjson") bytes of NDJSON"
cat "$TMP/nsw.err"
