#!/usr/bin/env bash
# Upgrade benchmark, in one run with hyperfine, per backend (native, and
# pve on the pct test double): moving a running app container between two
# versions of its image (test/app:1 <-> test/app:2, a volume at /srv/data)
#
#  upgrade    `proxcage upgrade -t 1ms --health-cmd true app --image NEXT`:
#             keeps the id, the volume and the overrides (on pve the CT:
#             VMID, NIC, mount point; a scratch CT, a snapshot, the swap)
#  recreate   what it replaces: `delete --force` and `run -d --image NEXT`
#             again (on pve `delete --force --volumes`: PVE frees the
#             CT's volumes with it, so the data would be lost)
#
# Both alternate between the two tags. On pve the old CT stops through
# `pct shutdown --timeout 1 --forceStop 1` (whole seconds), where the
# recreate's destroy --force kills it at once: that second is part of the
# upgrade's figure.
#
#   bench/upgrade.sh PROXCAGE            env: RUNS (5), BENCH_OUT=DIR
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PROXCAGE=$(realpath "$1")
RUNS=${RUNS:-5}
for c in hyperfine jq bc; do
	command -v "$c" >/dev/null || { echo "$c missing: apt-get install $c" >&2; exit 2; }
done
W=$(mktemp -d /var/tmp/proxcage-bench-upgrade.XXXXXX)
cleanup() {
	set +e
	for b in native pve; do
		[ -f "$W/$b.px" ] || continue
		for id in app rc; do $(cat "$W/$b.px") delete --force --volumes "$id" >/dev/null 2>&1; done
	done
	[ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null
	[ -n "${HOLD_PID:-}" ] && kill "$HOLD_PID" 2>/dev/null && wait "$HOLD_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

(cd "$REPO" && go build -o "$W/testregistry" ./test/testimages/cmd/testregistry)
"$W/testregistry" -port 0 >"$W/refs" &
REG_PID=$!
for _ in $(seq 300); do
	grep -q 'test/app:2' "$W/refs" 2>/dev/null && break
	sleep 0.1
done
REG=$(grep 'test/app:1' "$W/refs" | sed 's|/test/app:1$||')

bash "$REPO/test/pctdouble/install.sh" "$W/pvebin" >/dev/null
mkdir -p "$W/pve"
chmod 755 "$W"
# Unprivileged CTs need root's subordinate ids, as on a PVE node: held
# (added to /etc/subuid and /etc/subgid, removed after) as the client
# scripts do.
(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/subids-hold" ./test/subids/cmd/subids-hold)
"$W/subids-hold" >"$W/subids.ready" &
HOLD_PID=$!
for _ in $(seq 100); do grep -q ready "$W/subids.ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$W/subids.ready" || { echo "subids-hold did not get root's subordinate ids" >&2; exit 1; }
printf 'data_dir = "%s/native-data"\ndefault_backend = "native"\n' "$W" >"$W/native.toml"
printf 'data_dir = "%s/pve-data"\ndefault_backend = "pve"\n[pve]\ntransport = "pct"\n[pve.tools]\nct_config_dir = "%s/pve/lxc"\nlock_dir = "%s/pve/lock"\n' "$W" "$W" "$W" >"$W/pve.toml"
echo "$PROXCAGE --root $W/native-root --config $W/native.toml" >"$W/native.px"
echo "env PATH=$W/pvebin:$PATH PCTDOUBLE_DIR=$W/pve $PROXCAGE --root $W/pve-root --config $W/pve.toml" >"$W/pve.px"

for b in native pve; do
	P=$(cat "$W/$b.px")
	rmv=""
	[ "$b" = pve ] && rmv="--volumes"
	$P run -d -q --image "$REG/test/app:1" -u app -v appdata:/srv/data app >/dev/null
	$P run -d -q --image "$REG/test/app:1" -u app -v rcdata:/srv/data rc >/dev/null
	echo 2 >"$W/$b.up"
	echo 2 >"$W/$b.rc"
	hyperfine --runs "$RUNS" --export-json "$W/$b.json" \
		-n "$b upgrade" "sh -c 'n=\$(cat $W/$b.up); $P upgrade -q -t 1ms --health-cmd true app --image $REG/test/app:\$n >/dev/null && echo \$((3 - n)) >$W/$b.up'" \
		-n "$b recreate" "sh -c 'n=\$(cat $W/$b.rc); $P delete --force $rmv rc && $P run -d -q --image $REG/test/app:\$n -u app -v rcdata:/srv/data rc >/dev/null && echo \$((3 - n)) >$W/$b.rc'" \
		2>&1 | grep -E "Time|upgrade|recreate" || true
	u=$(jq -r --arg c "$b upgrade" '.results[] | select(.command==$c) | .median' "$W/$b.json")
	r=$(jq -r --arg c "$b recreate" '.results[] | select(.command==$c) | .median' "$W/$b.json")
	printf '%s: upgrade %.0f ms, recreate %.0f ms: ratio %.2fx\n' "$b" "$(echo "$u*1000" | bc -l)" "$(echo "$r*1000" | bc -l)" "$(echo "$u / $r" | bc -l)"
	[ -n "${BENCH_OUT:-}" ] && mkdir -p "$BENCH_OUT" && cp "$W/$b.json" "$BENCH_OUT/upgrade-$b.json"
done
