#!/usr/bin/env bash
# Runs runtime-tools programs against proxcage routed to the pve backend,
# on the pct test double (which runs each CT with LXC), next to native.
#
#   test/validation/pve.sh [PROXCAGE_BIN]
#
# PROGRAMS defaults to the ones issue 3 asks for. The double, root's held
# subordinate ids (its CTs are unprivileged, in PVE's id map) and the
# config are test/clients/lib.sh's backend_setup, as the engine tests use.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../../bin/proxcage}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
# shellcheck source=../clients/lib.sh
. "$HERE/../clients/lib.sh"
init_scratch
trap remove_scratch EXIT
BACKEND=pve backend_setup
cat > "$SCRATCH/proxcage-pve" <<WRAP
#!/bin/sh
export $RUNTIME_ENV
exec "$BIN" --root "$SCRATCH/root" $RUNTIME_ARGS "\$@"
WRAP
chmod 755 "$SCRATCH/proxcage-pve"
PROGRAMS=${PROGRAMS:-"default create start state kill delete hostname"} \
  "$HERE/run.sh" "proxcage-pve=$SCRATCH/proxcage-pve" "proxcage-native=$BIN"
