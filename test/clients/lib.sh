# shellcheck shell=bash
# Shared helpers for the client end-to-end tests (podman.sh, containerd.sh).
# Source it; do not execute it.
#
# Environment knobs understood by the scripts that source this:
#   SCRATCH   scratch directory to use (created if missing; at exit only what
#             the script added to it is removed, unless KEEP_SCRATCH=1).
#             Default: a fresh mktemp -d under /tmp, removed at exit.
#   ARGV_LOG  if set, the runtime is wrapped by a tiny script that appends
#             one line per invocation to this file, then execs the runtime:
#             CALLER(comm of parent) TAB CWD TAB ARGV(space-joined).
#   ARGV_LOG_RC=1  with ARGV_LOG: log "CALLER TAB CWD TAB rc=N TAB ARGV" when
#             each call returns (the wrapper then runs the runtime as a child).
#   RUNTIME_ARGS  global flags put before every runtime call (e.g.
#             "--config /x/lxc.toml" to route to a backend), through a wrapper.
#   BACKEND   the backend RUNTIME_ARGS route to (native, lxc, pve): where
#             a backend differs by design, the scripts expect its behaviour.
#   VERBOSE=1 print every client command before running it.

CLIENT_PASS=0
CLIENT_FAIL=0

log() { printf '# %s\n' "$*" >&2; }

ok() { CLIENT_PASS=$((CLIENT_PASS + 1)); printf 'ok - %s\n' "$1"; }

not_ok() {
	CLIENT_FAIL=$((CLIENT_FAIL + 1))
	# keep the details on one line so the output stays line-oriented
	local d
	d=$(printf '%s' "$2" | tr '\n' ' ' | cut -c1-600)
	printf 'not ok - %s: %s\n' "$1" "$d"
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected [$2], got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
	case "$3" in
	*"$2"*) ok "$1" ;;
	*) not_ok "$1" "expected output containing [$2], got [$3]" ;;
	esac
}

# limit NAME WHY EXPECTED ACTUAL: a documented limit of $BACKEND asserted
# as it is (so a change either way is seen), reported as such.
limit() {
	if [ "$3" = "$4" ]; then
		printf 'ok - %s [limit of the %s backend: %s]\n' "$1" "${BACKEND:-native}" "$2"
		CLIENT_PASS=$((CLIENT_PASS + 1))
		CLIENT_LIMITS=$((${CLIENT_LIMITS:-0} + 1))
	else
		not_ok "$1 [limit of the ${BACKEND:-native} backend: $2]" "expected [$3], got [$4]"
	fi
}

summary() {
	[ "${CLIENT_LIMITS:-0}" = 0 ] || printf '(%d of the passes assert a documented limit of the %s backend)\n' "$CLIENT_LIMITS" "${BACKEND:-native}"
	printf '%d passed, %d failed\n' "$CLIENT_PASS" "$CLIENT_FAIL"
	[ "$CLIENT_FAIL" -eq 0 ]
}

# run_to VAR SECONDS CMD... : run CMD with a timeout, stdin from /dev/null,
# capture stdout+stderr into VAR and the exit code into VAR_rc.
run_to() {
	local __var=$1 __t=$2
	shift 2
	[ "${VERBOSE:-0}" = 1 ] && log "+ $*"
	local __out __rc=0
	__out=$(timeout --kill-after=10 "$__t" "$@" </dev/null 2>&1) || __rc=$?
	# strip CRs a tty adds
	__out=${__out//$'\r'/}
	# script(1) may echo a NUL from the terminal as "^@"
	__out=${__out//'^@'/}
	# and drop the newlines left at the end once those are gone (as $(...) does)
	while [ "${__out%$'\n'}" != "$__out" ]; do __out=${__out%$'\n'}; done
	printf -v "$__var" '%s' "$__out"
	printf -v "${__var}_rc" '%s' "$__rc"
}

# run_split VAR SECONDS CMD... : like run_to but stdout -> VAR, stderr -> VAR_err
# (the order between the two streams is not preserved by the clients)
run_split() {
	local __var=$1 __t=$2
	shift 2
	[ "${VERBOSE:-0}" = 1 ] && log "+ $*"
	local __out __rc=0 __ef
	__ef=$(mktemp)
	__out=$(timeout --kill-after=10 "$__t" "$@" </dev/null 2>"$__ef") || __rc=$?
	printf -v "$__var" '%s' "${__out//$'\r'/}"
	printf -v "${__var}_err" '%s' "$(cat "$__ef")"
	printf -v "${__var}_rc" '%s' "$__rc"
	rm -f "$__ef"
}

# init_scratch: sets SCRATCH (absolute) and creates it.
init_scratch() {
	if [ -n "${SCRATCH:-}" ]; then
		# caller's directory: keep it, and remove only what we add to it
		mkdir -p "$SCRATCH"
		SCRATCH_CREATED=0
		SCRATCH=$(cd "$SCRATCH" && pwd -P)
		case "$SCRATCH" in
		/ | /*[!/]*/*[!/]*) ;;
		*) SCRATCH=/ ;;
		esac
		if [ "$SCRATCH" = / ]; then
			echo "SCRATCH must be at least two levels deep (e.g. /tmp/x)" >&2
			exit 2
		fi
		SCRATCH_BEFORE=$(ls -A "$SCRATCH")
	else
		SCRATCH=$(mktemp -d /tmp/proxcage-clients.XXXXXX)
		SCRATCH_CREATED=1
		SCRATCH=$(cd "$SCRATCH" && pwd -P)
	fi
	export SCRATCH
}

# backend_setup: for BACKEND=lxc or pve, a config that routes there, and
# for pve the pct test double (test/pctdouble, which runs each CT with LXC,
# unprivileged in PVE's id map) with root's subordinate ids held while it
# runs; RUNTIME_ARGS and RUNTIME_ENV then carry them to every call. Call it
# after init_scratch, before resolve_runtime; remove_scratch undoes it.
backend_setup() {
	local b=${BACKEND:-native} d root
	[ "$b" = native ] && return 0
	d="$SCRATCH/backend"
	mkdir -p "$d"
	chmod 755 "$SCRATCH" "$d"
	case "$b" in
	lxc) printf 'default_backend = "lxc"\n' >"$d/config.toml" ;;
	pve)
		root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
		bash "$root/test/pctdouble/install.sh" "$d/bin" >/dev/null
		(cd "$root" && CGO_ENABLED=0 "${GO:-$("$root/scripts/find-go.sh")}" build -o "$d/bin/subids-hold" ./test/subids/cmd/subids-hold)
		mkdir -p "$d/pve"
		bash "$root/test/pctdouble/nodefiles.sh" "$d/pve"
		"$d/bin/subids-hold" >"$d/subids.ready" &
		BACKEND_HOLD=$!
		local i
		for i in $(seq 100); do grep -q ready "$d/subids.ready" 2>/dev/null && break; sleep 0.1; done
		grep -q ready "$d/subids.ready" || { echo "backend_setup: subids-hold did not get root's subordinate ids" >&2; exit 1; }
		cat >"$d/config.toml" <<EOF
default_backend = "pve"
[pve]
transport = "pct"
template_storage = "local"
rootfs_storage = "local-lvm"
bridge = "vmbr0"
[pve.tools]
ct_config_dir = "$d/pve/lxc"
lock_dir = "$d/pve/lock"
dpkg_status = "$d/pve/dpkg/status"
EOF
		RUNTIME_ENV="PATH='$d/bin':\$PATH PCTDOUBLE_DIR='$d/pve'"
		;;
	*) echo "BACKEND=$b: want native, lxc or pve" >&2; exit 2 ;;
	esac
	RUNTIME_ARGS="--config $d/config.toml ${RUNTIME_ARGS:-}"
	BACKEND_DIR=$d
}

# backend_cleanup: the double's CTs stopped, the id hold ended.
backend_cleanup() {
	local c
	if [ -n "${BACKEND_DIR:-}" ] && [ -d "$BACKEND_DIR/pve/lxc" ]; then
		for c in "$BACKEND_DIR"/pve/lxc/*.conf; do
			[ -e "$c" ] && lxc-stop -P "$BACKEND_DIR/pve/lxcpath" -n "$(basename "$c" .conf)" -k 2>/dev/null
		done
	fi
	if [ -n "${BACKEND_HOLD:-}" ]; then
		kill "$BACKEND_HOLD" 2>/dev/null && wait "$BACKEND_HOLD" 2>/dev/null
		BACKEND_HOLD=
	fi
	return 0
}

# keeper_pids: the pids of every keeper process on the host (`proxcage
# keeper` for pve, lxc-execute for lxc), sorted. A script saves them as
# KEEPER_PIDS_BEFORE before its first container.
keeper_pids() {
	pgrep -f 'proxcage keeper|lxc-execute' 2>/dev/null | sort || true
}

# keepers_left: keeper processes that were not there before this run
# (KEEPER_PIDS_BEFORE), one per line with their command line. A pve
# keeper's argv names only its /run/proxcage-keeper directory and an lxc
# keeper's the engine's state dir, never this run's scratch, so leftovers
# are found by pid, not by name (the clients run one at a time). A process
# that has exited (a zombie, or gone) is no leftover; one that is still
# exiting gets up to 5 s.
keepers_left() {
	local p st left i
	for i in $(seq 50); do
		left=
		for p in $(comm -13 <(printf '%s\n' "${KEEPER_PIDS_BEFORE:-}" | sort) <(keeper_pids)); do
			st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$p/stat" 2>/dev/null) || continue
			[ "$st" = Z ] && continue
			left+="$p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"$'\n'
		done
		[ -z "$left" ] && return 0
		[ "$i" = 50 ] || sleep 0.1
	done
	printf '%s' "$left"
	return 0
}

# resolve_runtime PATH: sets RUNTIME to an absolute path of an executable;
# if ARGV_LOG is set, RUNTIME becomes a logging wrapper around it.
resolve_runtime() {
	local rt=$1
	if [ -z "$rt" ]; then
		echo "usage: $0 RUNTIME" >&2
		remove_scratch
		exit 2
	fi
	case "$rt" in
	/*) ;;
	*/*) rt="$PWD/$rt" ;;
	*) rt=$(command -v "$rt" || echo "$rt") ;;
	esac
	if [ ! -x "$rt" ]; then
		echo "runtime $rt is not executable" >&2
		remove_scratch
		exit 2
	fi
	REAL_RUNTIME=$rt
	RUNTIME=$rt
	if [ -n "${RUNTIME_ARGS:-}" ]; then
		# global flags in front of every call (e.g. --config FILE that
		# routes to a backend), as an engine's runtime wrapper does
		mkdir -p "$SCRATCH/bin"
		chmod 755 "$SCRATCH/bin"
		printf '#!/bin/sh\n%sexec %s %s "$@"\n' "${RUNTIME_ENV:+export $RUNTIME_ENV; }" "'$rt'" "$RUNTIME_ARGS" >"$SCRATCH/bin/runtime-with-args"
		chmod +x "$SCRATCH/bin/runtime-with-args"
		REAL_RUNTIME="$SCRATCH/bin/runtime-with-args"
		RUNTIME=$REAL_RUNTIME
	fi
	if [ -n "${ARGV_LOG:-}" ]; then
		mkdir -p "$SCRATCH/bin"
		case "$ARGV_LOG" in /*) ;; *) ARGV_LOG="$PWD/$ARGV_LOG" ;; esac
		if [ "${ARGV_LOG_RC:-0}" = 1 ]; then
			# one line per call, written when it returns, with the exit status
			# (the wrapper stays the runtime's parent instead of exec'ing it)
			cat >"$SCRATCH/bin/runtime-argv-logger" <<EOF
#!/bin/sh
c=\$(cat /proc/\$PPID/comm 2>/dev/null)
'$REAL_RUNTIME' "\$@"
rc=\$?
printf '%s\t%s\trc=%s\t%s\n' "\$c" "\$PWD" "\$rc" "\$*" >>'$ARGV_LOG'
exit \$rc
EOF
		else
			cat >"$SCRATCH/bin/runtime-argv-logger" <<EOF
#!/bin/sh
# logs "CALLER<TAB>CWD<TAB>ARGV" then execs the real runtime
printf '%s\t%s\t%s\n' "\$(cat /proc/\$PPID/comm 2>/dev/null)" "\$PWD" "\$*" >>'$ARGV_LOG'
exec '$REAL_RUNTIME' "\$@"
EOF
		fi
		chmod +x "$SCRATCH/bin/runtime-argv-logger"
		RUNTIME="$SCRATCH/bin/runtime-argv-logger"
	fi
	export RUNTIME REAL_RUNTIME
}

# make_busybox_rootfs DIR: a minimal rootfs: /bin/busybox + one symlink
# per applet, plus the few directories and files containers expect.
make_busybox_rootfs() {
	local dir=$1 bb a
	bb=$(command -v busybox)
	mkdir -p "$dir/bin" "$dir/sbin" "$dir/etc" "$dir/proc" "$dir/sys" \
		"$dir/dev" "$dir/tmp" "$dir/root" "$dir/run" "$dir/var"
	chmod 1777 "$dir/tmp"
	cp "$bb" "$dir/bin/busybox"
	for a in $("$bb" --list); do
		[ "$a" = busybox ] && continue
		[ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$dir/etc/group"
}

# make_busybox_tar TAR: tar of the rootfs above (cached per scratch dir)
make_busybox_tar() {
	local tar=$1
	[ -s "$tar" ] && return 0
	local d="$SCRATCH/rootfs-build"
	rm -rf "$d"
	make_busybox_rootfs "$d"
	tar -C "$d" --numeric-owner --owner=0 --group=0 -cf "$tar" .
	rm -rf "$d"
}

# write_podman_conf: isolated podman configuration under $SCRATCH/podman.
# Exports CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF
# and defines the function `pm` (podman with explicit --root/--runroot/...).
# The runtime is registered under the name "testrt".
write_podman_conf() {
	local P="$SCRATCH/podman"
	mkdir -p "$P/root" "$P/runroot" "$P/tmp" "$P/networks" "$P/volumes" "$P/static"
	cat >"$P/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$P/runroot"
graphroot = "$P/root"
EOF
	cat >"$P/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "$P/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
static_dir = "$P/static"
volume_path = "$P/volumes"
lock_type = "file"
runtime = "testrt"

[engine.runtimes]
testrt = ["$RUNTIME"]
EOF
	: >"$P/registries.conf"
	export CONTAINERS_CONF="$P/containers.conf"
	export CONTAINERS_STORAGE_CONF="$P/storage.conf"
	export CONTAINERS_REGISTRIES_CONF="$P/registries.conf"
	PODMAN_DIR=$P

	# a script rather than a function so that timeout(1) and script(1) can run it
	PM="$P/podman"
	cat >"$PM" <<EOF2
#!/bin/sh
export CONTAINERS_CONF='$P/containers.conf' CONTAINERS_STORAGE_CONF='$P/storage.conf' CONTAINERS_REGISTRIES_CONF='$P/registries.conf'
exec podman --root '$P/root' --runroot '$P/runroot' --tmpdir '$P/tmp' \\
	--cgroup-manager cgroupfs --events-backend file --runtime testrt "\$@"
EOF2
	chmod +x "$PM"
}

# unmount_under DIR: lazily unmount every mount point below DIR (deepest first)
unmount_under() {
	local dir=$1 m
	[ -n "$dir" ] || return 0
	# /proc/self/mountinfo field 5 is the mount point (octal-escaped)
	awk -v d="$dir" '{ if ($5 == d || index($5, d "/") == 1) print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do
		m=$(printf '%b' "$m")
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

# remove_scratch: unmount everything below SCRATCH and remove it
remove_scratch() {
	backend_cleanup
	[ -n "${SCRATCH:-}" ] && [ -d "$SCRATCH" ] || return 0
	unmount_under "$SCRATCH"
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
		log "keeping $SCRATCH"
		return 0
	fi
	if [ "${SCRATCH_CREATED:-0}" = 1 ]; then
		rm -rf "$SCRATCH" 2>/dev/null || { sleep 1; unmount_under "$SCRATCH"; rm -rf "$SCRATCH"; } || true
	else
		local e
		while IFS= read -r e; do
			[ -n "$e" ] || continue
			printf '%s\n' "${SCRATCH_BEFORE:-}" | grep -qxF -- "$e" && continue
			rm -rf "${SCRATCH:?}/$e" 2>/dev/null || true
		done < <(ls -A "$SCRATCH")
	fi
}

# --- host-state bookkeeping -------------------------------------------------
# Clients create a few things outside the scratch dir no matter what:
# cgroups (podman: /libpod_parent/..., containerd: /<namespace>/<id>) and
# run-time directories. host_snapshot records what existed before;
# host_restore removes only what appeared since and belongs to the client:
#  - top-level cgroups whose name is in CG_NAMES (rmdir only, deepest first,
#    so a cgroup that still has processes is left alone and reported);
#  - HOST_PATHS_RM (client-owned state: rm -rf) and HOST_PATHS_RMDIR (shared
#    or possibly used by someone else: rmdir if empty).
CG_NAMES=${CG_NAMES:-}
HOST_PATHS_RM="/run/containers /run/libpod /var/lib/containers /etc/containers/networks /dev/shm/libpod_lock"
HOST_PATHS_RMDIR="/run/crun /run/netns"

host_snapshot() {
	CG_BEFORE="$SCRATCH/.cgroups-before"
	find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d 2>/dev/null | sort >"$CG_BEFORE"
	HOST_BEFORE="$SCRATCH/.host-before"
	local p
	for p in $HOST_PATHS_RM $HOST_PATHS_RMDIR; do [ -e "$p" ] && echo "$p"; done >"$HOST_BEFORE" || true
}

host_restore() {
	[ -n "${CG_BEFORE:-}" ] && [ -f "$CG_BEFORE" ] || return 0
	local d n left=""
	find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d 2>/dev/null | sort |
		comm -13 "$CG_BEFORE" - >"$SCRATCH/.cgroups-new" || true
	while read -r d; do
		[ -n "$d" ] || continue
		n=${d##*/}
		case " $CG_NAMES " in *" $n "*) ;; *) continue ;; esac
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		[ -d "$d" ] && left="$left $d"
	done <"$SCRATCH/.cgroups-new"
	[ -n "$left" ] && log "cgroups left behind (busy):$left"
	local p
	for p in $HOST_PATHS_RM $HOST_PATHS_RMDIR; do
		grep -qxF "$p" "$HOST_BEFORE" 2>/dev/null && continue
		[ -e "$p" ] || continue
		case " $HOST_PATHS_RMDIR " in
		*" $p "*)
			# e.g. /run/netns is bind-mounted onto itself by netavark
			if [ -z "$(ls -A "$p" 2>/dev/null)" ]; then
				umount "$p" 2>/dev/null
				rmdir "$p" 2>/dev/null
			fi
			;;
		*)
			unmount_under "$p"
			rm -rf "$p" 2>/dev/null || log "could not remove $p"
			;;
		esac
	done
	return 0
}

# netavark (podman's default bridge network) adds iptables rules/chains and
# nft tables that outlive the containers. Snapshot and undo them.
fw_snapshot() {
	command -v iptables-save >/dev/null || return 0
	iptables-save 2>/dev/null | grep -E '^(\*|:|-A)' >"$SCRATCH/.ipt-before" || true
	nft list tables 2>/dev/null >"$SCRATCH/.nft-before" || true
	cat /proc/sys/net/ipv4/ip_forward >"$SCRATCH/.ip_forward-before" 2>/dev/null || true
}

fw_restore() {
	[ -f "$SCRATCH/.ipt-before" ] || return 0
	local line table="" chain rule t
	# delete new rules (reverse order), then new chains
	iptables-save 2>/dev/null | grep -E '^(\*|:|-A)' | while read -r line; do
		case "$line" in \**) table=${line#\*}; continue ;; esac
		grep -qxF -- "$line" "$SCRATCH/.ipt-before" && continue
		printf '%s\t%s\n' "$table" "$line"
	done | tac | while IFS=$'\t' read -r table line; do
		case "$line" in
		-A*) rule=${line#-A }; eval "iptables -t $table -D $rule" 2>/dev/null || true ;;
		esac
	done
	iptables-save 2>/dev/null | grep -E '^(\*|:)' | while read -r line; do
		case "$line" in \**) table=${line#\*}; continue ;; esac
		grep -qxF -- "$line" "$SCRATCH/.ipt-before" && continue
		chain=${line#:}; chain=${chain%% *}
		iptables -t "$table" -F "$chain" 2>/dev/null
		iptables -t "$table" -X "$chain" 2>/dev/null || true
	done
	nft list tables 2>/dev/null | while read -r t; do
		grep -qxF -- "$t" "$SCRATCH/.nft-before" 2>/dev/null && continue
		# only drop tables that are empty of rules
		if ! nft list $t 2>/dev/null | grep -qE '^\s+(counter|jump|ip |meta|masquerade|accept|drop)'; then
			nft delete $t 2>/dev/null || true
		fi
	done
	[ -s "$SCRATCH/.ip_forward-before" ] && cat "$SCRATCH/.ip_forward-before" >/proc/sys/net/ipv4/ip_forward 2>/dev/null
	return 0
}

# make_busybox_oci_archive OUT.tar NAME(e.g. localhost/busybox:latest):
# a single-layer OCI image layout (uncompressed layer) tarred up, built by
# hand from the rootfs tar; the index carries io.containerd.image.name so
# `ctr images import` names it NAME.
make_busybox_oci_archive() {
	local out=$1 name=$2
	local d="$SCRATCH/oci-build"
	rm -rf "$d"
	mkdir -p "$d/blobs/sha256"
	make_busybox_tar "$SCRATCH/busybox.tar"
	local layer_sha layer_size cfg cfg_sha cfg_size man man_sha man_size arch
	layer_sha=$(sha256sum "$SCRATCH/busybox.tar" | cut -d' ' -f1)
	layer_size=$(stat -c %s "$SCRATCH/busybox.tar")
	cp "$SCRATCH/busybox.tar" "$d/blobs/sha256/$layer_sha"
	case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
	cfg='{"architecture":"'$arch'","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$layer_sha'"]},"history":[{"created_by":"proxcage test/clients/lib.sh"}]}'
	printf '%s' "$cfg" >"$d/cfg"
	cfg_sha=$(sha256sum "$d/cfg" | cut -d' ' -f1)
	cfg_size=$(stat -c %s "$d/cfg")
	mv "$d/cfg" "$d/blobs/sha256/$cfg_sha"
	man='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$cfg_sha'","size":'$cfg_size'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'$layer_sha'","size":'$layer_size'}]}'
	printf '%s' "$man" >"$d/man"
	man_sha=$(sha256sum "$d/man" | cut -d' ' -f1)
	man_size=$(stat -c %s "$d/man")
	mv "$d/man" "$d/blobs/sha256/$man_sha"
	printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
	printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'$man_sha'","size":'$man_size',"annotations":{"io.containerd.image.name":"'$name'","org.opencontainers.image.ref.name":"'${name##*:}'"},"platform":{"architecture":"'$arch'","os":"linux"}}]}' >"$d/index.json"
	tar -C "$d" --numeric-owner --owner=0 --group=0 -cf "$out" oci-layout index.json blobs
	rm -rf "$d"
}
