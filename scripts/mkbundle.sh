#!/usr/bin/env bash
# mkbundle.sh DIR [ARGS...]: a minimal bundle with a busybox rootfs (a copy
# of /bin/busybox plus one symlink per applet) and a config.json from
# `proxcage spec` (or runc spec) whose process runs ARGS without a terminal.
set -euo pipefail
dir=$1; shift
[ $# -gt 0 ] || set -- /bin/sh
BIN=${PROXCAGE_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin/proxcage}
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
  [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$BIN" spec --bundle "$dir"
python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c["process"]["args"] = args
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent="\t")
PY
