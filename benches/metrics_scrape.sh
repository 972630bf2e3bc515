#!/usr/bin/env bash
# `nswatch record --metrics`: how long a scrape of many live groups takes, and whether
# heavy container churn keeps the output and the memory bounded.
#
#   sudo benches/metrics_scrape.sh
#
# Environment knobs:
#   LIVE_GROUPS=1000   live groups during the scrapes: `unshare -n sleep` sandboxes, each
#                      its own network namespace
#   SCRAPES=200        scrapes timed (one after another, as fast as curl goes)
#   CHURN=5000         short-lived sandboxes after that (`unshare -n -u true`, one after
#                      another), the output's groups and nswatch's memory sampled as they go
#   HISTORY=           record's --history (default: record's, 10m); shorter than the
#                      churn, the model gives back the groups that ended before it
#   CARGO_TARGET_DIR=/tmp/live-bench-target
#
# A scrape's time is curl's time_total (connect, request, the whole answer) on loopback;
# the sleepers are killed before the churn, so that the churn's groups are the ended ones.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N_GROUPS=${LIVE_GROUPS:-1000}
SCRAPES=${SCRAPES:-200}
CHURN=${CHURN:-5000}
PORT=${PORT:-19473}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/live-bench-target}

if [[ $(id -u) -ne 0 ]]; then
    echo "metrics_scrape.sh: needs root (system-wide perf events, network namespaces)" >&2
    exit 1
fi
log() { echo "# $*" >&2; }

TMP=$(mktemp -d /tmp/metrics_scrape.XXXXXX)
NSW_PID=
SLEEPERS=()
cleanup() {
    ((${#SLEEPERS[@]})) && kill "${SLEEPERS[@]}" 2>/dev/null
    if [[ -n $NSW_PID ]]; then
        kill -INT "$NSW_PID" 2>/dev/null || true
        wait "$NSW_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

log "building nswatch (release)"
(cd "$ROOT" && cargo build --release --quiet)
NSW=$CARGO_TARGET_DIR/release/nswatch
URL=http://127.0.0.1:$PORT/metrics

"$NSW" record --count-only --metrics "127.0.0.1:$PORT" ${HISTORY:+--history "$HISTORY"} 2>"$TMP/err" &
NSW_PID=$!
until curl -sf -o /dev/null "$URL"; do
    kill -0 "$NSW_PID" || { cat "$TMP/err" >&2; exit 1; }
    sleep 0.1
done

# The value of a series without labels (or the first line of a selector's).
metric() { curl -sf "$URL" | awk -v m="$1" 'index($0, m " ") == 1 { print $NF; exit }'; }
median() {
    sort -g | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'
}
pctl() { sort -g | awk -v p="$1" '{a[NR]=$1} END { i = int(NR * p / 100); if (i < 1) i = 1; print a[i] }'; }

base=$(metric 'nswatch_groups{kind="sandbox"}')
log "starting $N_GROUPS sandboxes"
for ((i = 0; i < N_GROUPS; i++)); do
    unshare -n sleep 3600 &
    SLEEPERS+=($!)
done
want=$((base + N_GROUPS))
t0=$SECONDS
while (($(metric 'nswatch_groups{kind="sandbox"}') < want)); do
    ((SECONDS - t0 < 60)) || { echo "metrics_scrape.sh: the sandboxes did not all show" >&2; exit 1; }
    sleep 0.5
done
sleep 1

curl -sf "$URL" >"$TMP/one"
bytes=$(wc -c <"$TMP/one")
series=$(grep -vc '^#' "$TMP/one")
log "timing $SCRAPES scrapes of $(metric nswatch_metrics_groups) groups ($series series, $bytes bytes)"
for ((i = 0; i < SCRAPES; i++)); do
    curl -sf -o /dev/null -w '%{time_total}\n' "$URL"
done >"$TMP/times"
cpu0=$(awk '{print $14 + $15}' "/proc/$NSW_PID/stat")
for ((i = 0; i < 100; i++)); do curl -sf -o /dev/null "$URL"; done
cpu1=$(awk '{print $14 + $15}' "/proc/$NSW_PID/stat")
tck=$(getconf CLK_TCK)
rss_live=$(metric process_resident_memory_bytes)

kill "${SLEEPERS[@]}" 2>/dev/null || true
wait "${SLEEPERS[@]}" 2>/dev/null || true
SLEEPERS=()

log "churn: $CHURN short-lived sandboxes"
churn_rows=()
for ((i = 1; i <= CHURN; i++)); do
    unshare -n -u true
    if ((i % 1000 == 0)); then
        sleep 1
        churn_rows+=("$i $(metric nswatch_metrics_groups) $(metric nswatch_metrics_groups_dropped_total) $(metric process_resident_memory_bytes)")
        log "after $i: ${churn_rows[-1]}"
    fi
done

echo
echo "nswatch --metrics: $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "scrape of $N_GROUPS live sandboxes ($series series, $bytes bytes):" \
    "median $(awk '{print $1 * 1000}' "$TMP/times" | median) ms," \
    "p99 $(awk '{print $1 * 1000}' "$TMP/times" | pctl 99) ms," \
    "max $(awk '{print $1 * 1000}' "$TMP/times" | sort -g | tail -1) ms over $SCRAPES;" \
    "nswatch CPU $(awk -v c="$((cpu1 - cpu0))" -v t="$tck" 'BEGIN { printf "%.2f", c / t * 1000 / 100 }') ms a scrape;" \
    "RSS $((rss_live / 1024)) KiB"
echo "churn (sandboxes started and ended, groups in the output, groups dropped, RSS KiB):"
for r in "${churn_rows[@]}"; do
    read -r n g d rss <<<"$r"
    echo "  $n $g $d $((rss / 1024))"
done
