#!/bin/bash
# inside.sh DEB VERSION: runs inside a fresh Debian root (test/package/deb.sh
# makes it): installs the package with apt as an admin would, checks what
# it installed, then removes and purges it and checks that nothing is left.
set -euo pipefail
deb=$1 version=$2
export DEBIAN_FRONTEND=noninteractive
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }
apt_get() {
	apt-get -y -q -o Dpkg::Use-Pty=0 "$@" </dev/null >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt-get $*"; }
}
# Every file on the root filesystem but dpkg's and apt's own bookkeeping
# (/proc, /sys, /dev, /run and /tmp are other mounts).
snapshot() {
	find / -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache -o -path /var/log \) -prune -o -print | sort
}
snapshot >/tmp/before

step "apt-get install ./$(basename "$deb")"
apt_get install --no-install-recommends "$deb"
status=$(dpkg-query -W -f='${Status} ${Version}' proxcage)
[ "$status" = "install ok installed $version" ] || fail "dpkg status: $status"

step "proxcage version"
proxcage version | tee /tmp/out
grep -qx "proxcage version $version" /tmp/out || fail "version does not say $version"

step "proxcage doctor (the shipped config: native)"
proxcage doctor | tee /tmp/out || fail "doctor failed with the shipped config"
grep -q '^ok *native: namespaces' /tmp/out || fail "doctor checked no native namespaces"

step "proxcage doctor, routed to lxc (LXC itself is not installed here)"
printf 'default_backend = "lxc"\n' >/tmp/lxc.toml
if proxcage --config /tmp/lxc.toml doctor >/tmp/out 2>&1; then fail "lxc doctor passed without LXC"; fi
cat /tmp/out
grep -q '^FAIL *lxc: tools .*apt-get install lxc' /tmp/out || fail "lxc doctor does not name the missing tools"
# The installed layout: the stand-in in libexec is found.
grep -q '^ok *lxc: proxcage-lxc-init */usr/libexec/proxcage/proxcage-lxc-init ' /tmp/out ||
	fail "lxc doctor does not find the stand-in in /usr/libexec/proxcage"

step "the stand-in, man pages, completions, the conffile"
proxcage_lxc_init=/usr/libexec/proxcage/proxcage-lxc-init
[ -x "$proxcage_lxc_init" ] || fail "$proxcage_lxc_init missing"
# A static binary: it runs inside any container's rootfs.
out=$("$proxcage_lxc_init" 2>&1 || true)
[[ "$out" == *"usage: proxcage-lxc-init"* ]] || fail "proxcage-lxc-init does not run: $out"
# Each page's header carries the version `proxcage version` prints.
th() { zcat "$1" | grep -m1 '^\.TH '; }
[[ "$(th /usr/share/man/man8/proxcage.8.gz)" == '.TH "PROXCAGE" "8" "'*'" "proxcage '"$version"'" ""' ]] ||
	fail "man page proxcage(8): $(th /usr/share/man/man8/proxcage.8.gz)"
for s in FILES 'EXIT STATUS' CONFIGURATION; do
	zcat /usr/share/man/man8/proxcage.8.gz | grep -qx "\.SH $s" || fail "proxcage(8) has no $s"
done
zcat /usr/share/man/man8/proxcage-create.8.gz | grep -q 'pid-file' || fail "man page proxcage-create(8)"
[[ "$(th /usr/share/man/man8/proxcage-create.8.gz)" == '.TH "PROXCAGE-CREATE" "8" "'*'" "proxcage '"$version"'" ""' ]] ||
	fail "man page proxcage-create(8): $(th /usr/share/man/man8/proxcage-create.8.gz)"
cfgman=/usr/share/man/man5/proxcage-config.toml.5.gz
[[ "$(th $cfgman)" == '.TH "PROXCAGE-CONFIG.TOML" "5" "'*'" "proxcage '"$version"'" ""' ]] ||
	fail "man page proxcage-config.toml(5): $(th $cfgman)"
for k in default_backend data_dir match_annotation template_cache lxc_attach PROXCAGE_PVE_TOKEN_SECRET org.proxcage.vmid; do
	zcat $cfgman | grep -q "$k" || fail "proxcage-config.toml(5) does not mention $k"
done
bash -c 'source /usr/share/bash-completion/completions/proxcage && complete -p proxcage' >/dev/null ||
	fail "bash completion does not load"
[ -s /usr/share/zsh/vendor-completions/_proxcage ] && [ -s /usr/share/fish/vendor_completions.d/proxcage.fish ] ||
	fail "zsh/fish completions"
dpkg-query -W -f='${Conffiles}\n' proxcage | grep -q '^ /etc/proxcage/config.toml [0-9a-f]\{32\}$' ||
	fail "/etc/proxcage/config.toml is not a conffile"

step "an admin's edit of the config survives a reinstall"
echo '# edited by the admin' >>/etc/proxcage/config.toml
apt_get install --reinstall "$deb"
grep -q '^# edited by the admin$' /etc/proxcage/config.toml || fail "reinstall replaced the edited config"

step "apt-get remove: the program goes, the config stays"
apt_get remove proxcage
[ ! -e /usr/bin/proxcage ] && [ ! -e "$proxcage_lxc_init" ] || fail "files left after remove"
[ -f /etc/proxcage/config.toml ] || fail "remove deleted the config (only purge may)"
status=$(dpkg-query -W -f='${Status}' proxcage)
[ "$status" = "deinstall ok config-files" ] || fail "dpkg status after remove: $status"

step "apt-get purge: nothing left"
apt_get purge proxcage
if dpkg-query -W -f='${Status}' proxcage 2>/dev/null | grep -q installed; then fail "still known to dpkg after purge"; fi
snapshot >/tmp/after
if ! diff /tmp/before /tmp/after >/tmp/diff; then
	cat /tmp/diff >&2
	fail "the root differs after purge"
fi
echo "-- the root is as before the install ($(wc -l </tmp/before) paths)"
