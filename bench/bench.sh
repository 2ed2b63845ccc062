#!/usr/bin/env bash
# Startup-latency benchmark of runc-compatible OCI runtimes with hyperfine.
#
#   bench/bench.sh [NAME=PATH | NAME]...
#
# Default runtimes: proxcage=$PWD/bin/proxcage runc=/usr/sbin/runc crun
# (proxcage is skipped with a note when the default path does not exist).
# A bare NAME picks a known default: proxcage, runc, crun, crun-raw.
#
#  crun      crun 1.8.1 refuses hybrid cgroups ("cgroups in hybrid mode not
#            supported, drop all controllers from cgroupv2") while
#            /sys/fs/cgroup/unified/cgroup.controllers is non-empty. Then
#            "crun" is a wrapper that runs every single crun call as
#              unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun "$@"'
#            so its numbers include unshare+sh+umount (measured separately as
#            the "crun-wrapper-overhead" row). If cgroup.controllers is empty,
#            "crun" is /usr/bin/crun itself.
#  crun-raw  /usr/bin/crun exec'd directly, no wrapper: the whole hyperfine
#            process runs once inside a private mount namespace in which
#            /sys/fs/cgroup/unified is unmounted (other runtimes run in the
#            host namespace).
#
# Benchmarks (identical command lines for every runtime):
#  run        RT --root R run --bundle B ID         (busybox /bin/echo hi)
#  lifecycle  sh -c 'RT create; RT start; RT kill ID KILL; RT delete --force ID'
#             (busybox /bin/sleep 1000, all with --root R)
# Each iteration leaves no container behind (run removes its container when
# the process exits; lifecycle ends with delete --force), so a fixed ID is
# reused; a --prepare step (not timed) force-deletes any leftover anyway.
#
# Env: RUNS (30), WARMUP (3), BENCH_OUT=DIR to keep hyperfine JSON + table,
#      SCRATCH (default mktemp), KEEP_SCRATCH=1, BENCHMARKS="run lifecycle".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../test/clients/lib.sh
. "$HERE/../test/clients/lib.sh"

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
BENCHMARKS=${BENCHMARKS:-run lifecycle}
UNIFIED=/sys/fs/cgroup/unified

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "hyperfine not installed (apt-get install hyperfine)" >&2; exit 2; }
PY=""
for p in /usr/bin/python3 "$(command -v python3 || true)"; do
	[ -n "$p" ] && [ -x "$p" ] && { PY=$p; break; }
done
if [ -z "$PY" ] && ! command -v jq >/dev/null; then
	apt-get install -y jq >/dev/null 2>&1 || { echo "need python3 or jq" >&2; exit 2; }
fi

init_scratch
cleanup() {
	local rc=$?
	set +e
	local n
	for n in "${NAMES[@]:-}"; do
		[ -n "$n" ] || continue
		for id in "$RUN_ID" "$LIFE_ID"; do
			rt_cmd "$n" --root "$SCRATCH/roots/$n" delete --force "$id" >/dev/null 2>&1
		done
	done
	if [ -n "${BENCH_OUT:-}" ] && [ -d "$SCRATCH/out" ]; then
		mkdir -p "$BENCH_OUT" && cp -r "$SCRATCH/out/." "$BENCH_OUT/"
	fi
	remove_scratch
	exit "$rc"
}
RUN_ID=pcbench-run-$$
LIFE_ID=pcbench-life-$$
NAMES=()
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- runtimes -------------------------------------------------------------
hybrid_controllers() { [ -f "$UNIFIED/cgroup.controllers" ] && [ -n "$(tr -d ' \n' <"$UNIFIED/cgroup.controllers")" ]; }

mkdir -p "$SCRATCH/bin" "$SCRATCH/out" "$SCRATCH/roots"
CRUN_WRAPPER="$SCRATCH/bin/crun-wrapper"
cat >"$CRUN_WRAPPER" <<'EOF'
#!/bin/sh
exec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun "$@"' crun "$@"
EOF
chmod +x "$CRUN_WRAPPER"

declare -A RT_PATH RT_RAWNS
add_runtime() { # NAME PATH [rawns]
	NAMES+=("$1")
	RT_PATH[$1]=$2
	RT_RAWNS[$1]=${3:-0}
}

default_runtime() { # NAME explicit(0/1)
	case "$1" in
	proxcage)
		if [ -x "$PWD/bin/proxcage" ]; then
			add_runtime proxcage "$PWD/bin/proxcage"
		elif [ "$2" = 1 ]; then
			echo "proxcage: $PWD/bin/proxcage not found" >&2
			exit 2
		else
			log "skipping proxcage: $PWD/bin/proxcage not found"
		fi
		;;
	runc) add_runtime runc "$(command -v runc || echo /usr/sbin/runc)" ;;
	crun)
		if hybrid_controllers; then
			add_runtime crun "$CRUN_WRAPPER"
		else
			add_runtime crun /usr/bin/crun
		fi
		;;
	crun-raw)
		if hybrid_controllers; then
			add_runtime crun-raw /usr/bin/crun 1
		else
			add_runtime crun-raw /usr/bin/crun
		fi
		;;
	*)
		echo "unknown runtime name $1 (use NAME=PATH)" >&2
		exit 2
		;;
	esac
}

if [ $# -eq 0 ]; then
	for n in proxcage runc crun; do default_runtime "$n" 0; done
else
	for a in "$@"; do
		case "$a" in
		*=*)
			n=${a%%=*}
			p=${a#*=}
			case "$p" in /*) ;; *) p="$PWD/$p" ;; esac
			[ -x "$p" ] || { echo "$n: $p is not executable" >&2; exit 2; }
			add_runtime "$n" "$p"
			;;
		*) default_runtime "$a" 1 ;;
		esac
	done
fi
[ ${#NAMES[@]} -gt 0 ] || { echo "no runtimes" >&2; exit 2; }

# run a runtime command the way the benchmark does (used for checks/cleanup)
rt_cmd() {
	local n=$1
	shift
	if [ "${RT_RAWNS[$n]}" = 1 ]; then
		unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "${RT_PATH[$n]}" "$@"
	else
		"${RT_PATH[$n]}" "$@"
	fi
}

# --- bundles --------------------------------------------------------------
make_bundle() { # DIR ARGS_JSON
	mkdir -p "$1"
	cp -a "$SCRATCH/rootfs" "$1/rootfs"
	(cd "$1" && { runc spec 2>/dev/null || /usr/bin/crun spec; })
	if [ -n "$PY" ]; then
		"$PY" -c '
import json, sys
p, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(p))
c["process"]["args"] = args
c["process"]["terminal"] = False
json.dump(c, open(p, "w"), indent=1)
' "$1/config.json" "$2"
	else
		jq --argjson a "$2" '.process.args=$a | .process.terminal=false' "$1/config.json" >"$1/c.tmp"
		mv "$1/c.tmp" "$1/config.json"
	fi
}

make_busybox_rootfs "$SCRATCH/rootfs"
make_bundle "$SCRATCH/bundle-echo" '["/bin/echo","hi"]'
make_bundle "$SCRATCH/bundle-sleep" '["/bin/sleep","1000"]'

# --- sanity check ---------------------------------------------------------
OK_NAMES=()
for n in "${NAMES[@]}"; do
	R="$SCRATCH/roots/$n"
	rc=0
	out=$(rt_cmd "$n" --root "$R" run --bundle "$SCRATCH/bundle-echo" "$RUN_ID" 2>"$SCRATCH/out/sanity-$n.err" </dev/null) || rc=$?
	if [ -s "$SCRATCH/out/sanity-$n.err" ]; then
		log "$n: stderr of the sanity run (the benchmark discards it): $(head -c 300 "$SCRATCH/out/sanity-$n.err" | tr '\n' ' ')"
	fi
	if [ "$rc" = 0 ] && [ "$out" = hi ]; then
		OK_NAMES+=("$n")
		log "$n: ${RT_PATH[$n]}$([ "${RT_RAWNS[$n]}" = 1 ] && echo ' (hyperfine in a mount ns without cgroup2 unified)') ok"
	else
		log "$n: ${RT_PATH[$n]} failed the sanity run (rc=$rc, stdout [$out]), skipped"
		rt_cmd "$n" --root "$R" delete --force "$RUN_ID" >/dev/null 2>&1 || true
	fi
done

# --- benchmarks -----------------------------------------------------------
HF=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic)
hf() { # NAME RESULT_JSON BENCH_NAME PREPARE CMD
	local n=$1 json=$2 bname=$3 prep=$4 cmd=$5
	local args=("${HF[@]}" --export-json "$json" -n "$bname/$n" --prepare "$prep" "$cmd")
	if [ "${RT_RAWNS[$n]}" = 1 ]; then
		unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' sh "${args[@]}"
	else
		"${args[@]}"
	fi
}

T0=$(date +%s)
for b in $BENCHMARKS; do
	for n in "${OK_NAMES[@]}"; do
		RT=${RT_PATH[$n]}
		R="$SCRATCH/roots/$n"
		case "$b" in
		run)
			prep="sh -c '$RT --root $R delete --force $RUN_ID >/dev/null 2>&1; true'"
			cmd="$RT --root $R run --bundle $SCRATCH/bundle-echo $RUN_ID"
			;;
		lifecycle)
			prep="sh -c '$RT --root $R delete --force $LIFE_ID >/dev/null 2>&1; true'"
			cmd="sh -c '$RT --root $R create --bundle $SCRATCH/bundle-sleep $LIFE_ID && $RT --root $R start $LIFE_ID && $RT --root $R kill $LIFE_ID KILL && $RT --root $R delete --force $LIFE_ID'"
			;;
		*) echo "unknown benchmark $b" >&2; exit 2 ;;
		esac
		log "benchmark $b / $n"
		hf "$n" "$SCRATCH/out/$b-$n.json" "$b" "$prep" "$cmd" >"$SCRATCH/out/$b-$n.log" 2>&1 ||
			log "benchmark $b / $n failed: $(tail -3 "$SCRATCH/out/$b-$n.log" | tr '\n' ' ')"
	done
done
# cost of the crun wrapper itself (same unshare+sh+umount, exec true)
if [ "${RT_PATH[crun]:-}" = "$CRUN_WRAPPER" ]; then
	"${HF[@]}" --export-json "$SCRATCH/out/overhead-crun-wrapper.json" -n "crun-wrapper-overhead" \
		"unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec /bin/true'" >"$SCRATCH/out/overhead.log" 2>&1 || true
fi
T1=$(date +%s)

# --- table ----------------------------------------------------------------
{
	echo "runtimes:"
	for n in "${NAMES[@]}"; do
		printf '  %-10s %s%s\n' "$n" "${RT_PATH[$n]}" "$([ "${RT_RAWNS[$n]}" = 1 ] && echo '  (no wrapper; hyperfine run in a mount ns with cgroup2 unified unmounted)')"
		[ "${RT_PATH[$n]}" = "$CRUN_WRAPPER" ] && printf '  %-10s %s\n' "" "= unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec /usr/bin/crun \"\$@\"'"
	done
	echo "hyperfine: --warmup $WARMUP --runs $RUNS -N; $(uname -r); $(nproc) cpus; $(($T1 - T0))s"
} >"$SCRATCH/out/table.txt"
if [ -n "$PY" ]; then
	"$PY" - "$SCRATCH/out" "$BENCHMARKS" "${NAMES[*]}" >>"$SCRATCH/out/table.txt" <<'EOF'
import json, os, sys
out, benches, names = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
rows = {}
for f in sorted(os.listdir(out)):
    if not f.endswith(".json"):
        continue
    for r in json.load(open(os.path.join(out, f)))["results"]:
        b, _, n = r["command"].partition("/")
        rows.setdefault(b, {})[n or b] = r
raw = "crun-raw" in names
hdr = f'{"benchmark":<10} {"runtime":<12} {"median ms":>10} {"mean±sd ms":>16} {"min ms":>8} {"x runc":>7} {"x crun":>7}' + (f' {"x crun-raw":>10}' if raw else "")
print(hdr)
print("-" * len(hdr))
def ratio(v, base):
    return f"{v / base:.2f}" if base else "-"
for b in benches:
    rs = rows.get(b, {})
    med = lambda n: rs[n]["median"] if n in rs else None
    for n in names:
        if n not in rs:
            print(f'{b:<10} {n:<12} {"failed/skipped":>10}')
            continue
        r = rs[n]
        m = r["median"]
        print(f'{b:<10} {n:<12} {m*1e3:>10.2f} {r["mean"]*1e3:>8.2f}±{r["stddev"]*1e3:<7.2f} {r["min"]*1e3:>8.2f} '
              f'{ratio(m, med("runc")):>7} {ratio(m, med("crun")):>7}' + (f' {ratio(m, med("crun-raw")):>10}' if raw else ""))
for b, rs in rows.items():
    if b.endswith("overhead"):
        for r in rs.values():
            print(f'note: {b}: median {r["median"]*1e3:.2f} ms, mean {r["mean"]*1e3:.2f}±{r["stddev"]*1e3:.2f} ms '
                  f'(unshare -m sh -c "umount ...; exec /bin/true"; paid once per crun call through the wrapper)')
EOF
else
	for f in "$SCRATCH"/out/*.json; do
		jq -r '.results[] | "\(.command)\tmedian \(.median*1000|floor)ms\tmean \(.mean*1000|floor)ms\tsd \(.stddev*1000|floor)ms"' "$f"
	done >>"$SCRATCH/out/table.txt"
fi
cat "$SCRATCH/out/table.txt"
