#!/usr/bin/env bash
# Template-creation benchmark: internal/vztmpl (Go walk + tar + parallel
# klauspost zstd) against GNU tar piped into the zstd CLI, with hyperfine,
# on the same rootfs in the same run.
#
#   bench/template.sh
#
#  vztmpl    vztmpl-bench ROOTFS OUT
#            (internal/vztmpl/cmd/vztmpl-bench: vztmpl.Write to a file)
#  tar+zstd  tar --sort=name --numeric-owner --xattrs -C ROOTFS -cf - . |
#            zstd -T0 -q -f -o OUT
# Both use zstd's default level (3) and all CPUs, neither fsyncs.
#
# The rootfs is a `debootstrap --variant=minbase bookworm` tree, using the
# Debian mirror apt is configured with; if debootstrap fails (no mirror, no
# root) it falls back to a copy of /usr. ROOTFS=DIR benchmarks DIR instead.
# Throughput is the size of tar's uncompressed stream divided by each
# command's median wall time, so both are measured against the same bytes.
#
# Env: RUNS (10), WARMUP (2), ROOTFS, SCRATCH (default mktemp under
#      /var/tmp, which unlike /tmp is never tmpfs), KEEP_SCRATCH=1,
#      BENCH_OUT=DIR to keep the hyperfine JSON and markdown table.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}

need() { # need CMD PACKAGE: install PACKAGE from Debian if CMD is missing
	command -v "$1" >/dev/null && return
	[ "$(id -u)" = 0 ] || { echo "$1 missing and not root: apt-get install $2" >&2; exit 2; }
	echo "installing $2" >&2
	apt-get install -y "$2" >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}
need zstd zstd
need hyperfine hyperfine
need jq jq
need tar tar

GO=${GO:-$("$REPO/scripts/find-go.sh")} || exit 2

SCRATCH=${SCRATCH:-$(mktemp -d /var/tmp/proxcage-template-bench.XXXXXX)}
mkdir -p "$SCRATCH"
cleanup() {
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
		echo "scratch kept: $SCRATCH" >&2
	else
		rm -rf "$SCRATCH"
	fi
}
trap cleanup EXIT

# mirror prints the plain Debian archive apt uses (not -security, not a
# third-party repo), from one-line or deb822 sources.
mirror() {
	local m
	m=$(grep -rhoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+' \
		/etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -oE '[a-z]+://[^[:space:]]+' | grep -E '/debian/?$' | head -n1 || true)
	echo "${m:-http://deb.debian.org/debian}"
}

if [ -n "${ROOTFS:-}" ]; then
	SRC="rootfs $ROOTFS (given)"
else
	ROOTFS=$SCRATCH/rootfs
	M=$(mirror)
	if [ "$(id -u)" = 0 ] && need debootstrap debootstrap &&
		debootstrap --variant=minbase bookworm "$ROOTFS" "$M" >"$SCRATCH/debootstrap.log" 2>&1; then
		SRC="debootstrap --variant=minbase bookworm ($M)"
	else
		echo "debootstrap failed (log: $SCRATCH/debootstrap.log); falling back to a copy of /usr" >&2
		rm -rf "$ROOTFS"
		mkdir -p "$ROOTFS"
		cp -a /usr "$ROOTFS/usr"
		SRC="copy of /usr"
	fi
fi

BIN=$SCRATCH/vztmpl-bench
(cd "$REPO" && "$GO" build -o "$BIN" ./internal/vztmpl/cmd/vztmpl-bench)

OURS=$SCRATCH/ours.tar.zst
THEIRS=$SCRATCH/tar.tar.zst
TARCMD="tar --sort=name --numeric-owner --xattrs -C $ROOTFS -cf - ."

# Sizes, and a sanity check that both archives hold the same entries (tar
# itself skips sockets too, so the counts must match).
INPUT=$($TARCMD | wc -c)
"$BIN" "$ROOTFS" "$OURS"
$TARCMD | zstd -T0 -q -f -o "$THEIRS"
N_OURS=$(zstd -dc "$OURS" | tar -tf - | wc -l)
N_THEIRS=$(zstd -dc "$THEIRS" | tar -tf - | wc -l)
if [ "$N_OURS" != "$N_THEIRS" ]; then
	echo "entry counts differ: vztmpl $N_OURS, tar $N_THEIRS" >&2
	exit 1
fi

JSON=$SCRATCH/hyperfine.json
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
	--export-json "$JSON" --export-markdown "$SCRATCH/hyperfine.md" \
	-n vztmpl "$BIN $ROOTFS $OURS" \
	-n tar+zstd "$TARCMD | zstd -T0 -q -f -o $THEIRS"

median() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$JSON"; }
M_OURS=$(median vztmpl)
M_THEIRS=$(median tar+zstd)

echo
echo "rootfs:  $SRC"
echo "         $N_OURS entries, $INPUT bytes of tar stream, $(nproc) CPUs"
awk -v inb="$INPUT" -v mo="$M_OURS" -v mt="$M_THEIRS" \
	-v so="$(stat -c %s "$OURS")" -v st="$(stat -c %s "$THEIRS")" 'BEGIN {
	printf "vztmpl:   median %.3f s  %7.1f MB/s  output %d bytes (%.1f%%)\n", mo, inb/mo/1e6, so, 100*so/inb
	printf "tar+zstd: median %.3f s  %7.1f MB/s  output %d bytes (%.1f%%)\n", mt, inb/mt/1e6, st, 100*st/inb
	printf "ratio:    %.2fx (throughput vztmpl / tar+zstd)\n", mt/mo
}'

if [ -n "${BENCH_OUT:-}" ]; then
	mkdir -p "$BENCH_OUT"
	cp "$JSON" "$SCRATCH/hyperfine.md" "$BENCH_OUT/"
fi
