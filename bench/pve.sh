#!/usr/bin/env bash
# pve create time on the pct test double, cold (the template is converted)
# and warm (the template is in the cache: only the digest is computed), for
# a Debian minbase rootfs. Each run is create + delete of one CT.
#
#   bench/pve.sh [PROXCAGE_BIN]      env: RUNS (10)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BIN=${1:-$REPO/bin/proxcage}
RUNS=${RUNS:-10}
CACHE=${PROXCAGE_CACHE:-$HOME/.cache/proxcage}
ROOTFS=$CACHE/debian-minbase
"$REPO/scripts/debian-rootfs.sh" "$ROOTFS"
W=$(mktemp -d /var/tmp/proxcage-bench-pve.XXXXXX)
trap 'rm -rf "$W"' EXIT
bash "$REPO/test/pctdouble/install.sh" "$W/bin" >/dev/null
mkdir -p "$W/pve" "$W/bundle"
printf 'default_backend = "pve"\n[pve]\ntransport = "pct"\n' > "$W/config.toml"
"$BIN" spec --bundle "$W/bundle"
sed -i "s|\"path\": \"rootfs\"|\"path\": \"$ROOTFS\"|; s|\"sh\"|\"/sbin/init\"|" "$W/bundle/config.json"
P="env PATH=$W/bin:$PATH PCTDOUBLE_DIR=$W/pve $BIN --root $W/root --config $W/config.toml"
cycle="$P create -b $W/bundle b1 && $P delete b1"
prune="$P templates prune >/dev/null"
# One --prepare per command: cold prunes the cache first, warm does not.
hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/h.json" \
  --prepare "$prune" --prepare true \
  -n cold "$cycle" -n warm "$cycle" 2>&1 | grep -E "Time|cold|warm|faster"
