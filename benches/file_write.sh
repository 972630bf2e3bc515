#!/usr/bin/env bash
# What the kernel charges a writer per byte of a growing file, in one run: plain writes,
# writes into blocks reserved ahead (what `nswatch record -o` does where direct I/O is not
# taken), and direct writes (what it does on ext4, XFS and btrfs; src/out_file.rs).
#
#   benches/file_write.sh            # in /tmp; DIR=... for another file system
#
# Knobs: REPS=8 (pairs, the order alternating), MB=1024 (per run), DIR=/tmp.
# Prints every run's ns per byte (writer's CPU, then wall time) and each mode's medians; a
# warm-up run comes first. In a VM the runs fall in clusters (fresh guest pages cost the host a
# fault each): compare the medians and the clusters, not single runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-8}
MB=${MB:-1024}
DIR=${DIR:-/tmp}
BIN=$(mktemp /tmp/file_write.XXXXXX)
trap 'rm -f "$BIN" "$DIR/file_write.out"' EXIT
gcc -O2 -o "$BIN" "$ROOT/benches/file_write.c"
total=$((MB << 20))
"$BIN" "$DIR/file_write.out" "$total" plain >/dev/null
modes=(plain reserved direct)
declare -A cpu wall
for ((r = 0; r < REPS; r++)); do
    # The order rotates, so that each mode runs first, second and third alike.
    order=("${modes[@]:r%3}" "${modes[@]:0:r%3}")
    for m in "${order[@]}"; do
        sync
        read -r _ c w < <("$BIN" "$DIR/file_write.out" "$total" "$m")
        echo "rep $((r + 1)) $m: $c ns/byte of CPU, $w of wall time"
        cpu[$m]+="$c " wall[$m]+="$w "
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "$MB MiB in 256 KiB writes, $REPS runs each, $(findmnt -no FSTYPE -T "$DIR") at $DIR"
for m in "${modes[@]}"; do
    # shellcheck disable=SC2086 # the lists are words
    echo "$m: median ns/byte CPU $(median ${cpu[$m]}), wall $(median ${wall[$m]})"
done
