#!/usr/bin/env bash
# mkbundle.sh DIR [ARGS...]: a minimal bundle with a busybox rootfs (a copy
# of /bin/busybox plus one symlink per applet) and the default config.json of
# `proxcage spec`, whose process runs ARGS (default /bin/sh) without a terminal.
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
# JSON-quote each argument (backslashes and double quotes), then replace the
# default args ["sh"] and the terminal flag of the generated spec.
args=""
for a in "$@"; do
  a=${a//\\/\\\\}; a=${a//\"/\\\"}
  args+="${args:+, }\"$a\""
done
tmp=$(mktemp "$dir/.config.XXXXXX")
ARGS_JSON="$args" awk '
  /"terminal": true/ { sub(/true/, "false") }
  /"args": \[/ && !done { print substr($0, 1, index($0, "[")) ENVIRON["ARGS_JSON"] "],"; skip = 1; done = 1; next }
  skip && /\]/ { skip = 0; next }
  skip { next }
  { print }
' "$dir/config.json" > "$tmp"
mv "$tmp" "$dir/config.json"
