#!/usr/bin/env bash
# Runs runtime-tools programs against proxcage routed to the lxc backend
# (real LXC containers), next to native, in one run.
#
#   test/validation/lxc.sh [PROXCAGE_BIN]
#
# PROGRAMS defaults to the ones issue 6 asks for.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../../bin/proxcage}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
W=$(mktemp -d /tmp/proxcage-lxc-validation.XXXXXX)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
printf 'default_backend = "lxc"\n' >"$W/config.toml"
cat >"$W/proxcage-lxc" <<WRAP
#!/bin/sh
exec "$BIN" --config "$W/config.toml" "\$@"
WRAP
chmod 755 "$W/proxcage-lxc"
PROGRAMS=${PROGRAMS:-"default create start state kill delete hostname process mounts linux_ns_path"} \
	"$HERE/run.sh" "proxcage-lxc=$W/proxcage-lxc" "proxcage-native=$BIN"
