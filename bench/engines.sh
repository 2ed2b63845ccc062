#!/usr/bin/env bash
# What an engine pays per container on each backend: `podman run --rm IMG
# true` (conmon, create, start, the keeper's wait, delete) with runc, then
# proxcage routed to native, lxc and pve (the pct double), in one run, as
# medians with the ratio to runc's.
#
#   bench/engines.sh PROXCAGE_BIN
#
# Env: RUNS (15), WARMUP (2). Absolute times drift between machines; the
# ratios are the figures. The pve figure is the double's (LXC underneath):
# a real node adds pct's Perl start-up to each create, start and delete.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../test/clients/lib.sh
. "$HERE/../test/clients/lib.sh"

BIN=${1:?usage: bench/engines.sh PROXCAGE_BIN}
RUNS=${RUNS:-15}
WARMUP=${WARMUP:-2}
command -v hyperfine >/dev/null || { echo "hyperfine not installed" >&2; exit 2; }
command -v podman >/dev/null || { echo "podman not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }

OUT=$(mktemp -d /tmp/proxcage-bench-engines.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# one measurement: NAME BACKEND RUNTIME, in its own scratch (podman store,
# backend config, the pve double), printing "NAME MEDIAN_MS"
measure() {
	local name=$1 backend=$2 rt=$3
	(
		BACKEND=$backend
		init_scratch
		trap 'set +e; "$PM" rm -f -a -t 0 >/dev/null 2>&1; backend_cleanup; remove_scratch' EXIT
		backend_setup
		resolve_runtime "$rt"
		write_podman_conf
		make_busybox_tar "$SCRATCH/busybox.tar"
		"$PM" import "$SCRATCH/busybox.tar" localhost/busybox >/dev/null 2>&1
		hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$OUT/$name.json" \
			"$PM run --rm --network none localhost/busybox true" >/dev/null
		python3 -c 'import json,sys; print(sys.argv[2], "%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$OUT/$name.json" "$name"
	)
}

results=()
results+=("$(measure runc native /usr/sbin/runc)")
for b in native lxc pve; do
	results+=("$(measure "proxcage-$b" "$b" "$BIN")")
done

printf '%s\n' "${results[@]}" | awk 'NR == 1 { base = $2; printf "%-18s %12s %10s\n", "podman run --rm", "median ms", "vs runc" }
	{ printf "%-18s %12s %9.2fx\n", $1, $2, $2 / base }'
