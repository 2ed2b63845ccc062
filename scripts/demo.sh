#!/usr/bin/env bash
# Makes a busybox bundle (from Debian's busybox-static) and runs it on the
# native backend. Used by `make demo`, the README's quick start.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PROXCAGE_BIN:-$PWD/bin/proxcage}
B=${BUNDLE:-$PWD/_demo/bundle}
if [ ! -x /bin/busybox ]; then
  echo "demo: installing busybox-static"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
./scripts/mkbundle.sh "$B" /bin/echo "hello from a proxcage container on $(hostname)"
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
id=demo-$$
echo "+ proxcage run --bundle $B $id"
$sudo_cmd "$BIN" run --bundle "$B" "$id"
