#!/usr/bin/env bash
# deb.sh DEB: installs the Debian package into fresh Debian 12 (bookworm)
# and 13 (trixie) roots, the releases PVE 8 and 9 are built on, runs it
# there and removes it again (test/package/inside.sh, run in the root,
# says what is checked). Each root is an overlay over a debootstrap minbase
# tree (scripts/debian-rootfs.sh, cached), entered with chroot in mount,
# pid and network namespaces of its own: nothing it does reaches the host
# or the network, so apt has to install from the .deb and what minbase
# already holds. Also checks that `make deb` is reproducible, and that
# `make uninstall` undoes `make install`. Needs root.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DEB" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "deb.sh: needs root (overlay mounts, chroot)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$deb" ] || { echo "deb.sh: $1 not found" >&2; exit 2; }
version=$(dpkg-deb -f "$deb" Version)
cache=${PROXCAGE_CACHE:-$HOME/.cache/proxcage}
work=$(mktemp -d /tmp/proxcage-debtest.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "deb.sh: FAIL: $*" >&2; exit 1; }

# make install into a staging dir, then make uninstall: only the config
# (the admin's by then) is left, and the lxc helper dir is gone.
(cd "$top" && make --no-print-directory -s install DESTDIR="$work/inst" PREFIX=/usr/local >"$work/inst.log" 2>&1) || {
	cat "$work/inst.log" >&2
	fail "make install"
}
for f in usr/local/bin/proxcage usr/local/libexec/proxcage/proxcage-lxc-init usr/local/share/man/man8/proxcage.8 \
	usr/local/share/man/man5/proxcage-config.toml.5 usr/local/share/bash-completion/completions/proxcage \
	etc/proxcage/config.toml; do
	[ -s "$work/inst/$f" ] || fail "make install put no $f"
done
(cd "$top" && make --no-print-directory -s uninstall DESTDIR="$work/inst" PREFIX=/usr/local >"$work/inst.log" 2>&1) || {
	cat "$work/inst.log" >&2
	fail "make uninstall"
}
left=$(cd "$work/inst" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./etc/proxcage/config.toml " ] || fail "make uninstall left: $left"
[ ! -e "$work/inst/usr/local/libexec/proxcage" ] || fail "make uninstall left libexec/proxcage"
echo "deb.sh: make install, then make uninstall: only /etc/proxcage/config.toml is left"

# Reproducible: the same commit gives the same bytes.
sum1=$(sha256sum <"$deb")
cp "$deb" "$work/first.deb"
rebuilt=$(cd "$top" && ./packaging/mkdeb.sh 2>/dev/null)
[ "$(sha256sum <"$top/$rebuilt")" = "$sum1" ] || {
	cmp -l "$work/first.deb" "$top/$rebuilt" | head -5 >&2
	fail "a second make deb of the same tree gave different bytes"
}
echo "deb.sh: $(basename "$deb") rebuilt bit for bit ($(cut -c1-16 <<<"$sum1"))"

for suite in bookworm trixie; do
	base=$cache/debian-minbase
	[ "$suite" = bookworm ] || base=$cache/debian-$suite-minbase
	"$top/scripts/debian-rootfs.sh" "$base" "$suite"
	d=$work/$suite
	mkdir -p "$d/upper" "$d/work" "$d/root"
	t0=$SECONDS
	# In new namespaces: the mounts vanish with them, the root has only a
	# loopback (no route out), and its processes are the root's own.
	unshare --mount --propagation private --net --pid --fork bash -euo pipefail -c '
		d=$1 base=$2 deb=$3 inside=$4 version=$5
		r=$d/root
		mount -t overlay overlay -o "lowerdir=$base,upperdir=$d/upper,workdir=$d/work" "$r"
		mount -t proc proc "$r/proc"
		mount --rbind /sys "$r/sys"
		mount --rbind /dev "$r/dev"
		mount -t tmpfs tmpfs "$r/run"
		mount -t tmpfs tmpfs "$r/tmp"
		ip link set lo up
		cp "$deb" "$r/tmp/"
		cp "$inside" "$r/tmp/inside.sh"
		exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			/bin/bash /tmp/inside.sh "/tmp/$(basename "$deb")" "$version"
	' deb-test "$d" "$base" "$deb" "$here/inside.sh" "$version" </dev/null >"$d.log" 2>&1 || {
		sed 's/^/    /' "$d.log" >&2
		fail "Debian $suite: see above"
	}
	grep '^-- ' "$d.log" | sed 's/^/    /'
	echo "deb.sh: Debian $suite ($(cat "$base/etc/debian_version")): install, run, remove, purge ok ($((SECONDS - t0))s)"
done
