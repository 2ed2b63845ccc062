#!/usr/bin/env bash
# pve over the REST API at scale (issue 17, item 3): N containers made in
# parallel (PAR at a time) on a 3-node simulated cluster (test/pvesim),
# [pve] node = "auto". Each job is `create` then `start`, as an engine
# runs them (a CT's memory counts against its node only once it runs, so
# placement can spread them only then); then every container goes with
# `delete --force`, PAR at a time. For N = 1, 10, 100 it prints the wall
# time, the API calls the simulator served (its GET /_sim/calls) per CT,
# the VMID collisions (two records naming one VMID), the VMID races
# create lost and retried ("VMID taken" in the debug logs), the orphans
# (a CT with no record or a record with no CT, while all run), what is
# left after the deletes (CTs and records) and the CTs per node; then the
# calls per CT by endpoint, up and down. The template is uploaded to
# every node first (a create+delete per node, not counted): the rows
# compare warm creates, whose calls should not depend on N. Exit 1 if a
# job failed or a collision, orphan or leftover was seen.
#
#   bench/scale.sh PROXCAGE      env: SCALE_NS ("1 10 100"), SCALE_PAR (16)
#
# $P is a command line, split on purpose (a string: job, run by xargs,
# gets it exported); cleanup and job run from the trap and from xargs.
# shellcheck disable=SC2086,SC2317
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PROXCAGE=$(realpath "$1")
NS=${SCALE_NS:-1 10 100}
PAR=${SCALE_PAR:-16}
NODES=(pve1 pve2 pve3)
for t in curl jq go; do
	command -v "$t" >/dev/null || { echo "bench/scale.sh needs $t (scripts/install-deps.sh test installs curl and jq)" >&2; exit 2; }
done
W=$(mktemp -d /var/tmp/proxcage-bench-scale.XXXXXX)
cleanup() {
	set +e
	if [ -n "${P:-}" ]; then
		$P list -q 2>/dev/null | xargs -r -n1 -P "$PAR" $P delete --force >/dev/null 2>&1
	fi
	[ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/pvesim" ./test/pvesim/cmd/pvesim)
# TMPDIR: the token's secret file goes under $W (pvesim removes it at exit).
TMPDIR=$W "$W/pvesim" -listen 127.0.0.1:0 -nodes "$(IFS=,; echo "${NODES[*]}")" >"$W/sim.out" 2>"$W/sim.err" &
SIM_PID=$!
for _ in $(seq 100); do grep -q '^bridge = ' "$W/sim.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^bridge = ' "$W/sim.out" || { echo "pvesim did not start:" >&2; cat "$W/sim.err" >&2; exit 1; }
URL=$(sed -n 's/^url = "\(.*\)"$/\1/p' "$W/sim.out")
# The [pve] block pvesim prints (url, fingerprint, token, node = "auto").
{
	echo 'default_backend = "pve"'
	grep -v '^#' "$W/sim.out"
	printf 'template_cache = "%s/tplcache"\ntimeout = "120s"\n' "$W"
} >"$W/config.toml"
PROXCAGE_BIN=$PROXCAGE "$REPO/scripts/mkbundle.sh" "$W/bundle" sleep 100000 >/dev/null
mkdir -p "$W/log"
P="$PROXCAGE --root $W/root --config $W/config.toml"
sim() { curl -skf -X "$1" "$URL/_sim/$2"; } # the simulator's own endpoints: not counted
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

for n in "${NODES[@]}"; do # the template on every node
	sed "s/^node = .*/node = \"$n\"/" "$W/config.toml" >"$W/warm.toml"
	$PROXCAGE --root "$W/root" --config "$W/warm.toml" create --bundle "$W/bundle" "warm-$n" >/dev/null
	$P delete "warm-$n" >/dev/null
done

job() { # ID: create and start one container, its debug log in $W/log
	$P --debug --log "$W/log/$1.log" create --bundle "$W/bundle" "$1" &&
		$P --debug --log "$W/log/$1.log" start "$1" || echo "$1" >>"$W/failed"
}
export -f job
export P W

printf '%5s %9s %6s %9s %9s %9s %6s %8s %8s %5s   %s\n' N "up (s)" calls calls/CT "down (s)" calls/CT collis retries orphans left "CTs per node"
BAD=0
for N in $NS; do
	rm -f "$W/log/"* "$W/failed"
	sim DELETE calls >/dev/null
	t0=$(now)
	# shellcheck disable=SC2016 # $1 is the inner bash's
	seq -f "ct%g" "$N" | xargs -P "$PAR" -n1 bash -c 'job "$1"' _
	t1=$(now)
	sim GET calls >"$W/calls.$N.json"
	up=$(jq .total "$W/calls.$N.json")
	$P list --format json | jq -r '.[] | .annotations["org.proxcage.pve.vmid"] // "none"' | sort >"$W/rec.vmids"
	sim GET guests | jq -r '.[]' >"$W/guests"
	cut -d@ -f1 "$W/guests" | sort >"$W/sim.vmids"
	collisions=$(uniq -d "$W/rec.vmids" | wc -l)
	orphans=$(comm -3 <(sort -u "$W/rec.vmids") "$W/sim.vmids" | wc -l)
	retries=$(cat "$W/log/"*.log | grep -c 'VMID taken' || true)
	pernode=""
	for n in "${NODES[@]}"; do pernode+="$n $(grep -c "@$n " "$W/guests" || true)  "; done
	failed=$([ -f "$W/failed" ] && wc -l <"$W/failed" || echo 0)

	sim DELETE calls >/dev/null
	t2=$(now)
	$P list -q | xargs -r -P "$PAR" -n1 $P delete --force >/dev/null
	t3=$(now)
	sim GET calls >"$W/down.$N.json"
	down=$(jq .total "$W/down.$N.json")
	left=$(($(sim GET guests | jq length) + $($P list -q | wc -l)))

	printf '%5d %9s %6d %9.1f %9s %9.1f %6d %8d %8d %5d   %s\n' "$N" "$(secs "$t0" "$t1")" "$up" \
		"$(awk -v c="$up" -v n="$N" 'BEGIN { print c / n }')" "$(secs "$t2" "$t3")" \
		"$(awk -v c="$down" -v n="$N" 'BEGIN { print c / n }')" "$collisions" "$retries" "$orphans" "$left" "$pernode"
	if [ "$failed" -gt 0 ]; then
		echo "  $failed of $N jobs failed, e.g.:" && head -c 600 "$W/log/$(head -1 "$W/failed").log" | sed 's/^/    /'
	fi
	[ "$failed" -eq 0 ] && [ "$collisions" -eq 0 ] && [ "$orphans" -eq 0 ] && [ "$left" -eq 0 ] || BAD=1
done
breakdown() { # PHASE: the calls per CT by endpoint of each N's phase
	# shellcheck disable=SC2046
	jq -rn --arg ns "$NS" '
		[$ns | splits(" +") | select(. != "")] as $n
		| [$n[] as $k | input | .calls | with_entries(.value = (.value / ($k | tonumber)))] as $c
		| ([$c[] | keys[]] | unique[]) as $e
		| "  " + ([$c[] | ((.[$e] // 0) * 10 | round / 10 | tostring)] | join(" / ")) + "  " + $e
	' $(for N in $NS; do echo "$W/$1.$N.json"; done)
}
echo "up: create+start of N CTs, $PAR at a time; down: delete --force of all."
echo "calls per CT by endpoint, N = ${NS// / / }: up"
breakdown calls
echo "down"
breakdown down
exit "$BAD"
