#!/usr/bin/env bash
# run.sh PROXCAGE_BIN: every builder of a cache or tool tree the tests and
# scripts rely on, pointed at a path whose parents do not exist, as on a
# new machine (issue 10: debian-rootfs.sh wrote a log into a missing
# ~/.cache/proxcage, and only a warm machine hid it). Each is checked by
# what it built, not by its exit status alone:
#   scripts/debian-rootfs.sh     a Debian minbase tree (debootstrap)
#   test/validation/run.sh       the runtime-tools suite, then one program run with it
#   scripts/install-go.sh        the pinned Go toolchain, which then builds a program
#   test/pctdouble/install.sh    the pct double and its tool links
#   proxcage itself              --root and data_dir: a busybox bundle, an image
# Needs root (debootstrap, containers); the first two run in parallel.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PROXCAGE_BIN" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "fresh: needs root (debootstrap, containers)" >&2; exit 2; }
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
T=$(mktemp -d /tmp/proxcage-fresh.XXXXXX)
chmod 755 "$T"
bg_pids=()
cleanup() {
	# The background builders run in sessions of their own: stop all of
	# their processes before removing what they write into.
	for p in "${bg_pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -d "$T/go" ] && chmod -R u+w "$T/go"
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "fresh: FAIL: $*" >&2; exit 1; }
ok() { echo "fresh: ok: $*"; }
log() { sed 's/^/    /' "$1" >&2; }

# The two slow ones in the background, each with a log of its own.
t0=$SECONDS
setsid ./scripts/debian-rootfs.sh "$T/deb/a/b/debian-minbase" >"$T/deb.log" 2>&1 &
deb_pid=$!
PROXCAGE_CACHE=$T/rt/a/b PROGRAMS=default OUT=$T/rt-out \
	setsid ./test/validation/run.sh proxcage="$bin" >"$T/rt.log" 2>&1 &
rt_pid=$!
bg_pids=("$deb_pid" "$rt_pid")

# The Go toolchain, into a prefix that does not exist; whichever Go is on
# PATH downloads it (or the module cache already has it).
PROXCAGE_GO_PREFIX=$T/go/a/b ./scripts/install-go.sh >"$T/go.out" 2>"$T/go.log" || { log "$T/go.log"; fail "install-go.sh"; }
gobin=$(cat "$T/go.out")
[ "$gobin" = "$T/go/a/b/bin/go" ] || fail "install-go.sh printed $gobin"
want=go$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
[ "$(cd / && GOTOOLCHAIN=local "$gobin" env GOVERSION)" = "$want" ] || fail "installed toolchain is not $want"
found=$(env -u GO PATH=/usr/sbin:/usr/bin:/sbin:/bin PROXCAGE_GO_PREFIX=$T/go/a/b ./scripts/find-go.sh) || fail "find-go.sh does not find it"
# (/usr/local/go may come first; either is at least go.mod's version)
case $found in "$T/go/a/b/bin/go" | /usr/local/go/bin/go) ;; *) fail "find-go.sh found $found" ;; esac
CGO_ENABLED=0 GOTOOLCHAIN=local "$gobin" build -buildvcs=false -o "$T/go-built/x/proxcage-lxc-init" ./cmd/proxcage-lxc-init ||
	fail "the installed toolchain does not build"
out=$("$T/go-built/x/proxcage-lxc-init" 2>&1 || true)
[[ "$out" == *"usage: proxcage-lxc-init"* ]] || fail "what the installed toolchain built does not run: $out"
ok "install-go.sh: $want in $T/go/a/b, found by find-go.sh, builds and runs a program"

# The pct double.
bash test/pctdouble/install.sh "$T/pct/a/b" >"$T/pct.log" 2>&1 || { log "$T/pct.log"; fail "pctdouble/install.sh"; }
for t in pct pvesh pvesm pveversion lxc-info lxc-attach; do
	[ -x "$T/pct/a/b/$t" ] || fail "pctdouble/install.sh made no $t"
done
PATH=$T/pct/a/b:$PATH PCTDOUBLE_DIR=$T/pct/state pveversion >"$T/pct.out" 2>&1 || { log "$T/pct.out"; fail "the installed double does not run"; }
ok "pctdouble/install.sh: $(head -1 "$T/pct.out")"

# proxcage's own state and data directories: a bundle, then an image
# pulled from the in-process test registry into a data_dir that does not
# exist (the image store, the unpacked rootfs, the container's overlay).
./scripts/mkbundle.sh "$T/bundle/a/b" /bin/echo fresh-hello >/dev/null
printf 'data_dir = "%s"\n' "$T/data/a/b" >"$T/config.toml"
px=("$bin" --root "$T/root/a/b" --config "$T/config.toml")
out=$("${px[@]}" run --bundle "$T/bundle/a/b" fresh-$$ 2>&1) || fail "proxcage run: $out"
[ "$out" = fresh-hello ] || fail "proxcage run printed: $out"
[ -d "$T/root/a/b" ] || fail "proxcage made no --root"
"$gobin" build -buildvcs=false -o "$T/testregistry" ./test/testimages/cmd/testregistry
"$T/testregistry" -port 0 >"$T/refs" 2>"$T/registry.log" &
reg_pid=$!
for _ in $(seq 100); do grep -q busybox "$T/refs" 2>/dev/null && break; sleep 0.1; done
ref=$(grep -m1 busybox "$T/refs") || { kill "$reg_pid"; log "$T/registry.log"; fail "the test registry did not start"; }
out=$("${px[@]}" run --rm -q --image "$ref" -- echo image-hello 2>&1) || { kill "$reg_pid"; fail "proxcage run --image: $out"; }
kill "$reg_pid"
[ "$out" = image-hello ] || fail "proxcage run --image printed: $out"
ls "$T/data/a/b/images/blobs/sha256" | grep -q . || fail "no blobs in the new data_dir"
ok "proxcage: --root and data_dir under missing parents; a bundle and an image ran ($ref)"

wait "$deb_pid" || { log "$T/deb.log"; fail "debian-rootfs.sh"; }
v=$(cat "$T/deb/a/b/debian-minbase/etc/debian_version" 2>/dev/null) || fail "debian-rootfs.sh made no Debian tree"
[ -x "$T/deb/a/b/debian-minbase/sbin/init" ] || fail "debian-rootfs.sh made no /sbin/init"
ls "$T/deb/a/b/" | grep -q '\.tmp\.' && fail "debian-rootfs.sh left its temporary tree"
ok "debian-rootfs.sh: Debian $v"

wait "$rt_pid" || { log "$T/rt.log"; fail "validation/run.sh"; }
[ -f "$T/rt/a/b/runtime-tools/bin/.complete" ] || fail "validation/run.sh built no suite"
grep -Eq '^default +\| PASS [0-9]+/0' "$T/rt.log" || { log "$T/rt.log"; fail "the suite's default program did not pass"; }
ok "validation/run.sh: $(wc -w <"$T/rt/a/b/runtime-tools/bin/.complete") programs built, default passes"
echo "fresh: all builders made their trees under missing parents ($((SECONDS - t0))s)"
