#!/usr/bin/env bash
# debian-rootfs.sh DIR [SUITE]: a Debian minbase rootfs of SUITE (default
# bookworm) in DIR, built once with debootstrap from the mirror apt uses
# and kept while DIR/etc/debian_version exists, plus /sbin/init as a tiny
# script so it can also run as a system container (minbase has no init
# system). DIR's parents are created. Used by the pve and lxc e2e tests, the
# image comparison and the package test.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 DIR [SUITE]" >&2; exit 2; }
dir=$1 suite=${2:-bookworm}
if [ -f "$dir/etc/debian_version" ] && [ -x "$dir/sbin/init" ]; then exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
mkdir -p "$(dirname "$dir")"
tmp="$dir.tmp.$$"
rm -rf "$tmp" "$tmp.log"
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
rm -f "$tmp/sbin/init"
printf '#!/bin/sh\nexec sleep infinity\n' >"$tmp/sbin/init"
chmod 755 "$tmp/sbin/init"
rm -rf "$dir"
mv "$tmp" "$dir"
