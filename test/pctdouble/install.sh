#!/bin/sh
# install.sh DESTDIR: build the pct test double into DESTDIR/pctdouble and
# create the tool symlinks (pct, pvesh, pvesm, pveversion, lxc-info,
# lxc-attach). Put DESTDIR first on PATH and set PCTDOUBLE_DIR to use it.
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 DESTDIR" >&2
	exit 2
fi
dest=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
go=${GO:-$("$root/scripts/find-go.sh")}
mkdir -p "$dest"
# CGO_ENABLED=0: a static binary, independent of the host's libc.
(cd "$root" && CGO_ENABLED=0 "$go" build -o "$dest/pctdouble" ./test/pctdouble)
for t in pct pvesh pvesm pveversion lxc-info lxc-attach; do
	ln -sf pctdouble "$dest/$t"
done
