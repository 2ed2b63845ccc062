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
trap 'for c in "$W"/pve/lxc/*.conf; do [ -e "$c" ] && lxc-stop -P "$W/pve/lxcpath" -n "$(basename "$c" .conf)" -k 2>/dev/null; done; rm -rf "$W"' EXIT
bash "$HERE/../pctdouble/install.sh" "$W/bin" >/dev/null
mkdir -p "$W/pve"
cat > "$W/config.toml" <<CONF
default_backend = "pve"
[pve]
transport = "pct"
template_storage = "local"
rootfs_storage = "local-lvm"
bridge = "vmbr0"
CONF
cat > "$W/proxcage-pve" <<WRAP
#!/bin/sh
PATH="$W/bin:\$PATH" PCTDOUBLE_DIR="$W/pve" exec "$BIN" --root "$W/root" --config "$W/config.toml" "\$@"
WRAP
chmod 755 "$W/proxcage-pve"
PROGRAMS=${PROGRAMS:-"default create start state kill delete hostname"} \
  "$HERE/run.sh" "proxcage-pve=$W/proxcage-pve" "proxcage-native=$BIN"
