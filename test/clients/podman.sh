#!/usr/bin/env bash
# End-to-end test: podman (+ conmon) driving a runc-compatible RUNTIME.
#
#   test/clients/podman.sh RUNTIME
#
# Everything (storage, run state, events, locks, networks config) lives in
# $SCRATCH (default: fresh mktemp dir), removed at exit.
# Env: SCRATCH, KEEP_SCRATCH=1, ARGV_LOG=FILE (log runtime argv), VERBOSE=1,
#      PODMAN_NETWORK (default "none"; "default" uses podman's netavark bridge,
#      which leaves iptables chains on the host, so it is opt-in).
#      PODMAN_RUNTIME_JSON=0 to not list the runtime in runtime_supports_json
#      (then podman passes no --log/--log-format to it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

command -v podman >/dev/null || { echo "podman not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }

init_scratch
backend_setup
resolve_runtime "${1:-}"

IMG=localhost/busybox
NET=${PODMAN_NETWORK:-none}
NETARGS=()
[ "$NET" = default ] || NETARGS=(--network "$NET")
DET=pc-detached-$$

cleanup() {
	local rc=$?
	set +e
	if [ -n "${PM:-}" ] && [ -x "$PM" ]; then
		"$PM" rm -f -t 0 -a >/dev/null 2>&1
		"$PM" rmi -af >/dev/null 2>&1
		# conmon processes that belong to our storage (should be none)
		pkill_ours
	fi
	unmount_under "$SCRATCH"
	[ "$NET" = default ] && fw_restore
	host_restore
	remove_scratch
	exit "$rc"
}

# kill leftover conmon processes whose command line mentions our scratch dir
pkill_ours() {
	local p
	for p in $(pgrep -x conmon 2>/dev/null); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$SCRATCH"; then
			kill -9 "$p" 2>/dev/null
		fi
	done
}

trap cleanup EXIT
trap 'exit 130' INT TERM

CG_NAMES="libpod_parent"
host_snapshot
[ "$NET" = default ] && fw_snapshot
write_podman_conf
if [ "${PODMAN_RUNTIME_JSON:-1}" = 1 ]; then
	# as podman does for runc/crun: pass --log-format=json --log FILE
	sed -i 's/^runtime = "testrt"$/runtime = "testrt"\nruntime_supports_json = ["testrt"]/' "$CONTAINERS_CONF"
fi
make_busybox_tar "$SCRATCH/busybox.tar"
KEEPER_DIRS_BEFORE=$(ls /run/proxcage-keeper 2>/dev/null || true)
KEEPER_PIDS_BEFORE=$(keeper_pids)
log "runtime: $REAL_RUNTIME  scratch: $SCRATCH  network: $NET"

run_to out 120 "$PM" import "$SCRATCH/busybox.tar" "$IMG"
if [ "$out_rc" != 0 ]; then
	not_ok "import busybox image" "rc=$out_rc $out"
	summary
	exit 1
fi

# (a) run --rm, output
run_to out 120 "$PM" run --rm "${NETARGS[@]}" "$IMG" echo hi
check_eq "run --rm echo" "0/hi" "$out_rc/$out"

run_split out 120 "$PM" run --rm "${NETARGS[@]}" "$IMG" sh -c 'echo out; echo err >&2'
check_eq "run --rm stdout+stderr (separate streams)" "0/out/err" "$out_rc/$out/$out_err"

run_to out 120 "$PM" run --rm "${NETARGS[@]}" -e FOO=bar -w /tmp "$IMG" sh -c 'echo $FOO $(pwd)'
check_eq "run --rm env and cwd" "0/bar /tmp" "$out_rc/$out"

# stdin passthrough (-i, non-tty)
out=$(printf 'piped\n' | timeout 120 "$PM" run --rm -i "${NETARGS[@]}" "$IMG" cat 2>&1) && rc=0 || rc=$?
check_eq "run --rm -i stdin" "0/piped" "$rc/$out"

# (b) tty: stdin is /dev/null (not a terminal); podman still allocates a pty
# for the container and copies its output.
run_to out 120 "$PM" run --rm -t "${NETARGS[@]}" "$IMG" tty
case "${BACKEND:-native}" in
lxc) limit "run --rm -t (stdin /dev/null): tty" "the pty is the host's, not from the container's devpts" "1/not a tty" "$out_rc/$out" ;;
*) check_eq "run --rm -t (stdin /dev/null): tty" "0//dev/pts/0" "$out_rc/$out" ;;
esac

run_to out 120 "$PM" run --rm -t "${NETARGS[@]}" "$IMG" sh -c 'test -t 0 && test -t 1 && echo isatty'
check_eq "run --rm -t: fds 0,1 are ttys" "0/isatty" "$out_rc/$out"

# tty with a real terminal on podman's side (script(1) gives it a pty)
if command -v script >/dev/null; then
	run_to out 120 script -qec "$PM run --rm -t ${NETARGS[*]} $IMG sh -c 'tty; stty size'" /dev/null
	if [ "${BACKEND:-native}" = lxc ]; then
		limit "run --rm -t under script(1): tty" "the pty is the host's" "not a tty" "${out%%$'\n'*}"
	else
		check_contains "run --rm -t under script(1): tty" "/dev/pts/0" "$out"
	fi
fi

# an interactive terminal: typed input reaches the shell, its exit status
# comes back
if command -v script >/dev/null; then
	out=$( (sleep 2; printf 'echo typed-$((6*7))\n'; sleep 1; printf 'exit 4\n'; sleep 1) |
		timeout 60 script -qec "$PM run --rm -it ${NETARGS[*]} $IMG sh" /dev/null 2>&1 | tr -d '\r') && rc=0 || rc=$?
	check_eq "run --rm -it: typed input runs, its exit status comes back" "4/1" "$rc/$(printf '%s\n' "$out" | grep -c '^typed-42$')"
fi

# routing by annotation: with a config whose default is native, podman's
# --annotation org.proxcage.backend=pve puts the container on pve (pid 1 in
# it is the keeper's wrapper)
if [ "${BACKEND:-native}" = pve ]; then
	sed 's/^default_backend = .*/default_backend = "native"/' "$BACKEND_DIR/config.toml" >"$BACKEND_DIR/native-default.toml"
	sed "s|--config $BACKEND_DIR/config.toml|--config $BACKEND_DIR/native-default.toml|" "$REAL_RUNTIME" >"$SCRATCH/bin/runtime-native-default"
	chmod +x "$SCRATCH/bin/runtime-native-default"
	run_to out 120 "$PM" --runtime "$SCRATCH/bin/runtime-native-default" run --rm "${NETARGS[@]}" \
		--annotation org.proxcage.backend=pve "$IMG" sh -c 'echo hi; tr "\0" " " </proc/1/cmdline'
	check_eq "--annotation org.proxcage.backend=pve over a native default" "0/hi
/dev/.proxcage-keeper/init --keeper /dev/.proxcage-keeper " "$out_rc/$out"
fi

# (c) detached container, exec, stop, rm
run_to out 120 "$PM" run -d --name "$DET" "${NETARGS[@]}" "$IMG" sleep 1000
if [ "$out_rc" = 0 ]; then
	ok "run -d sleep"
	run_to st 30 "$PM" inspect -f '{{.State.Status}}' "$DET"
	check_eq "inspect status running" "running" "$st"

	run_to st 30 "$PM" ps --format '{{.Names}} {{.Status}}'
	check_contains "ps lists container" "$DET Up" "$st"

	run_to out 60 "$PM" exec "$DET" echo hi
	check_eq "exec echo" "0/hi" "$out_rc/$out"

	run_to out 60 "$PM" exec "$DET" sh -c 'exit 5'
	check_eq "exec exit code" "5" "$out_rc"

	# (a signal-killed PID 1 cannot be produced from inside; an exec'd process can)
	run_to out 60 "$PM" exec "$DET" sh -c 'kill -9 $$'
	check_eq "exec killed by SIGKILL gives 137" "137" "$out_rc"

	run_to out 60 "$PM" exec -e X=y -w /tmp "$DET" sh -c 'echo $X $(pwd)'
	check_eq "exec env and cwd" "0/y /tmp" "$out_rc/$out"

	run_to out 60 "$PM" exec "$DET" ps -o pid,args
	if [ "${BACKEND:-native}" = lxc ]; then
		# lxc-execute's init.lxc is pid 1 and runs the process as pid 2
		check_contains "exec sees pid 2 sleep under init.lxc" "2 sleep 1000" "$out"
	elif [ "${BACKEND:-native}" = pve ]; then
		# the keeper's wrapper is the CT's init and runs the process
		check_eq "exec sees the keeper's wrapper as pid 1 and sleep under it" "1 /dev/.proxcage-keeper/init/sleep 1000" \
			"$(printf '%s\n' "$out" | awk '$1 == 1 {print $1, $2}')/$(printf '%s\n' "$out" | awk '$2 == "sleep" {print $2, $3}')"
	else
		check_contains "exec sees pid 1 sleep" "1 sleep 1000" "$out"
	fi

	run_to out 60 "$PM" exec -t "$DET" tty
	case "$out" in
	/dev/pts/*) [ "$out_rc" = 0 ] && ok "exec -t tty" || not_ok "exec -t tty" "rc=$out_rc out=$out" ;;
	*) not_ok "exec -t tty" "rc=$out_rc out=$out" ;;
	esac

	run_to out 60 "$PM" exec -d "$DET" sleep 1
	check_eq "exec -d" "0" "$out_rc"

	run_to out 60 "$PM" top "$DET" pid args
	if [ "${BACKEND:-native}" = native ]; then
		check_contains "top" "sleep 1000" "$out"
	else
		# podman top reads the pid namespace of the pid it was given: the
		# keeper's, which is the host's
		limit "top lists the keeper's pid namespace" "podman top reads /proc/PID/ns of the keeper, a host process" "host" \
			"$(printf '%s\n' "$out" | grep -q conmon && echo host)"
	fi

	run_to out 60 "$PM" pause "$DET"
	run_to st 30 "$PM" inspect -f '{{.State.Status}}' "$DET"
	if [ "${BACKEND:-native}" = pve ]; then
		limit "pause refused" "the pve backend has no pause" "125/running/1" \
			"$out_rc/$st/$(printf '%s' "$out" | grep -c 'the pve backend does not support pause')"
	else
		check_eq "pause" "0/paused" "$out_rc/$st"
		run_to out 60 "$PM" unpause "$DET"
		run_to st 30 "$PM" inspect -f '{{.State.Status}}' "$DET"
		check_eq "unpause" "0/running" "$out_rc/$st"
	fi

	# sleep is PID 1 and ignores SIGTERM; -t 1 makes podman escalate to SIGKILL
	t0=$(date +%s)
	run_to out 60 "$PM" stop -t 1 "$DET"
	t1=$(date +%s)
	run_to st 30 "$PM" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$DET"
	# on lxc and pve the process is not pid 1 (init.lxc, the keeper's
	# wrapper forward TERM): no pid-1 immunity, so TERM ends sleep
	want_stop="exited 137"
	[ "${BACKEND:-native}" = native ] || want_stop="exited 143"
	if [ "$out_rc" = 0 ] && [ "$st" = "$want_stop" ]; then
		ok "stop -t 1 ($((t1 - t0))s)"
	else
		not_ok "stop -t 1" "rc=$out_rc out=$out state=$st"
	fi

	run_to out 60 "$PM" start "$DET"
	run_to st 30 "$PM" inspect -f '{{.State.Status}}' "$DET"
	check_eq "restart stopped container" "0/running" "$out_rc/$st"

	run_to out 60 "$PM" kill -s KILL "$DET"
	run_to out2 60 "$PM" wait "$DET"
	check_eq "kill -s KILL + wait" "0/137" "$out_rc/$out2"

	run_to out 60 "$PM" rm "$DET"
	run_to st 30 "$PM" ps -a -q
	check_eq "rm" "0/" "$out_rc/$st"
else
	not_ok "run -d sleep" "rc=$out_rc $out"
fi

# (c2) a detached container's output reaches podman logs (conmon reads
# the pipes the runtime gave the process: on pve and lxc the keeper's)
run_to out 120 "$PM" run -d --name "$DET-logs" "${NETARGS[@]}" "$IMG" sh -c 'echo started; echo to-stderr >&2; exec sleep 1000'
if [ "$out_rc" = 0 ]; then
	st=""
	for _ in $(seq 50); do
		run_to st 30 "$PM" logs "$DET-logs"
		# two pipes: conmon may read them in either order
		st=$(printf '%s\n' "$st" | sort)
		[ "$st" = "started
to-stderr" ] && break
		sleep 0.1
	done
	check_eq "logs (stdout and stderr of a detached container)" "started
to-stderr" "$st"
	run_to out 60 "$PM" rm -f -t 0 "$DET-logs"
	check_eq "rm -f of a running container" "0" "$out_rc"
else
	not_ok "run -d for logs" "rc=$out_rc $out"
fi

# (c3) a process that ignores SIGTERM: stop -t 1 escalates to SIGKILL on
# every backend (on lxc and pve through the keeper or init.lxc: the KILL
# must reach the CT's process, or the stop hangs past its timeout)
run_to out 120 "$PM" run -d --name "$DET-term" "${NETARGS[@]}" "$IMG" sh -c 'trap "" TERM; echo ready; while :; do sleep 0.2; done'
if [ "$out_rc" = 0 ]; then
	for _ in $(seq 50); do
		run_to st 30 "$PM" logs "$DET-term"
		[ "$st" = ready ] && break
		sleep 0.1
	done
	t0=$(date +%s)
	run_to out 60 "$PM" stop -t 1 "$DET-term"
	t1=$(date +%s)
	run_to st 30 "$PM" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$DET-term"
	if [ "$out_rc" = 0 ] && [ "$st" = "exited 137" ] && [ $((t1 - t0)) -ge 1 ] && [ $((t1 - t0)) -le 20 ]; then
		ok "stop -t 1 of a process that ignores SIGTERM: SIGKILL after the timeout ($((t1 - t0))s)"
	else
		not_ok "stop -t 1 of a process that ignores SIGTERM" "rc=$out_rc out=$out state=$st after $((t1 - t0))s"
	fi
	run_to out 60 "$PM" rm -f -t 0 "$DET-term"
else
	not_ok "run -d for stop -t" "rc=$out_rc $out"
fi

# (d) exit code propagation
run_to out 120 "$PM" run --rm "${NETARGS[@]}" "$IMG" sh -c 'exit 3'
check_eq "exit code 3 propagates" "3" "$out_rc"

run_to out 120 "$PM" run --rm "${NETARGS[@]}" "$IMG" /nonexistent
case "$out_rc" in
125 | 126 | 127) ok "missing executable fails ($out_rc)" ;;
*) not_ok "missing executable fails" "rc=$out_rc out=$out" ;;
esac

# (e) a two-container pod: both containers in the infra's network
# namespace (podman makes it as a file under /run/netns). On lxc and pve
# joining a namespace by file cannot be done: one clear line.
POD=pc-pod-$$
run_to out 60 "$PM" pod create --name "$POD" --infra-image "$IMG" --infra-command 'sleep 1000'
run_to out 60 "$PM" run -d --pod "$POD" --name "$POD-a" "$IMG" sleep 1000
case "${BACKEND:-native}" in
native)
	run_to n1 60 "$PM" exec "$POD-a" readlink /proc/self/ns/net
	run_to n2 60 "$PM" run --rm --pod "$POD" "$IMG" readlink /proc/self/ns/net
	host_net=$(readlink /proc/self/ns/net)
	if [ "$out_rc" = 0 ] && [ -n "$n1" ] && [ "$n1" = "$n2" ] && [ "$n1" != "$host_net" ]; then
		ok "pod: two containers share the pod's network namespace"
	else
		not_ok "pod: two containers share the pod's network namespace" "rc=$out_rc a=$n1 b=$n2 host=$host_net"
	fi
	;;
lxc) limit "pod refused in one line" "LXC 5.0 joins a namespace only by a process's /proc/PID/ns" "1" \
	"$(printf '%s' "$out" | grep -c 'LXC 5.0 joins a namespace only by process')" ;;
pve) limit "pod refused in one line" "a CT gets its own network" "1" \
	"$(printf '%s' "$out" | grep -c 'joining network namespace .* is not supported on pve')" ;;
esac
"$PM" pod rm -f -t 0 "$POD" >/dev/null 2>&1 || true

# the engine's own process killed: conmon gone, the container runs on;
# `rm -f` still removes it all (no keeper, CT or fifo left)
KC=pc-conmon-killed-$$
run_to out 120 "$PM" run -d --name "$KC" "${NETARGS[@]}" "$IMG" sleep 1000
cpid=$("$PM" inspect -f '{{.State.ConmonPid}}' "$KC" 2>/dev/null || true)
if [ "$out_rc" = 0 ] && [ -n "$cpid" ] && [ "$cpid" != 0 ]; then
	kill -9 "$cpid"
	sleep 0.5
	kid=$("$PM" inspect -f '{{.Id}}' "$KC")
	run_to out 60 "$PM" rm -f -t 0 "$KC"
	check_eq "kill -9 conmon, then rm -f" "0" "$out_rc"
	# with its conmon gone podman deletes nothing in the runtime (the
	# same with runc): the operator's `delete --force` removes the rest
	run_to out 60 "$REAL_RUNTIME" delete --force "$kid"
	check_eq "then the runtime's delete --force" "0/" "$out_rc/$out"
else
	not_ok "run -d for kill -9 conmon" "rc=$out_rc $out conmon=$cpid"
fi
check_eq "no keeper left" "" "$(keepers_left)"
[ -n "${BACKEND_DIR:-}" ] && [ -d "$BACKEND_DIR/pve/lxc" ] &&
	check_eq "no CT left on the double" "" "$(ls "$BACKEND_DIR/pve/lxc" | grep '\.conf$' || true)"
check_eq "no keeper directory left" "$KEEPER_DIRS_BEFORE" "$(ls /run/proxcage-keeper 2>/dev/null || true)"

# nothing left behind in podman or in the runtime's own state
run_to st 30 "$PM" ps -a -q
check_eq "no podman containers left" "" "$st"
run_to st 30 "$REAL_RUNTIME" list -q
left=$(printf '%s\n' "$st" | grep -E '^[0-9a-f]{64}$' || true)
check_eq "no runtime containers left in default root" "" "$left"

summary
