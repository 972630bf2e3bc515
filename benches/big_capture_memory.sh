#!/usr/bin/env bash
# Memory of `nswatch report` on a big capture with callchains: peak RSS against file size.
#
#   sudo benches/big_capture_memory.sh
#
# Records `perf record -g -a --namespaces` of a fork loop with samples and callchains
# until the file holds SIZE_MB, then runs, each under GNU time (peak RSS, wall time):
#   nswatch report --format ndjson FILE
#   nswatch report --by container --folded FILE
#   nswatch report FILE                       (text)
# and the same commands on a capture of SIZE_MB/8 recorded the same way, so that the table
# shows whether memory grows with the input.
#
# Environment knobs:
#   SIZE_MB=1024      size of the big capture
#   FREQ=4000         sampling frequency (perf record -F)
#   CARGO_TARGET_DIR  honoured for the release build (default: <repo>/target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-1024}
FREQ=${FREQ:-4000}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ $(id -u) -ne 0 ]]; then
    echo "big_capture_memory.sh: needs root (perf record -a)" >&2
    exit 1
fi
[[ -x /usr/bin/time ]] || { echo "big_capture_memory.sh: needs GNU time (package time)" >&2; exit 1; }

TMP=$(mktemp -d /var/tmp/big_capture.XXXXXX)
LOAD=
cleanup() {
    [[ -n $LOAD ]] && kill "$LOAD" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "# $*" >&2; }

log "building nswatch (release) into $TARGET_DIR"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet)
NSWATCH=$TARGET_DIR/release/nswatch
gcc -O2 -pthread -o "$TMP/stress" "$ROOT/benches/stress.c"

# Records until the file reaches $2 MiB; the fork loop gives FORK, NAMESPACES and EXIT
# records besides the samples.
capture() {
    local out=$1 mb=$2
    "$TMP/stress" fork 1000000000 >/dev/null &
    LOAD=$!
    perf record -g -a --namespaces -F "$FREQ" -m 1024 -q -o "$out" 2>"$TMP/record.err" &
    local rec=$!
    while kill -0 "$rec" 2>/dev/null; do
        sleep 1
        local size
        size=$(stat -c %s "$out" 2>/dev/null || echo 0)
        ((size >= mb << 20)) && break
    done
    kill -INT "$rec"
    wait "$rec" || true
    kill "$LOAD" 2>/dev/null || true
    wait "$LOAD" 2>/dev/null || true
    LOAD=
    log "$out: $(($(stat -c %s "$out") >> 20)) MiB"
}

# Prints "peak-RSS-MiB wall-s" of one run.
measure() {
    /usr/bin/time -f '%M %e' -o "$TMP/time" "$@" >/dev/null 2>"$TMP/err" ||
        { cat "$TMP/err" >&2; exit 1; }
    awk '{ printf "%.0f %s", $1 / 1024, $2 }' "$TMP/time"
}

capture "$TMP/small.data" $((SIZE_MB / 8))
capture "$TMP/big.data" "$SIZE_MB"

printf '%-44s %16s %16s\n' command "$((SIZE_MB / 8)) MiB: RSS, s" "$SIZE_MB MiB: RSS, s"
for how in "--format ndjson" "--by container --folded" ""; do
    # shellcheck disable=SC2086
    {
        s=$(measure "$NSWATCH" report $how "$TMP/small.data")
        b=$(measure "$NSWATCH" report $how "$TMP/big.data")
    }
    printf '%-44s %9s MiB %4ss %9s MiB %4ss\n' "nswatch report ${how:-(text)}" $s $b
done
