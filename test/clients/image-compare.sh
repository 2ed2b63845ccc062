#!/usr/bin/env bash
# podman and proxcage pull the same images from the same registry: their
# unpacked root filesystems must be the same tree (paths, types, modes,
# owners, link targets, file sizes, contents, file mtimes).
#
#   test/clients/image-compare.sh RUNTIME [ROOTFS]
#
# The registry is test/testimages (test/busybox:1: whiteouts, an opaque
# dir, a write through var/run -> /run, hardlink, setuid, owners). With
# ROOTFS (a Debian minbase, say) it also serves and compares test/debian:1,
# that rootfs in three layers.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

command -v podman >/dev/null || { echo "podman not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }

init_scratch
resolve_runtime "${1:-}"
EXTRA_ROOTFS=${2:-}

cleanup() {
	local rc=$?
	set +e
	[ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null
	if [ -n "${PM:-}" ] && [ -x "$PM" ]; then
		"$PM" image unmount -a >/dev/null 2>&1
		"$PM" rmi -af >/dev/null 2>&1
	fi
	unmount_under "$SCRATCH"
	remove_scratch
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_podman_conf
(cd "$ROOT" && go build -o "$SCRATCH/testregistry" ./test/testimages/cmd/testregistry)
args=(-port 0)
[ -n "$EXTRA_ROOTFS" ] && args+=(-rootfs "$EXTRA_ROOTFS")
"$SCRATCH/testregistry" "${args[@]}" >"$SCRATCH/refs" 2>"$SCRATCH/registry.err" &
REG_PID=$!
# It prints its references once every image is built: with ROOTFS, three
# compressed layers of it, which takes a while on a loaded machine.
for _ in $(seq 1200); do
	[ -s "$SCRATCH/refs" ] && break
	kill -0 "$REG_PID" 2>/dev/null || break
	sleep 0.1
done
[ -s "$SCRATCH/refs" ] || {
	cat "$SCRATCH/registry.err" >&2
	echo "image-compare: the test registry printed no references (it exited, or was not ready in 120 s)" >&2
	exit 1
}
sleep 0.2 # every line printed

printf 'data_dir = "%s/data"\n' "$SCRATCH" >"$SCRATCH/proxcage.toml"
PX=("$RUNTIME" --root "$SCRATCH/run" --config "$SCRATCH/proxcage.toml")

# listing DIR: one line per entry, sorted; regular files with size, mtime
# and sha256 (directory sizes and mtimes depend on the filesystem).
listing() {
	(cd "$1" && find . -mindepth 1 -printf '%p|%y|%m|%U|%G|%l|' -a \( -type f -printf '%s|%T@|' -exec sh -c 'sha256sum < "$1" | cut -c1-64' _ {} \; -o -printf '\n' \)) | sort
}

for ref in $(grep -v hostile "$SCRATCH/refs"); do
	log "comparing $ref"
	run_to out 300 "$PM" pull -q --tls-verify=false "docker://$ref"
	[ "$out_rc" = 0 ] || { not_ok "podman pull $ref" "$out"; continue; }
	run_to mnt 60 "$PM" image mount "$ref"
	[ "$mnt_rc" = 0 ] || { not_ok "podman image mount $ref" "$mnt"; continue; }
	run_to out 300 "${PX[@]}" run --rm -q --image "$ref" -- /bin/sh -c true
	[ "$out_rc" = 0 ] || { not_ok "proxcage run --image $ref" "$out"; continue; }
	digest=$("${PX[@]}" images -q | head -n1)
	ours="$SCRATCH/data/images/rootfs/${digest#sha256:}"
	[ -d "$ours" ] || { not_ok "proxcage rootfs of $ref" "no $ours"; continue; }
	listing "$mnt" >"$SCRATCH/podman.list"
	listing "$ours" >"$SCRATCH/proxcage.list"
	n=$(wc -l <"$SCRATCH/podman.list")
	if diff -u "$SCRATCH/podman.list" "$SCRATCH/proxcage.list" >"$SCRATCH/diff"; then
		ok "$ref: same tree as podman ($n entries)"
	else
		not_ok "$ref: trees differ" "$(head -n 40 "$SCRATCH/diff")"
	fi
	"${PX[@]}" rmi "$ref" >/dev/null
done
summary
