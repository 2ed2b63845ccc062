#!/usr/bin/env bash
# Runs runtime-tools programs against proxcage routed to the pve backend,
# on the pct test double (which runs each CT with LXC), next to native.
#
#   test/validation/pve.sh [PROXCAGE_BIN]
#
# PROGRAMS defaults to the ones issue 3 asks for.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../../bin/proxcage}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
W=$(mktemp -d /tmp/proxcage-pve-validation.XXXXXX)
chmod 755 "$W"
trap 'for c in "$W"/pve/lxc/*.conf; do [ -e "$c" ] && lxc-stop -P "$W/pve/lxcpath" -n "$(basename "$c" .conf)" -k 2>/dev/null; done; [ -n "${HOLD:-}" ] && kill "$HOLD" 2>/dev/null && wait "$HOLD" 2>/dev/null; rm -rf "$W"' EXIT
bash "$HERE/../pctdouble/install.sh" "$W/bin" >/dev/null
mkdir -p "$W/pve"
# The double runs CTs unprivileged, in PVE's id map: root needs the
# subordinate ids a PVE node has (root:100000:65536) while it runs.
ROOT=$(cd "$HERE/../.." && pwd)
(cd "$ROOT" && CGO_ENABLED=0 "${GO:-$("$ROOT/scripts/find-go.sh")}" build -o "$W/bin/subids-hold" ./test/subids/cmd/subids-hold)
"$W/bin/subids-hold" > "$W/subids.ready" &
HOLD=$!
for _ in $(seq 100); do grep -q ready "$W/subids.ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$W/subids.ready" || { echo "pve.sh: subordinate ids for unprivileged CTs: subids-hold did not get them" >&2; exit 1; }
cat > "$W/config.toml" <<CONF
default_backend = "pve"
[pve]
transport = "pct"
template_storage = "local"
rootfs_storage = "local-lvm"
bridge = "vmbr0"
[pve.tools]
# pct's CT configs and config locks, where the pct transport writes env:
# the double's, not a node's /etc/pve/lxc.
ct_config_dir = "$W/pve/lxc"
lock_dir = "$W/pve/lock"
CONF
cat > "$W/proxcage-pve" <<WRAP
#!/bin/sh
PATH="$W/bin:\$PATH" PCTDOUBLE_DIR="$W/pve" exec "$BIN" --root "$W/root" --config "$W/config.toml" "\$@"
WRAP
chmod 755 "$W/proxcage-pve"
PROGRAMS=${PROGRAMS:-"default create start state kill delete hostname"} \
  "$HERE/run.sh" "proxcage-pve=$W/proxcage-pve" "proxcage-native=$BIN"
