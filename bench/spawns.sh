#!/usr/bin/env bash
# Processes a pve container's lifecycle starts on a node, per phase, over
# the pct transport (issue 17, item 2): on a real node every pct, pvesh,
# pvesm and pveversion is a fresh Perl interpreter that loads the PVE
# stack (about a CPU-second and ~150 MB each); lxc-info and lxc-attach are
# small C tools. Counted on the pct test double, which writes one line
# per invocation to $PCTDOUBLE_DIR/calls. Phases: a cold create (the
# template is made and stored), a warm create (the template is there),
# start, state, exec, kill (KILL, then state until stopped),
# delete; and an engine's lifecycle (create --pid-file, start, kill KILL,
# delete --force) as containerd and podman run it.
#
#   bench/spawns.sh PROXCAGE
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PROXCAGE=$(realpath "$1")
W=$(mktemp -d /var/tmp/proxcage-bench-spawns.XXXXXX)
cleanup() {
	set +e
	[ -n "${P:-}" ] && for id in s1 s2 e1; do $P delete --force "$id" >/dev/null 2>&1; done
	[ -n "${HOLD_PID:-}" ] && kill "$HOLD_PID" 2>/dev/null && wait "$HOLD_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
chmod 755 "$W"
bash "$REPO/test/pctdouble/install.sh" "$W/bin" >/dev/null
(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/subids-hold" ./test/subids/cmd/subids-hold)
"$W/subids-hold" >"$W/subids.ready" &
HOLD_PID=$!
for _ in $(seq 100); do grep -q ready "$W/subids.ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$W/subids.ready" || { echo "subids-hold did not get root's subordinate ids" >&2; exit 1; }
mkdir -p "$W/pve"
printf 'default_backend = "pve"\n[pve]\ntransport = "pct"\n[pve.tools]\nct_config_dir = "%s/pve/lxc"\nlock_dir = "%s/pve/lock"\n' "$W" "$W" >"$W/config.toml"
# The node's plain files (storage.cfg, dpkg's status): the pct transport
# reads facts there, as on a node, instead of asking pvesm and pveversion.
bash "$REPO/test/pctdouble/nodefiles.sh" "$W/pve"
printf 'dpkg_status = "%s/pve/dpkg/status"\n' "$W" >>"$W/config.toml"
PROXCAGE_BIN=$PROXCAGE "$REPO/scripts/mkbundle.sh" "$W/bundle" sleep 1000 >/dev/null
P="env PATH=$W/bin:$PATH PCTDOUBLE_DIR=$W/pve $PROXCAGE --root $W/root --config $W/config.toml"
CALLS=$W/pve/calls

printf '%-22s %5s %6s %6s %11s %6s   %s\n' phase pct pvesh pvesm pveversion lxc-* "PVE-stack total"
phase() { # NAME CMD...: run CMD, count the calls it made
	local name=$1
	shift
	: >"$CALLS"
	"$@" >/dev/null
	local pct pvesh pvesm ver lxc
	pct=$(grep -c '^pct' "$CALLS" || true)
	pvesh=$(grep -c '^pvesh' "$CALLS" || true)
	pvesm=$(grep -c '^pvesm' "$CALLS" || true)
	ver=$(grep -c '^pveversion' "$CALLS" || true)
	lxc=$(grep -c '^lxc-' "$CALLS" || true)
	printf '%-22s %5d %6d %6d %11d %6d   %d\n' "$name" "$pct" "$pvesh" "$pvesm" "$ver" "$lxc" $((pct + pvesh + pvesm + ver))
	TOTAL=$((TOTAL + pct + pvesh + pvesm + ver))
}
waitstopped() {
	for _ in $(seq 200); do
		$P state "$1" | grep -q '"status": *"stopped"' && return 0
		sleep 0.1
	done
	return 1
}
TOTAL=0
phase "create (cold)" $P create --bundle "$W/bundle" s1
phase "delete" $P delete s1
TOTAL=0
phase "create (warm)" $P create --bundle "$W/bundle" s2
phase "start" $P start s2
phase "state" $P state s2
phase "exec" $P exec s2 true
killwait() { $P kill "$1" KILL && waitstopped "$1"; }
phase "kill KILL + wait" killwait s2
phase "delete" $P delete s2
echo "warm create+start+state+exec+kill+delete: $TOTAL PVE-stack processes"
TOTAL=0
phase "engine: create" $P create --bundle "$W/bundle" --pid-file "$W/e1.pid" e1
phase "engine: start" $P start e1
phase "engine: kill KILL" $P kill e1 KILL
phase "engine: delete -f" $P delete --force e1
echo "engine create+start+kill+delete: $TOTAL PVE-stack processes (issue 17's target: at most 4)"
