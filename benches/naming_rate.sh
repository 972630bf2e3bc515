#!/usr/bin/env bash
# Naming rate of short-lived containers: for every runtime the test harness drives
# (tests/common/runtimes.rs: runc, crun, LXC, systemd-nspawn with and without its scope,
# bubblewrap, firejail with and without a network, ip netns, docker, podman rootful, in a
# pod and rootless, containerd's ctr), one `nswatch record -o FILE` at default settings
# (release build) while N containers run one after another on the busybox-static rootfs
# (docker and podman: an image imported from it), in the foreground with --rm where the
# runtime has it, their payloads living 0, 50, 200 and 1000 ms in turn (/bin/true,
# /bin/sleep 0.05 ...). A container counts as named at start when a `container_start`
# made while it ran carries the runtime's own names exactly as the runtime gave them:
# runtime, id, name, and image, pod and containerd namespace where it has them.
#
#   sudo benches/naming_rate.sh                 # N=20, every runtime
#   sudo env N=40 RUNTIMES="runc docker" benches/naming_rate.sh
#
# RUNTIMES takes the harness's labels (runc crun lxc nspawn nspbare bwrap firejail fjhost
# netns docker podman ppod prl ctr). The harness starts containerd and dockerd when they
# do not answer, writes podman's containers.conf, makes the rootless user and imports the
# images (docs/runtimes.md); runtimes it cannot run are listed as skipped with the reason.
# Prints per runtime: containers started, named at start, the rate, and each miss with the
# container_start fields it got instead (none: no container_start while it ran).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/naming-rate-target}
if [[ $(id -u) -ne 0 ]]; then
    echo "naming_rate.sh: needs root (system-wide perf events, the runtimes)" >&2
    exit 1
fi
TABLE=$(mktemp)
trap 'rm -f "$TABLE"' EXIT
# The harness and the scoring live in tests/short_lived.rs (its ignored `naming_rate`);
# a release test build runs the release nswatch.
cd "$ROOT"
cargo test --release --quiet --test short_lived --no-run
NSWATCH_RATE_N=${N:-20} NSWATCH_RATE_RUNTIMES=${RUNTIMES:-} NSWATCH_RATE_TABLE=$TABLE \
    cargo test --release --quiet --test short_lived naming_rate -- --ignored --exact \
    --nocapture >&2
echo "nswatch $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), N=${N:-20}, payloads 0/50/200/1000 ms"
cat "$TABLE"
