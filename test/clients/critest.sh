#!/usr/bin/env bash
# Kubernetes' CRI validation suite (critest, sigs.k8s.io/cri-tools) through a
# private containerd 1.6 (Debian's, CRI plugin) whose runc-v2 shim calls each
# given runc-compatible RUNTIME (BinaryName), one full run per runtime:
#
#   test/clients/critest.sh [NAME=]RUNTIME...
#   e.g. test/clients/critest.sh runc=/usr/sbin/runc proxcage=$PWD/bin/proxcage
#
# Prints, per runtime, the specs that failed (with the start of why), then a
# side-by-side table (totals, seconds, and every spec that failed for some
# runtime or whose outcome differs between them), the specs skipped for want
# of the internet (none: see SKIPS below), the skips counted by reason, the
# gate's verdict, and one line per runtime:
#   critest NAME: P passed, F failed, S skipped
# Three specs fail with runc as with proxcage here, from containerd 1.6 and
# the look-alike images, not the runtime: Idempotence StopPodSandbox and
# StopContainer "should not return an error if not found" (1.6 returns
# NotFound), and "public image with digest" (critest pins the real image's
# digest).
# Exits non-zero when critest could not run, or when the GATE runtime
# (default proxcage:runc, if both are given) passes fewer specs than, or
# fails a spec passed by, the reference runtime: its passes must be a
# superset of the reference's.
#
# Everything lives in a fresh mktemp dir (or $W, kept: only what the run
# adds to it is removed): containerd's config, root,
# state, socket and logs, runc's --root, the CNI config and IPAM dir, netns
# mounts. Images: critest's registries are out of reach, so
# test/critest/images (Go, go-containerregistry) builds look-alikes (Debian's
# busybox, nginx; httpd as busybox httpd; static pause and nnp from
# test/critest/src/*.c; the user/group/tag images of cri-tools' images/) and
# serves them from an in-process registry on 127.0.0.1:$PORT, which
# containerd's hosts.toml maps registry.k8s.io, k8s.gcr.io and gcr.io to.
# Network: CNI bridge pcg-critest0 in 10.214.0.0/24, no masquerade, never
# routed off this machine.
# On exit: pods removed through CRI, containerd and the registry stopped by
# PID, our shims and their children killed by PID, our mounts, bridge,
# cgroups and portmap chains (if this run created them) removed, the scratch
# dir removed. Only processes this script started are killed.
#
# Cache: critest and crictl are built once per version from the Go module
# proxy into ${PROXCAGE_CACHE:-$HOME/.cache/proxcage}/critest-VERSION/bin,
# and Debian's busybox, nginx and nginx-common are downloaded (apt-get
# download: not installed; busybox would conflict with busybox-static) and
# unpacked into .../critest-VERSION/debs.
# Needs (scripts/install-deps.sh test): containerd, containernetworking-plugins,
# iptables, gcc + libc6-dev (static pause/nnp), iproute2, procps, Go.
#
# Env: W (scratch dir; default a fresh mktemp dir), KEEP_SCRATCH=1,
#   RESULTS=DIR (copy each runtime's critest.log, junit.xml, failed.txt,
#   skipped.txt, containerd.log there), PORT (5214), FOCUS / SKIP (ginkgo
#   --focus / --skip regexps; default: the full suite), CRITEST_TIMEOUT
#   (ginkgo --timeout per runtime, 60m), GATE (TESTED:REFERENCE, default
#   proxcage:runc; "" for none), CRI_TOOLS_VERSION (pinned: v1.37.0).
#
# SKIPS: with containerd 1.6.20 the full suite (142 specs) skips 48, all
# by critest's own Skip() for what containerd 1.6 or this host lacks, or by
# label (measured here, the same for runc and proxcage): NRI, no
# -nri-socket (13); AppArmor disabled on this host (9); no runtime handler
# with user namespaces (6); image volumes, unimplemented in 1.6 (5); the
# [Benchmark] specs, which want critest -benchmark (5, no reason given);
# recursive read-only mounts (4); SupplementalGroupsPolicy (2);
# image_id consistency, no image_id in 1.6 (2); CRI metrics endpoints (2).
# None needs the internet: every image comes from the local registry.
# skipped.txt lists each skip with its reason; the summary names any skip
# whose reason mentions a registry, DNS or remote access.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
PORT=${PORT:-5214}
BRIDGE=pcg-critest0
SUBNET=10.214.0.0/24
CRITEST_TIMEOUT=${CRITEST_TIMEOUT:-60m}
FOCUS=${FOCUS:-}
SKIP=${SKIP:-}
GATE=${GATE-proxcage:runc}
CACHE=${PROXCAGE_CACHE:-$HOME/.cache/proxcage}/critest-$CRI_TOOLS_VERSION
CGROUP_PARENT=test.slice # critest's pod cgroup parent when RuntimeConfig is unimplemented (containerd 1.6)

usage() { echo "usage: $0 [NAME=]RUNTIME..." >&2; exit 2; }
[ $# -gt 0 ] || usage
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }

# ---------------------------------------------------------------- arguments
NAMES=()
declare -A RT=()
for a in "$@"; do
	case "$a" in
	*=*) n=${a%%=*} p=${a#*=} ;;
	*) n=$(basename "$a") p=$a ;;
	esac
	case "$n" in '' | *[!A-Za-z0-9_.-]*) echo "bad runtime name [$n] in [$a]" >&2; exit 2 ;; esac
	[ -z "${RT[$n]:-}" ] || { echo "runtime name $n given twice" >&2; exit 2; }
	case "$p" in */*) ;; *) p=$(command -v "$p" || echo "$p") ;; esac
	if [ ! -x "$p" ] || [ ! -f "$p" ]; then echo "runtime $p is not executable" >&2; exit 2; fi
	RT[$n]=$(readlink -f "$p")
	NAMES+=("$n")
done

missing=""
# Go: $GO, else the one the Makefile would pick (PATH, /usr/local/go, ...)
GO=$("$REPO/scripts/find-go.sh" 2>/dev/null || true)
[ -n "$GO" ] || missing="$missing go"
for c in containerd containerd-shim-runc-v2 iptables iptables-save ip gcc ps flock sha256sum apt-get dpkg-deb ldd; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] ||
	missing="$missing /usr/lib/cni/{bridge,host-local,portmap}"
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ] ||
	missing="$missing libc.a(libc6-dev)"
if [ -n "$missing" ]; then
	echo "critest.sh: missing:$missing (scripts/install-deps.sh test installs them)" >&2
	exit 2
fi

# ---------------------------------------------------------------- scratch
[ -n "${W:-}" ] && SCRATCH=$W
init_scratch
W=$SCRATCH
log "scratch: $W  cache: $CACHE"

# ---------------------------------------------------------------- cleanup
REG_PID="" CTRD_PID="" CRICTL="" SOCK="" RUN="" RUN_DIRS_CREATED=""
# containerd and its shims use these whatever the config says (shim sockets, fifos)
RUN_DIRS="/run/containerd /run/containerd/s /run/containerd/fifo"

# PIDs of the shims started for our containerd (their argv carries our socket)
our_shims() {
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		case "$(readlink "/proc/$p/exe" 2>/dev/null)" in *containerd-shim*) ;; *) continue ;; esac
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "-address $SOCK " && echo "$p"
	done
	return 0
}

descendants() { # every descendant of the given pids
	ps -eo pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
		{ parent[$1] = $2 }
		END {
			do { changed = 0
				for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; changed = 1; print p }
			} while (changed)
		}'
}

# stop_run: everything one runtime's run started, by PID; then its files
stop_run() {
	[ -n "$RUN" ] || return 0
	set +e
	if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
		# CRI removal runs CNI DEL (bridge ports, IPAM, portmap rules) and stops the shims
		timeout 120 "$CRICTL" -r "unix://$SOCK" -i "unix://$SOCK" --timeout 60s rmp -fa >/dev/null 2>&1
		kill -TERM "$CTRD_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CTRD_PID" 2>/dev/null
		wait "$CTRD_PID" 2>/dev/null
	fi
	CTRD_PID=""
	local shims kids p id socks=""
	shims=$(our_shims)
	if [ -n "$shims" ]; then
		# shellcheck disable=SC2086 # word lists of PIDs
		kids=$(descendants $shims)
		log "$RUN: killing leftover shims (${shims//$'\n'/ }) and their children (${kids//$'\n'/ })"
		for p in $shims; do # a SIGKILLed shim leaves its socket: /run/containerd/s/sha256(address/ns/id)
			id=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | sed -n '/^-id$/{n;p}')
			[ -n "$id" ] && socks="$socks /run/containerd/s/$(printf '%s' "$SOCK/k8s.io/$id" | sha256sum | cut -c1-64)"
		done
		# shellcheck disable=SC2086
		[ -n "$kids" ] && kill -KILL $kids 2>/dev/null
		# shellcheck disable=SC2086
		kill -KILL $shims 2>/dev/null
		sleep 0.5
		# shellcheck disable=SC2086
		[ -n "$socks" ] && rm -f $socks
	fi
	# mounts under the run's dir (rootfs overlays, shm, netns bind mounts)
	unmount_under "$W/$RUN"
	ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
	# per-pod iptables rules CNI DEL should have removed (portmap's CNI-DN-*, our subnet)
	local left
	left=$(iptables-save 2>/dev/null | grep -F "${SUBNET%.*/*}." | head -5)
	[ -n "$left" ] && log "$RUN: iptables rules mentioning $SUBNET left behind: $left"
	# cgroups: new ones under critest's parent, and any named after our
	# pods/containers (rmdir only, deepest first: a busy one stays, reported)
	local ids="" e
	for e in "$W/$RUN/state/io.containerd.runtime.v2.task/k8s.io"/* "$W/$RUN/root/io.containerd.grpc.v1.cri/sandboxes"/* \
		"$W/$RUN/root/io.containerd.grpc.v1.cri/containers"/*; do
		e=${e##*/}
		[[ $e =~ ^[0-9a-f]{64}$ ]] && [[ "|$ids|" != *"|$e|"* ]] && ids=${ids:+$ids|}$e
	done
	if [ -f "$W/.cgroups-before" ]; then
		find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort | comm -13 "$W/.cgroups-before" - |
			grep -E "/$CGROUP_PARENT(/[0-9a-f]{64})?\$${ids:+|/($ids)\$}" | sort -r | while read -r d; do
			rmdir "$d" 2>/dev/null || log "$RUN: cgroup left behind (busy): $d"
		done
	fi
	rm -rf "$W/$RUN/root" "$W/$RUN/state" "$W/$RUN/opt" "$W/$RUN/ipam"
	# critest's pod log dirs (os.MkdirTemp) that a failed spec did not remove
	[ -f "$W/$RUN/.start" ] && find /tmp -maxdepth 1 -name 'podLogTest*' -newer "$W/$RUN/.start" -exec rm -rf {} + 2>/dev/null
	RUN=""
	set -e
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$?
	set +e
	stop_run
	if [ -n "$REG_PID" ] && kill -0 "$REG_PID" 2>/dev/null; then
		kill -TERM "$REG_PID"
		wait "$REG_PID" 2>/dev/null
	fi
	# portmap's shared top-level chains: removed only if this run created them and they are idle
	if [ -f "$W/.hostport-chains-absent" ] && [ "$(iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | wc -l)" = 1 ]; then
		iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
		iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
		iptables -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ 2>/dev/null
		local ch
		for ch in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
			iptables -t nat -F "$ch" 2>/dev/null
			iptables -t nat -X "$ch" 2>/dev/null
		done
	fi
	local d
	for d in $RUN_DIRS_CREATED; do rmdir "$d" 2>/dev/null; done # only if empty: others may use them
	remove_scratch
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools (cached)
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8 # one builder of the cache at a time
CRITEST=$CACHE/bin/critest
CRICTL=$CACHE/bin/crictl
if [ ! -x "$CRITEST" ] || [ ! -x "$CRICTL" ]; then
	log "building critest and crictl $CRI_TOOLS_VERSION from the Go module proxy"
	t0=$(date +%s)
	mod=$(GOWORK=off "$GO" mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[ -d "$mod/cmd/critest" ] || { echo "critest.sh: no sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION module" >&2; exit 1; }
	mkdir -p "$CACHE/bin"
	# critest is a Go test binary (go test -c), as cri-tools' Makefile builds it
	(cd "$mod" && GOWORK=off CGO_ENABLED=0 "$GO" test -c -o "$CRITEST.new" ./cmd/critest &&
		GOWORK=off CGO_ENABLED=0 "$GO" build -o "$CRICTL.new" ./cmd/crictl)
	mv "$CRITEST.new" "$CRITEST"
	mv "$CRICTL.new" "$CRICTL"
	log "built in $(($(date +%s) - t0))s"
fi
DEBS=$CACHE/debs
if [ ! -x "$DEBS/root/bin/busybox" ] || [ ! -x "$DEBS/root/usr/sbin/nginx" ] || [ ! -f "$DEBS/root/etc/nginx/mime.types" ]; then
	log "downloading Debian's busybox nginx nginx-common (unpacked, not installed)"
	rm -rf "$DEBS" && mkdir -p "$DEBS/root"
	(cd "$DEBS" && apt-get download busybox nginx nginx-common >/dev/null 2>&1) ||
		{ apt-get update -qq && (cd "$DEBS" && apt-get download busybox nginx nginx-common >/dev/null); }
	for d in "$DEBS"/*.deb; do dpkg-deb -x "$d" "$DEBS/root"; done
fi
flock -u 8
mkdir -p "$W/bin"
gcc -O2 -static -o "$W/bin/pause" "$REPO/test/critest/src/pause.c"
gcc -O2 -static -o "$W/bin/nnp" "$REPO/test/critest/src/nnp.c"
(cd "$REPO" && "$GO" build -o "$W/bin/images" ./test/critest/images)

# ---------------------------------------------------------------- registry (one for all runs)
"$W/bin/images" serve -addr "127.0.0.1:$PORT" -root "$DEBS/root" -pause "$W/bin/pause" -nnp "$W/bin/nnp" \
	-ready "$W/registry.ready" >"$W/images.txt" 2>&1 8>&- &
REG_PID=$!
for _ in $(seq 300); do
	[ -f "$W/registry.ready" ] && break
	kill -0 "$REG_PID" 2>/dev/null || break
	sleep 0.2
done
[ -f "$W/registry.ready" ] || { echo "critest.sh: image registry did not come up:" >&2; cat "$W/images.txt" >&2; exit 1; }
log "registry on 127.0.0.1:$PORT: $(wc -l <"$W/images.txt") image tags"
for h in registry.k8s.io k8s.gcr.io gcr.io; do
	mkdir -p "$W/certs.d/$h"
	cat >"$W/certs.d/$h/hosts.toml" <<EOF
server = "http://127.0.0.1:$PORT"
[host."http://127.0.0.1:$PORT"]
  capabilities = ["pull", "resolve"]
EOF
done

for d in $RUN_DIRS; do [ -d "$d" ] || RUN_DIRS_CREATED="$d $RUN_DIRS_CREATED"; done
# shim sockets live in /run/containerd/s whatever the config says; create it
# now so that other suites' cleanups see it as pre-existing
mkdir -p /run/containerd/s
find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort >"$W/.cgroups-before"
iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 || touch "$W/.hostport-chains-absent"

# ---------------------------------------------------------------- one run
# run_one NAME: containerd with BinaryName = the runtime, then critest;
# writes $W/NAME/res/{critest.log,junit.xml,results.tsv,failed.txt,skipped.txt,summary}
run_one() {
	local n=$1 rt=${RT[$1]}
	local D=$W/$n
	local R=$D/res
	RUN=$n
	SOCK=$D/containerd.sock
	mkdir -p "$R" "$D/root" "$D/state" "$D/opt" "$D/ipam" "$D/net.d"
	touch "$D/.start"
	cat >"$D/net.d/10-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "pcg-critest",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$SUBNET" }]],
        "dataDir": "$D/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
	cat >"$D/containerd.toml" <<EOF
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$D/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  netns_mounts_under_state_dir = true
  # root here lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj -998 would be refused
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$rt"
        Root = "$D/state/runtime-root"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$W/certs.d"
EOF
	log "$n: $rt ($("$rt" --version 2>/dev/null | head -1))"
	containerd --config "$D/containerd.toml" >"$R/containerd.log" 2>&1 8>&- &
	CTRD_PID=$!
	for _ in $(seq 150); do
		"$CRICTL" -r "unix://$SOCK" --timeout 2s info >/dev/null 2>&1 && break
		kill -0 "$CTRD_PID" 2>/dev/null || break
		sleep 0.2
	done
	if ! "$CRICTL" -r "unix://$SOCK" --timeout 5s info >"$R/cri-info.json" 2>&1; then
		log "$n: containerd did not come up:"
		tail -20 "$R/containerd.log" >&2
		echo "- - -" >"$R/summary"
		stop_run
		return 0
	fi
	local args=(--runtime-endpoint "unix://$SOCK" --image-endpoint "unix://$SOCK"
		--ginkgo.no-color --ginkgo.v --ginkgo.timeout "$CRITEST_TIMEOUT"
		--ginkgo.junit-report "$R/junit.xml")
	[ -n "$FOCUS" ] && args+=(--ginkgo.focus "$FOCUS")
	[ -n "$SKIP" ] && args+=(--ginkgo.skip "$SKIP")
	log "$n: critest $CRI_TOOLS_VERSION -> $R/critest.log"
	local t0 crc=0
	t0=$(date +%s)
	(cd "$R" && "$CRITEST" "${args[@]}") >"$R/critest.log" 2>&1 8>&- || crc=$?
	SECS[$n]=$(($(date +%s) - t0))
	if [ -s "$R/junit.xml" ]; then
		"$W/bin/images" junit "$R/junit.xml" "$R" >"$R/summary"
	else
		echo "- - -" >"$R/summary"
		log "$n: no junit report (critest exit $crc):"
		tail -20 "$R/critest.log" >&2
	fi
	log "$n: $(grep -E '^(Ran [0-9]+ of|FAIL!|SUCCESS!)' "$R/critest.log" | tail -2 | tr '\n' ' ')(${SECS[$n]}s, critest exit $crc)"
	if [ -n "${RESULTS:-}" ]; then
		mkdir -p "$RESULTS/$n"
		cp "$R"/critest.log "$R"/junit.xml "$R"/*.txt "$R"/results.tsv "$R"/containerd.log "$RESULTS/$n/" 2>/dev/null || true
	fi
	stop_run
}

declare -A SECS=()
T0=$(date +%s)
for n in "${NAMES[@]}"; do run_one "$n"; done

# ---------------------------------------------------------------- report
declare -A P=() F=() S=()
rc=0
for n in "${NAMES[@]}"; do
	read -r p f s <"$W/$n/res/summary"
	P[$n]=$p F[$n]=$f S[$n]=$s
	[ "$p" = - ] && rc=1
done

for n in "${NAMES[@]}"; do
	f=$W/$n/res/failed.txt
	[ -s "$f" ] || continue
	echo "failed with $n:"
	# the name, then the start of the message on one line
	awk 'function out() { if (name != "") printf "  %s\n      %s\n", name, substr(msg, 1, 240) }
		/^[^ ]/ { out(); name = $0; msg = ""; k = 0; next }
		k < 4 { sub(/^ +/, ""); msg = msg (k++ ? " " : "") $0 }
		END { out() }' "$f"
done

# side by side: totals, then every spec that failed for some runtime or
# whose outcome differs between them (skips: counted by reason below)
{
	printf '%s' "spec"
	for n in "${NAMES[@]}"; do printf '\t%s' "$n"; done
	printf '\n'
	for k in passed failed skipped seconds; do
		printf '%s' "($k)"
		for n in "${NAMES[@]}"; do
			case $k in passed) v=${P[$n]} ;; failed) v=${F[$n]} ;; skipped) v=${S[$n]} ;; seconds) v=${SECS[$n]:--} ;; esac
			printf '\t%s' "$v"
		done
		printf '\n'
	done
	for n in "${NAMES[@]}"; do [ -f "$W/$n/res/results.tsv" ] && cat "$W/$n/res/results.tsv"; done |
		awk -F'\t' -v nrt=${#NAMES[@]} '{ seen[$2]++; st[$2, $1] = 1; if ($1 == "failed") bad[$2] = 1 }
			END { for (s in seen) if (bad[s] || seen[s] < nrt || (st[s, "passed"] + st[s, "failed"] + st[s, "skipped"]) > 1) print s }' |
		sort | while IFS= read -r spec; do
		s=${spec#"[k8s.io] "}
		printf '%s' "${s:0:140}"
		for n in "${NAMES[@]}"; do
			v=$(awk -F'\t' -v s="$spec" '$2 == s { print $1; exit }' "$W/$n/res/results.tsv" 2>/dev/null)
			printf '\t%s' "${v:--}"
		done
		printf '\n'
	done
} >"$W/table.tsv"
echo
column -t -s $'\t' "$W/table.tsv" 2>/dev/null || cat "$W/table.tsv"

# skipped specs whose reason says they want the internet (a remote
# registry, DNS, the outside network): none expected, the images are local
echo
for n in "${NAMES[@]}"; do
	[ -f "$W/$n/res/skipped.txt" ] || continue
	awk -F'\t' -v n="$n" 'tolower($2) ~ /internet|network access|registry|dns|docker\.io|remote|pull/ { printf "  %s: %s (%s)\n", n, $1, $2 }' "$W/$n/res/skipped.txt"
done >"$W/skipped-internet.txt"
if [ -s "$W/skipped-internet.txt" ]; then
	echo "skipped for want of the internet:"
	cat "$W/skipped-internet.txt"
else
	echo "skipped for want of the internet: none"
fi
echo "skipped, by reason (\"skipped\": no reason given: the [Benchmark] specs, which want critest -benchmark, or specs FOCUS/SKIP left out):"
for n in "${NAMES[@]}"; do
	[ -f "$W/$n/res/skipped.txt" ] && cut -f2 "$W/$n/res/skipped.txt" |
		sed -E 's/ with path: .*//; s/"[0-9a-f]{64}"/ID/g' | sort | uniq -c | sort -rn |
		awk -v n="$n" '{ c = $1; $1 = ""; printf "  %-10s %4d %s\n", n":", c, substr($0, 2) }'
done

# the gate: TESTED passes everything REFERENCE passes, and no fewer
if [ -n "$GATE" ]; then
	tested=${GATE%%:*} ref=${GATE#*:}
	if [ -n "${RT[$tested]:-}" ] && [ -n "${RT[$ref]:-}" ]; then
		echo
		if [ "${P[$tested]}" = - ] || [ "${P[$ref]}" = - ]; then
			echo "gate $tested:$ref: not decided (a run did not complete)"
			rc=1
		else
			lost=$(comm -23 <(awk -F'\t' '$1 == "passed" { print $2 }' "$W/$ref/res/results.tsv" | sort) \
				<(awk -F'\t' '$1 == "passed" { print $2 }' "$W/$tested/res/results.tsv" | sort))
			if [ -n "$lost" ]; then
				echo "gate $tested:$ref: FAIL: $tested does not pass what $ref passes:"
				printf '%s\n' "$lost" | sed 's/^/  /'
				rc=1
			elif [ "${P[$tested]}" -lt "${P[$ref]}" ]; then
				echo "gate $tested:$ref: FAIL: $tested passes ${P[$tested]}, $ref ${P[$ref]}"
				rc=1
			else
				echo "gate $tested:$ref: ok ($tested passes every spec $ref passes)"
			fi
		fi
	fi
fi
echo "critest $CRI_TOOLS_VERSION, containerd $(containerd --version | awk '{print $3}'), $(($(date +%s) - T0))s for ${#NAMES[@]} runtime(s)"
for n in "${NAMES[@]}"; do
	if [ "${P[$n]}" = - ]; then
		echo "critest $n: did not run"
	else
		echo "critest $n: ${P[$n]} passed, ${F[$n]} failed, ${S[$n]} skipped"
	fi
done
exit "$rc"
