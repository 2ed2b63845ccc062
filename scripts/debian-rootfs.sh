#!/usr/bin/env bash
# debian-rootfs.sh DIR: a Debian bookworm minbase rootfs in DIR (built once
# with debootstrap from the mirror apt uses; kept if DIR/etc/debian_version
# exists), plus /sbin/init as a tiny script so it can also run as a system
# container (minbase has no init system). Used by the pve e2e tests.
set -euo pipefail
dir=$1
if [ -f "$dir/etc/debian_version" ] && [ -x "$dir/sbin/init" ]; then exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
tmp="$dir.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
debootstrap --variant=minbase bookworm "$tmp" "$mirror" > "$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; rm -f "$tmp.log"; exit 1; }
rm -f "$tmp.log"
rm -f "$tmp/sbin/init"
printf '#!/bin/sh\nexec sleep infinity\n' > "$tmp/sbin/init"
chmod 755 "$tmp/sbin/init"
rm -rf "$dir"
mv "$tmp" "$dir"
