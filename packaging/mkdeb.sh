#!/usr/bin/env bash
# mkdeb.sh: builds bin/proxcage_VERSION_ARCH.deb (`make deb`) and prints its
# path. The version is the git tag (v1.2.3 -> 1.2.3, 1.2.3+4.gHASH past it)
# or, untagged, 0~gitYYYYMMDDhhmmss.HASH of the commit, so any release sorts
# above it; the binary reports the same version. Files come from
# `make install DESTDIR=stage PREFIX=/usr`; Depends from dpkg-shlibdeps, as
# for any Debian package; file times from the commit (SOURCE_DATE_EPOCH),
# so the same commit gives the same package.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
GO=${GO:-$(./scripts/find-go.sh)}
for t in dpkg-shlibdeps dpkg-architecture gzip; do
	command -v "$t" >/dev/null || { echo "mkdeb: $t not found (apt-get install dpkg-dev; or ./scripts/install-deps.sh build)" >&2; exit 1; }
done

if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	version=${desc#v}            # 1.2.3 or 1.2.3-4-gabcdef
	version=${version/-/+}       # 1.2.3+4-gabcdef
	version=${version/-g/.g}     # 1.2.3+4.gabcdef
else
	version=0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git rev-parse --short=12 HEAD)
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	version=$version+dirty
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
# Stripped, as Debian strips binaries (Go keeps file:line in its stack
# traces without the symbol table).
make --no-print-directory install DESTDIR="$stage" PREFIX=/usr VERSION="$version" EXTRA_LDFLAGS='-s -w' >"$work/install.log" 2>&1 || {
	tail -20 "$work/install.log" >&2
	echo "mkdeb: make install into the staging dir failed" >&2
	exit 1
}
gzip -9n "$stage"/usr/share/man/man5/*.5 "$stage"/usr/share/man/man8/*.8
install -D -m 644 README.md "$stage/usr/share/doc/proxcage/README.md"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# dpkg-shlibdeps wants a source tree: a control file naming the package.
mkdir -p "$work/src/debian"
printf 'Source: proxcage\n\nPackage: proxcage\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e"$stage/usr/bin/proxcage" 2>"$work/shlibdeps.log") || {
	cat "$work/shlibdeps.log" >&2
	exit 1
}
shlibs=${shlibs#shlibs:Depends=}
[ -n "$shlibs" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies for a cgo binary" >&2; exit 1; }

mkdir -p bin
"$GO" -C tools build -trimpath -buildvcs=false -o ../bin/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
rm -f bin/proxcage_*.deb
out=bin/proxcage_${version}_${arch}.deb
(cd "$stage" && DEB_VERSION=$version DEB_ARCH=$arch SHLIBS_DEPENDS=$shlibs \
	"$top/bin/nfpm" package --config "$top/packaging/nfpm.yaml" --packager deb --target "$top/$out") >"$work/nfpm.log" 2>&1 || {
	cat "$work/nfpm.log" >&2
	exit 1
}
echo "mkdeb: $out (Depends: $shlibs)" >&2
echo "$out"
