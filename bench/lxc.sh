#!/usr/bin/env bash
# lxc backend benchmark, in one run with hyperfine: a full container cycle
# (run /bin/true in a busybox bundle to its end, and remove it) through
#
#  proxcage   `proxcage run --bundle B ID` routed to the lxc backend
#             (create + start + wait + delete, with the stand-in process)
#  lxc-raw    `lxc-execute -P P -n ID -f CONFIG -- /bin/true` on the same
#             LXC config proxcage generates (without the stand-in mounts)
#
#   bench/lxc.sh PROXCAGE
#
# Env: RUNS (30), SCRATCH (default mktemp), BENCH_OUT=DIR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROXCAGE=$(realpath "$1")
RUNS=${RUNS:-30}
for c in hyperfine lxc-execute jq; do
	command -v "$c" >/dev/null || { echo "$c missing" >&2; exit 2; }
done
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/proxcage-bench-lxc.XXXXXX)}
trap 'rm -rf "$SCRATCH"' EXIT
"$HERE/../scripts/mkbundle.sh" "$SCRATCH/bundle" /bin/true >/dev/null
printf 'default_backend = "lxc"\n' >"$SCRATCH/config.toml"
PX="$PROXCAGE --root $SCRATCH/root --config $SCRATCH/config.toml"
# The LXC config proxcage writes for this bundle, minus the stand-in.
$PX create --bundle "$SCRATCH/bundle" probe >/dev/null
grep -v 'proxcage' "$SCRATCH/root/probe/lxc/probe/config" >"$SCRATCH/raw.conf"
$PX delete --force probe
mkdir -p "$SCRATCH/lxcpath"

hyperfine --runs "$RUNS" --warmup 3 --export-json "$SCRATCH/h.json" \
	-n proxcage "$PX run --bundle $SCRATCH/bundle b1" \
	-n lxc-raw "lxc-execute -q -P $SCRATCH/lxcpath -n b2 -f $SCRATCH/raw.conf -- /bin/true"

p=$(jq -r '.results[] | select(.command=="proxcage") | .median' "$SCRATCH/h.json")
r=$(jq -r '.results[] | select(.command=="lxc-raw") | .median' "$SCRATCH/h.json")
printf 'full cycle: proxcage %.1f ms, raw lxc-execute %.1f ms: ratio %.2fx (target <= 1.1x)\n' \
	"$(echo "$p*1000" | bc -l)" "$(echo "$r*1000" | bc -l)" "$(echo "$p / $r" | bc -l)"
if [ -n "${BENCH_OUT:-}" ]; then mkdir -p "$BENCH_OUT" && cp "$SCRATCH/h.json" "$BENCH_OUT/lxc.json"; fi
