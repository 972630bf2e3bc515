#!/usr/bin/env bash
# What the kernel charges a writer per byte of a growing file, plain writes against writes
# into blocks reserved ahead (what `nswatch record -o` does, src/out_file.rs), in one run.
#
#   benches/file_write.sh            # in /tmp; DIR=... for another file system
#
# Knobs: REPS=8 (pairs, the order alternating), MB=1024 (per run), DIR=/tmp.
# Prints every run's ns per byte (writer's CPU) and each side's median; a warm-up run
# comes first. In a VM the runs fall in clusters (fresh guest pages cost the host a
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
plain=() reserved=()
for ((r = 0; r < REPS; r++)); do
    if ((r % 2)); then order=(reserved plain); else order=(plain reserved); fi
    for m in "${order[@]}"; do
        sync
        read -r _ v < <("$BIN" "$DIR/file_write.out" "$total" "$m")
        echo "rep $((r + 1)) $m: $v ns/byte"
        if [[ $m == plain ]]; then plain+=("$v"); else reserved+=("$v"); fi
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mp=$(median "${plain[@]}") mr=$(median "${reserved[@]}")
echo "$MB MiB in 256 KiB writes, $REPS runs each, $(findmnt -no FSTYPE -T "$DIR") at $DIR"
echo "median ns/byte: plain $mp, reserved $mr, ratio $(awk -v a="$mp" -v b="$mr" 'BEGIN {printf "%.2f", a/b}')"
