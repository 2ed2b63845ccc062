#!/usr/bin/env bash
# install-go.sh: installs the Go toolchain that go.mod's `go` line names
# (for example 1.26.8) as PREFIX/go1.26.8, with PREFIX/bin pointing at its
# bin/, and prints the path of its go. PREFIX is $PROXCAGE_GO_PREFIX, else
# /usr/local/lib/proxcage-go. Nothing else on the system changes.
#
# It fetches the toolchain the way GOTOOLCHAIN=auto does: as the module
# golang.org/toolchain@v0.0.1-go1.26.8.linux-ARCH from the Go module proxy,
# verified by the go command against the Go checksum database. Any Go can
# fetch it; when there is none, Debian's golang-go (1.19 on Debian 12) is
# installed for that one download and purged again afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ver=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$here/../go.mod")
[ -n "$ver" ] || { echo "install-go: no go line in go.mod" >&2; exit 2; }
prefix=${PROXCAGE_GO_PREFIX:-/usr/local/lib/proxcage-go}
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
armv6l | armv7l) arch=armv6l ;;
i?86) arch=386 ;;
ppc64le) arch=ppc64le ;;
s390x) arch=s390x ;;
riscv64) arch=riscv64 ;;
*) echo "install-go: no Go toolchain for $(uname -m)" >&2; exit 1 ;;
esac
dest=$prefix/go$ver
if [ -x "$dest/bin/go" ] && [ "$(cd / && GOTOOLCHAIN=local "$dest/bin/go" env GOVERSION 2>/dev/null)" = "go$ver" ]; then
	ln -sfn "go$ver/bin" "$prefix/bin"
	echo "$prefix/bin/go"
	exit 0
fi

# A Go to download with: any version will do.
boot= added=
for g in "$(command -v go || true)" /usr/local/go/bin/go /usr/lib/go/bin/go "$prefix/bin/go"; do
	if [ -n "$g" ] && [ -x "$g" ]; then boot=$g; break; fi
done
if [ -z "$boot" ]; then
	[ "$(id -u)" = 0 ] || { echo "install-go: no Go at all, and installing Debian's golang-go needs root" >&2; exit 1; }
	echo "install-go: apt-get install golang-go (to download go$ver with; purged afterwards)" >&2
	apt-get update -qq >&2 # stdout is this script's answer: the go path
	# ca-certificates stays: the proxy is HTTPS, for this and later downloads.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates >/dev/null
	before=$(dpkg-query -W -f='${Package}\n' | sort)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
	# Exactly the packages this install added, for the purge below.
	added=$(comm -13 <(echo "$before") <(dpkg-query -W -f='${Package}\n' | sort))
	boot=/usr/lib/go/bin/go
fi

mod=golang.org/toolchain@v0.0.1-go$ver.linux-$arch
echo "install-go: downloading $mod with $("$boot" version | cut -d' ' -f3) from $(cd / && "$boot" env GOPROXY)" >&2
work=$(mktemp -d) tmp=
cleanup() {
	rm -rf "$work"
	[ -z "$tmp" ] || { chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"; }
	if [ -n "$added" ]; then
		echo "install-go: apt-get purge" $added >&2
		# shellcheck disable=SC2086 # one package name per word
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $added >/dev/null
	fi
}
trap cleanup EXIT
# Outside any module: a plain download, as GOTOOLCHAIN=auto makes it.
json=$(cd "$work" && GO111MODULE=on GOTOOLCHAIN=local "$boot" mod download -json "$mod") || {
	echo "install-go: go mod download $mod failed (is the Go module proxy reachable? GOPROXY=$(cd / && "$boot" env GOPROXY))" >&2
	exit 1
}
src=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] && [ -f "$src/bin/go" ] || { echo "install-go: no toolchain in the download of $mod" >&2; exit 1; }

mkdir -p "$prefix"
tmp=$(mktemp -d "$prefix/.go$ver.XXXXXX")
chmod 755 "$tmp"
cp -R "$src/." "$tmp/"
chmod -R u+w,go-w "$tmp"
# Module zips carry no file modes: set the execute bits as the go command
# does for a toolchain it downloads (cmd/go/internal/toolchain, allowExec).
find "$tmp/bin" "$tmp/pkg/tool" -type f -exec chmod 755 {} +
find "$tmp/lib" -type f -name 'go_?*_?*_exec' -exec chmod 755 {} + 2>/dev/null || true
got=$(cd / && GOTOOLCHAIN=local "$tmp/bin/go" env GOVERSION)
[ "$got" = "go$ver" ] || { echo "install-go: downloaded toolchain reports $got, want go$ver" >&2; exit 1; }
rm -rf "$dest"
mv "$tmp" "$dest"
tmp=
ln -sfn "go$ver/bin" "$prefix/bin"
echo "install-go: installed go$ver in $dest" >&2
echo "$prefix/bin/go"
