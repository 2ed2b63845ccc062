#!/usr/bin/env bash
# End-to-end test: Docker (Debian's docker.io 20.10: dockerd + containerd +
# containerd-shim-runc-v2) driving a runc-compatible RUNTIME, registered in
# daemon.json as the runtime "proxcage" and picked with `docker run --runtime
# proxcage` (the default runtime stays runc).
#
#   test/clients/docker.sh RUNTIME
#
# A private dockerd: its --data-root, --exec-root, --pidfile, socket and
# --config-file live in $SCRATCH (default: fresh mktemp dir), removed at
# exit; no bridge, no iptables rules (containers run with --network none,
# or DOCKER_NETWORK).
# Its containerd is the one dockerd manages, with its socket and state under
# our --exec-root (checked). dockerd would use the host's containerd instead
# if /run/containerd/containerd.sock exists, so then (or with
# DOCKER_CONTAINERD=own) the script starts a containerd of its own in
# $SCRATCH and passes --containerd. Outside the scratch dir the shim uses
# /run/containerd/s for shim sockets: ours are removed at exit, and the
# directories too when they are new and empty.
# Env: SCRATCH, KEEP_SCRATCH=1, ARGV_LOG=FILE (log runtime argv), VERBOSE=1,
#      RUNTIME_ARGS  extra words put before every runtime call, as daemon.json
#                    "runtimeArgs" (e.g. "--config /path/config.toml" to pick
#                    a backend; docker 20.10 has no --annotation),
#      DOCKER_RUN_ARGS extra words for every `docker run`,
#      DOCKER_CONTAINERD=managed (default) | own,
#      DOCKER_NETWORK (default "none"; "host": docker then puts no net.ipv4.*
#                    sysctls in the spec, which it does for every other
#                    mode, but a network namespace path instead).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

DOCKER_BIN=/usr/bin/docker
DOCKERD_BIN=/usr/sbin/dockerd
for b in "$DOCKER_BIN" "$DOCKERD_BIN"; do
	[ -x "$b" ] || { echo "$b missing (apt-get install docker.io)" >&2; exit 2; }
done
command -v containerd >/dev/null || { echo "containerd not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }

init_scratch
backend_setup
# Docker gets RUNTIME_ARGS as daemon.json's runtimeArgs, not a wrapper;
# the pve double's environment reaches the runtime through dockerd's.
DOCKER_RT_ARGS=${RUNTIME_ARGS:-}
RUNTIME_ARGS=
resolve_runtime "${1:-}"
[ -n "${RUNTIME_ENV:-}" ] && eval "export $RUNTIME_ENV"
KEEPER_DIRS_BEFORE=$(ls /run/proxcage-keeper 2>/dev/null || true)
KEEPER_PIDS_BEFORE=$(keeper_pids)

read -r -a RT_ARGS <<<"$DOCKER_RT_ARGS"
read -r -a RUN_ARGS <<<"${DOCKER_RUN_ARGS:-}"
CTRD_MODE=${DOCKER_CONTAINERD:-managed}

D=$SCRATCH/docker
DATA=$D/data
EXEC=$D/exec
SOCK=$D/docker.sock
PIDFILE=$D/dockerd.pid
CONF=$D/daemon.json
DOCKERD_PID=""
CTRD_SOCK=""
OWN_CTRD_PID=""
OWN_CTRD_SOCK=$D/containerd/containerd.sock
IMG=localhost/busybox
DET=pc-docker-$$
DET2=pc-docker-shim-$$
# the runc v2 shim's --root for docker 20.10: <exec-root>/runtime-runc/<ns>
RT_ROOT=$EXEC/runtime-runc/moby
# dockerd 20.10 writes its trust key to /etc/docker/key.json unless told
# otherwise ("deprecated-key-path" in daemon.json), and makes
# /run/docker/plugins whatever its --exec-root
HOST_PATHS_RM="/etc/docker/key.json"
HOST_PATHS_RMDIR="/run/containerd/s /run/containerd /run/docker/plugins /run/docker"
# shim sockets of the containers we made (/run/containerd/s/HASH), removed
# at exit: a shim killed with -9 leaves its socket behind
SHIM_SOCKS=""
CG_NAMES="docker"

# docker as a script, so timeout(1) and script(1) can run it
DK=$D/docker
write_docker_wrapper() {
	cat >"$DK" <<EOF
#!/bin/sh
export DOCKER_CONFIG='$D/client'
exec '$DOCKER_BIN' -H 'unix://$SOCK' "\$@"
EOF
	chmod +x "$DK"
}

# pids of processes whose command line mentions our scratch dir
# (managed containerd, shims: their argv carries the containerd socket path)
ours() {
	local p
	for p in $(pgrep "$@" 2>/dev/null); do
		[ "$p" = $$ ] && continue
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$SCRATCH/"; then
			echo "$p"
		fi
	done
}

# note_shim_sock ID: containerd 1.6 puts the shim socket of container ID at
# /run/containerd/s/sha256(<containerd address>/<namespace>/<ID>)
note_shim_sock() {
	local h
	h=$(printf '%s' "$CTRD_SOCK/moby/$1" | sha256sum | cut -d' ' -f1)
	SHIM_SOCKS="$SHIM_SOCKS /run/containerd/s/$h"
}

stop_pid() {
	local p=$1
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
	sleep 0.2
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		local c
		for c in $(timeout 20 "$DK" ps -aq --no-trunc 2>/dev/null); do
			note_shim_sock "$c"
			timeout 30 "$DK" rm -f "$c" >/dev/null 2>&1
		done
		timeout 20 "$DK" rmi -f "$IMG" >/dev/null 2>&1
		stop_pid "$DOCKERD_PID"
		wait "$DOCKERD_PID" 2>/dev/null
	fi
	stop_pid "$OWN_CTRD_PID"
	[ -n "$OWN_CTRD_PID" ] && wait "$OWN_CTRD_PID" 2>/dev/null
	# whatever is left of ours: the managed containerd, then shims (by pid)
	local p
	for p in $(ours -x containerd); do stop_pid "$p"; done
	local id
	for p in $(ours -f containerd-shim); do
		id=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n '/^-id$/{n;p;q}')
		[ -n "$id" ] && note_shim_sock "$id"
		kill -9 "$p" 2>/dev/null
	done
	for p in $SHIM_SOCKS; do
		[ -S "$p" ] && rm -f "$p"
	done
	unmount_under "$SCRATCH"
	host_restore
	remove_scratch
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

host_snapshot
mkdir -p "$DATA" "$EXEC" "$D/client"
write_docker_wrapper

# daemon.json: the runtime under the name "proxcage" with RUNTIME_ARGS as
# runtimeArgs (JSON strings)
json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}
rt_args_json=""
for a in "${RT_ARGS[@]}"; do
	[ -n "$rt_args_json" ] && rt_args_json+=", "
	rt_args_json+=$(json_str "$a")
done
cat >"$CONF" <<EOF
{
  "default-runtime": "runc",
  "deprecated-key-path": $(json_str "$D/key.json"),
  "runtimes": {
    "proxcage": {
      "path": $(json_str "$RUNTIME"),
      "runtimeArgs": [$rt_args_json]
    }
  }
}
EOF

if [ "$CTRD_MODE" = managed ] && [ -e /run/containerd/containerd.sock ]; then
	log "/run/containerd/containerd.sock exists: dockerd would use it; starting a containerd of our own"
	CTRD_MODE=own
fi
CTRD_ARGS=()
if [ "$CTRD_MODE" = own ]; then
	C=$D/containerd
	mkdir -p "$C/root" "$C/state" "$C/opt"
	cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$OWN_CTRD_SOCK"

[ttrpc]
  address = "$OWN_CTRD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF
	setsid containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
	OWN_CTRD_PID=$!
	for _ in $(seq 100); do
		[ -S "$OWN_CTRD_SOCK" ] && break
		kill -0 "$OWN_CTRD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! [ -S "$OWN_CTRD_SOCK" ]; then
		not_ok "containerd started" "$(tail -5 "$C/containerd.log")"
		summary
		exit 1
	fi
	CTRD_ARGS=(--containerd "$OWN_CTRD_SOCK")
fi

log "runtime: $REAL_RUNTIME ${RT_ARGS[*]}  scratch: $SCRATCH  containerd: $CTRD_MODE  network: ${DOCKER_NETWORK:-none}"
# own session: a ^C or a signal to our process group reaches only us, and
# cleanup stops dockerd in order
setsid "$DOCKERD_BIN" --config-file "$CONF" --data-root "$DATA" --exec-root "$EXEC" \
	--pidfile "$PIDFILE" -H "unix://$SOCK" --iptables=false --ip-masq=false \
	--ip6tables=false --bridge=none "${CTRD_ARGS[@]}" >"$D/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 300); do
	[ -S "$SOCK" ] && "$DK" version >/dev/null 2>&1 && break
	kill -0 "$DOCKERD_PID" 2>/dev/null || break
	sleep 0.1
done
if ! "$DK" version >/dev/null 2>&1; then
	not_ok "dockerd started" "$(tail -5 "$D/dockerd.log")"
	summary
	exit 1
fi

# which containerd dockerd talks to: ours, never /run/containerd/containerd.sock
if [ "$CTRD_MODE" = managed ]; then
	CTRD_SOCK=$EXEC/containerd/containerd.sock
	mpid=$(cat "$EXEC/containerd/containerd.pid" 2>/dev/null || true)
	mcmd=$(tr '\0' ' ' <"/proc/${mpid:-0}/cmdline" 2>/dev/null || true)
	if [ -S "$CTRD_SOCK" ] && [ "$(cat "/proc/${mpid:-0}/comm" 2>/dev/null)" = containerd ] &&
		[ "$(awk '{print $4}' "/proc/$mpid/stat")" = "$DOCKERD_PID" ] &&
		! [ -e /run/containerd/containerd.sock ]; then
		ok "dockerd's managed containerd (pid $mpid) listens on $CTRD_SOCK"
	else
		not_ok "dockerd's managed containerd in our exec-root" "pid=[$mpid] cmd=[$mcmd] $(ls -l "$EXEC/containerd" 2>&1)"
	fi
else
	CTRD_SOCK=$OWN_CTRD_SOCK
	if grep -q "containerd.*$OWN_CTRD_SOCK" "$D/dockerd.log" || ! [ -e "$EXEC/containerd/containerd.pid" ]; then
		ok "dockerd uses our containerd ($CTRD_SOCK)"
	else
		not_ok "dockerd uses our containerd" "$(grep -i containerd "$D/dockerd.log" | tail -3)"
	fi
fi

run_to out 30 "$DK" info --format '{{json .Runtimes}}'
check_contains "docker info lists runtime proxcage" '"proxcage"' "$out"

make_busybox_tar "$SCRATCH/busybox.tar"
run_to out 120 "$DK" import "$SCRATCH/busybox.tar" "$IMG"
if [ "$out_rc" != 0 ]; then
	not_ok "import busybox image" "rc=$out_rc $out"
	summary
	exit 1
fi

RUN=(run --runtime proxcage --network "${DOCKER_NETWORK:-none}" "${RUN_ARGS[@]}")

# run --rm, output
run_to out 120 "$DK" "${RUN[@]}" --rm "$IMG" echo hi
check_eq "run --rm echo" "0/hi" "$out_rc/$out"

run_split out 120 "$DK" "${RUN[@]}" --rm "$IMG" sh -c 'echo out; echo err >&2'
check_eq "run --rm stdout+stderr (separate streams)" "0/out/err" "$out_rc/$out/$out_err"

run_to out 120 "$DK" "${RUN[@]}" --rm -e FOO=bar -w /tmp "$IMG" sh -c 'echo $FOO $(pwd)'
check_eq "run --rm env and cwd" "0/bar /tmp" "$out_rc/$out"

out=$(printf 'piped\n' | timeout --kill-after=10 120 "$DK" "${RUN[@]}" --rm -i "$IMG" cat 2>&1) && rc=0 || rc=$?
check_eq "run --rm -i stdin" "0/piped" "$rc/$out"

# tty: docker allows -t without -i with stdin at /dev/null
run_to out 120 "$DK" "${RUN[@]}" --rm -t "$IMG" sh -c 'tty; test -t 0 && test -t 1 && echo isatty'
case "${BACKEND:-native}" in
lxc) limit "run --rm -t: tty" "the pty is the host's, not from the container's devpts" "0/not a tty
isatty" "$out_rc/$out" ;;
*) check_eq "run --rm -t: tty" "0//dev/pts/0
isatty" "$out_rc/$out" ;;
esac

if command -v script >/dev/null && [ "${BACKEND:-native}" != lxc ]; then
	run_to out 120 script -qec "$DK ${RUN[*]} --rm -it $IMG sh -c 'tty; stty size'" /dev/null
	check_contains "run --rm -it under script(1)" "/dev/pts/0" "$out"
fi

# exit codes
run_to out 120 "$DK" "${RUN[@]}" --rm "$IMG" sh -c 'exit 7'
check_eq "exit code 7 propagates" "7" "$out_rc"

run_to out 120 "$DK" "${RUN[@]}" --rm "$IMG" /nonexistent
case "$out_rc" in
125 | 126 | 127) ok "missing executable fails ($out_rc)" ;;
*) not_ok "missing executable fails" "rc=$out_rc out=$out" ;;
esac

# detached container: logs, exec, stop, start, kill, rm
run_to out 120 "$DK" "${RUN[@]}" -d --name "$DET" "$IMG" sh -c 'echo started; exec sleep 1000'
if [ "$out_rc" = 0 ]; then
	ok "run -d"
	run_to st 30 "$DK" inspect -f '{{.State.Status}}' "$DET"
	check_eq "inspect status running" "running" "$st"

	# the shim's --root is RT_ROOT: the runtime lists the container there
	run_to cid 30 "$DK" inspect -f '{{.Id}}' "$DET"
	run_to st 30 "$REAL_RUNTIME" "${RT_ARGS[@]}" --root "$RT_ROOT" list -q
	check_contains "runtime lists the container under $RT_ROOT" "$cid" "$st"

	st=""
	for _ in $(seq 50); do
		run_to st 30 "$DK" logs "$DET"
		[ "$st" = started ] && break
		sleep 0.1
	done
	check_eq "logs" "0/started" "$st_rc/$st"

	run_to out 60 "$DK" exec "$DET" echo hi
	check_eq "exec echo" "0/hi" "$out_rc/$out"

	run_to out 60 "$DK" exec "$DET" sh -c 'exit 5'
	check_eq "exec exit code 5" "5" "$out_rc"

	run_to out 60 "$DK" exec -e X=y -w /tmp "$DET" sh -c 'echo $X $(pwd)'
	check_eq "exec env and cwd" "0/y /tmp" "$out_rc/$out"

	run_to out 60 "$DK" exec "$DET" ps -o pid,args
	case "${BACKEND:-native}" in
	lxc) check_eq "exec sees init.lxc as pid 1 and sleep under it" "1 {lxc-execute}/sleep 1000" \
		"$(printf '%s\n' "$out" | awk '$1 == 1 {print $1, $2}')/$(printf '%s\n' "$out" | awk '$2 == "sleep" {print $2, $3}')" ;;
	pve) check_eq "exec sees the keeper's wrapper as pid 1 and sleep under it" "1 /dev/.proxcage-keeper/init/sleep 1000" \
		"$(printf '%s\n' "$out" | awk '$1 == 1 {print $1, $2}')/$(printf '%s\n' "$out" | awk '$2 == "sleep" {print $2, $3}')" ;;
	*) check_contains "exec sees pid 1 sleep" "1 sleep 1000" "$out" ;;
	esac

	run_to out 60 "$DK" exec -t "$DET" tty
	case "$out" in
	/dev/pts/*) [ "$out_rc" = 0 ] && ok "exec -t tty" || not_ok "exec -t tty" "rc=$out_rc out=$out" ;;
	*) not_ok "exec -t tty" "rc=$out_rc out=$out" ;;
	esac

	# sleep is PID 1 and ignores SIGTERM; -t 1 makes docker escalate to SIGKILL
	t0=$(date +%s)
	run_to out 60 "$DK" stop -t 1 "$DET"
	t1=$(date +%s)
	run_to st 30 "$DK" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$DET"
	# on lxc and pve sleep is not pid 1 (init.lxc, the keeper's wrapper
	# pass TERM on), so TERM ends it
	want_stop="exited 137"
	[ "${BACKEND:-native}" = native ] || want_stop="exited 143"
	if [ "$out_rc" = 0 ] && [ "$st" = "$want_stop" ]; then
		ok "stop -t 1 -> $want_stop ($((t1 - t0))s)"
	else
		not_ok "stop -t 1 -> $want_stop" "rc=$out_rc out=$out state=$st"
	fi

	run_to out 60 "$DK" start "$DET"
	run_to st 30 "$DK" inspect -f '{{.State.Status}}' "$DET"
	check_eq "start stopped container" "0/running" "$out_rc/$st"

	run_to out 60 "$DK" exec "$DET" echo again
	check_eq "exec after restart" "0/again" "$out_rc/$out"

	run_to out 60 "$DK" kill "$DET"
	run_to out2 60 "$DK" wait "$DET"
	check_eq "kill + wait" "0/137" "$out_rc/$out2"

	run_to out 60 "$DK" rm "$DET"
	check_eq "rm" "0" "$out_rc"
else
	not_ok "run -d" "rc=$out_rc $out"
	timeout 30 "$DK" rm -f "$DET" >/dev/null 2>&1 || true
fi

# kill -9 the shim of a running container, then rm -f: nothing may be left
run_to out 120 "$DK" "${RUN[@]}" -d --name "$DET2" "$IMG" sleep 1001
if [ "$out_rc" = 0 ]; then
	cid=$out
	note_shim_sock "$cid"
	run_to cpid 30 "$DK" inspect -f '{{.State.Pid}}' "$DET2"
	shim=""
	for p in $(ours -f containerd-shim); do
		if tr '\0' ' ' <"/proc/$p/cmdline" | grep -qE -- "-id $cid( |\$)"; then shim=$p; fi
	done
	if [ -n "$shim" ] && [ "${cpid:-0}" -gt 0 ]; then
		kill -9 "$shim"
		sleep 1
		run_to out 60 "$DK" rm -f "$DET2"
		sleep 0.5
		left=""
		run_to st 30 "$DK" ps -aq
		[ -z "$st" ] || left="$left docker:[$st]"
		run_to st 30 "$REAL_RUNTIME" "${RT_ARGS[@]}" --root "$RT_ROOT" list -q
		st=$(printf '%s\n' "$st" | grep -E '^[0-9a-f]{64}$' || true)
		[ -z "$st" ] || left="$left runtime:[$st]"
		s=$(ours -f "containerd-shim.*$cid" | tr '\n' ' ')
		[ -z "$s" ] || left="$left shim:[$s]"
		# the container's init, orphaned by the shim's death, is killed by
		# the runtime's delete; give its new parent a moment to reap it
		for _ in $(seq 50); do [ -d "/proc/$cpid" ] || break; sleep 0.1; done
		if [ -d "/proc/$cpid" ]; then
			pp=$(awk '{print $4}' "/proc/$cpid/stat" 2>/dev/null)
			left="$left process:[$cpid $(cat "/proc/$cpid/comm" 2>/dev/null) state=$(awk '{print $3}' "/proc/$cpid/stat" 2>/dev/null) ppid=$pp($(cat "/proc/$pp/comm" 2>/dev/null))]"
		fi
		s=$(pgrep -fx 'sleep 1001' | tr '\n' ' ' || true)
		[ -z "$s" ] || left="$left sleep-1001:[$s]"
		if [ "$out_rc" = 0 ] && [ -z "$left" ]; then
			ok "kill -9 shim + rm -f: nothing left"
		else
			not_ok "kill -9 shim + rm -f: nothing left" "rm rc=$out_rc $out; left:$left"
		fi
	else
		not_ok "kill -9 shim + rm -f: nothing left" "shim of $cid not found (pid=$cpid)"
		timeout 30 "$DK" rm -f "$DET2" >/dev/null 2>&1 || true
	fi
else
	not_ok "run -d (for the shim kill)" "rc=$out_rc $out"
	timeout 30 "$DK" rm -f "$DET2" >/dev/null 2>&1 || true
fi

check_eq "no keeper left" "" "$(keepers_left)"
[ -n "${BACKEND_DIR:-}" ] && [ -d "$BACKEND_DIR/pve/lxc" ] &&
	check_eq "no CT left on the double" "" "$(find "$BACKEND_DIR/pve/lxc" -name '*.conf' -printf '%f\n')"
check_eq "no keeper directory left" "$KEEPER_DIRS_BEFORE" "$(ls /run/proxcage-keeper 2>/dev/null || true)"

# nothing left behind in docker or in the runtime's own state
run_to st 30 "$DK" ps -aq
check_eq "no docker containers left" "0/" "$st_rc/$st"
run_to st 30 "$REAL_RUNTIME" "${RT_ARGS[@]}" --root "$RT_ROOT" list -q
left=$(printf '%s\n' "$st" | grep -E '^[0-9a-f]{64}$' || true)
check_eq "no runtime containers left in $RT_ROOT" "0/" "$st_rc/$left"

summary
