#!/usr/bin/env bash
# End-to-end test: a private containerd (+ containerd-shim-runc-v2) driving a
# runc-compatible RUNTIME through `ctr run --runc-binary RUNTIME`.
#
#   test/clients/containerd.sh RUNTIME
#
# containerd's root/state/sockets live in $SCRATCH (default: fresh mktemp
# dir), removed at exit. Outside the scratch dir the shim necessarily uses
# /run/containerd/s (shim sockets) and /run/containerd/runc/NS (the
# runtime's --root); both are removed at exit if they did not exist before.
# Env: SCRATCH, KEEP_SCRATCH=1, ARGV_LOG=FILE (log runtime argv), VERBOSE=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

command -v containerd >/dev/null || { echo "containerd not installed" >&2; exit 2; }
command -v ctr >/dev/null || { echo "ctr not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }

init_scratch
backend_setup
resolve_runtime "${1:-}"
KEEPER_DIRS_BEFORE=$(ls /run/proxcage-keeper 2>/dev/null || true)
KEEPER_PIDS_BEFORE=$(keeper_pids)

NS=proxcage-test
HOST_PATHS_RM="/run/containerd /opt/containerd"
HOST_PATHS_RMDIR=""
CG_NAMES="$NS"
IMG=localhost/busybox:latest
C=$SCRATCH/containerd
SOCK=$C/containerd.sock
CTRD_PID=""
CTR() { ctr -a "$SOCK" -n "$NS" "$@"; }

# ctr as a script, so timeout(1)/script(1) can run it
write_ctr_wrapper() {
	CTRW="$C/ctr"
	cat >"$CTRW" <<EOF
#!/bin/sh
exec ctr -a '$SOCK' -n '$NS' "\$@"
EOF
	chmod +x "$CTRW"
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
		local t c
		for t in $(timeout 10 "$CTRW" task ls -q 2>/dev/null); do
			timeout 10 "$CTRW" task kill -s SIGKILL "$t" >/dev/null 2>&1
		done
		sleep 0.3
		for t in $(timeout 10 "$CTRW" task ls -q 2>/dev/null); do
			timeout 10 "$CTRW" task rm -f "$t" >/dev/null 2>&1
		done
		for c in $(timeout 10 "$CTRW" containers ls -q 2>/dev/null); do
			timeout 10 "$CTRW" containers rm "$c" >/dev/null 2>&1
		done
		timeout 20 "$CTRW" images rm "$IMG" >/dev/null 2>&1
		kill -TERM "$CTRD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CTRD_PID" 2>/dev/null
		wait "$CTRD_PID" 2>/dev/null
	fi
	# shims started for our containerd (their argv carries our socket path)
	local p
	for p in $(pgrep -f containerd-shim 2>/dev/null); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$SOCK"; then
			kill -9 "$p" 2>/dev/null
		fi
	done
	unmount_under "$SCRATCH"
	unmount_under /run/containerd/io.containerd.runtime.v2.task/"$NS"
	if [ -d "/run/containerd/runc/$NS" ]; then rm -rf "/run/containerd/runc/$NS"; fi
	host_restore
	remove_scratch
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

host_snapshot
mkdir -p "$C/root" "$C/state" "$C/opt"
write_ctr_wrapper
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF

log "runtime: $REAL_RUNTIME  scratch: $SCRATCH"
mkdir -p "$C/bin"
ln -s "$RUNTIME" "$C/bin/runc"
PATH="$C/bin:$PATH" containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do
	[ -S "$SOCK" ] && CTR version >/dev/null 2>&1 && break
	kill -0 "$CTRD_PID" 2>/dev/null || break
	sleep 0.1
done
if ! CTR version >/dev/null 2>&1; then
	not_ok "containerd started" "$(tail -5 "$C/containerd.log")"
	summary
	exit 1
fi

make_busybox_oci_archive "$SCRATCH/busybox-oci.tar" "$IMG"
run_to out 120 "$CTRW" images import "$SCRATCH/busybox-oci.tar"
run_to imgs 30 "$CTRW" images ls -q
if [ "$out_rc" != 0 ] || [ "$imgs" != "$IMG" ]; then
	not_ok "import busybox image" "rc=$out_rc $out images=[$imgs]"
	summary
	exit 1
fi

RB=(--runc-binary "$RUNTIME")
IMG_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# run --rm, output
run_to out 120 "$CTRW" run --rm "${RB[@]}" "$IMG" c1 echo hi
check_eq "run --rm echo" "0/hi" "$out_rc/$out"

run_split out 120 "$CTRW" run --rm "${RB[@]}" "$IMG" c1b sh -c 'echo out; echo err >&2'
check_eq "run --rm stdout+stderr (separate streams)" "0/out/err" "$out_rc/$out/$out_err"

run_to out 120 "$CTRW" run --rm "${RB[@]}" --env FOO=bar --cwd /tmp "$IMG" c1c sh -c 'echo $FOO $(pwd)'
check_eq "run --rm env and cwd" "0/bar /tmp" "$out_rc/$out"

# ctr never closes the container's stdin at EOF (no CloseIO), so `cat` would
# hang: read a single line instead.
out=$(printf 'piped\n' | timeout --kill-after=10 120 "$CTRW" run --rm "${RB[@]}" "$IMG" c1d head -n1 2>&1) && rc=0 || rc=$?
check_eq "run --rm stdin" "0/piped" "$rc/$out"

# tty: ctr -t needs its own stdin to be a terminal: with stdin at
# /dev/null, ctr 1.6 panics in console.Current() ("provided file is not a
# console") before it calls any runtime, so no runtime can pass that case
# and it is not run. script(1) (bsdutils) gives ctr a terminal.
if command -v script >/dev/null; then
	run_to out 120 script -qec "$CTRW run --rm -t --runc-binary $RUNTIME $IMG c1f sh -c 'tty; test -t 0 && test -t 1 && echo isatty'" /dev/null
	if [ "${BACKEND:-native}" = lxc ]; then
		limit "run --rm -t under script(1)" "the pty is the host's, not from the container's devpts" "not a tty
isatty" "$out"
	else
		check_eq "run --rm -t under script(1)" "/dev/pts/0
isatty" "$out"
	fi
else
	not_ok "run --rm -t under script(1)" "script(1) is missing (apt-get install bsdutils)"
fi

# detached container, exec, kill, rm
run_to out 120 "$CTRW" run -d "${RB[@]}" "$IMG" c2 sleep 1000
if [ "$out_rc" = 0 ]; then
	ok "run -d sleep"
	run_to st 30 "$CTRW" task ls
	st=$(printf '%s\n' "$st" | awk '$1 == "c2" { print $3 }')
	check_eq "task ls RUNNING" "RUNNING" "$st"

	run_to out 60 "$CTRW" task exec --exec-id e1 c2 echo hi
	check_eq "task exec echo" "0/hi" "$out_rc/$out"

	run_to out 60 "$CTRW" task exec --exec-id e2 c2 sh -c 'exit 5'
	check_eq "task exec exit code" "5" "$out_rc"

	run_to out 60 "$CTRW" task exec --exec-id e3 --cwd /tmp c2 sh -c 'echo $PATH $(pwd)'
	check_eq "task exec cwd and image env" "0/$IMG_PATH /tmp" "$out_rc/$out"

	run_to out 60 "$CTRW" task exec --exec-id e4 c2 ps -o pid,args
	if [ "${BACKEND:-native}" = lxc ]; then
		check_contains "task exec sees pid 2 sleep under init.lxc" "2 sleep 1000" "$out"
	elif [ "${BACKEND:-native}" = pve ]; then
		check_eq "task exec sees the keeper's wrapper as pid 1 and sleep under it" "1 /dev/.proxcage-keeper/init/sleep 1000" \
			"$(printf '%s\n' "$out" | awk '$1 == 1 {print $1, $2}')/$(printf '%s\n' "$out" | awk '$2 == "sleep" {print $2, $3}')"
	else
		check_contains "task exec sees pid 1 sleep" "1 sleep 1000" "$out"
	fi

	if command -v script >/dev/null; then
		run_to out 60 script -qec "$CTRW task exec -t --exec-id e5 c2 tty" /dev/null
		case "$out" in
		/dev/pts/*) ok "task exec -t under script(1)" ;;
		*) not_ok "task exec -t under script(1)" "$out" ;;
		esac
	fi

	run_to out 30 "$CTRW" task ps c2
	n=$(printf '%s\n' "$out" | grep -cE '^[0-9]+' || true)
	if [ "${BACKEND:-native}" != native ]; then
		check_eq "task ps (the init and sleep)" "0/2" "$out_rc/$n"
	else
		check_eq "task ps (1 process)" "0/1" "$out_rc/$n"
	fi

	run_to out 30 "$CTRW" task pause c2
	run_to st 30 "$CTRW" task ls
	st=$(printf '%s\n' "$st" | awk '$1 == "c2" { print $3 }')
	if [ "${BACKEND:-native}" = pve ]; then
		limit "task pause refused" "the pve backend has no pause" "1/RUNNING/1" \
			"$out_rc/$st/$(printf '%s' "$out" | grep -c 'the pve backend does not support pause')"
	else
		check_eq "task pause" "0/PAUSED" "$out_rc/$st"
		run_to out 30 "$CTRW" task resume c2
		run_to st 30 "$CTRW" task ls
		st=$(printf '%s\n' "$st" | awk '$1 == "c2" { print $3 }')
		check_eq "task resume" "0/RUNNING" "$out_rc/$st"
	fi

	run_to out 30 "$CTRW" task kill -s SIGKILL c2
	st=""
	for _ in $(seq 100); do
		run_to st 30 "$CTRW" task ls
		st=$(printf '%s\n' "$st" | awk '$1 == "c2" { print $3 }')
		[ "$st" = STOPPED ] && break
		sleep 0.1
	done
	check_eq "task kill -s SIGKILL -> STOPPED" "0/STOPPED" "$out_rc/$st"

	run_to out 30 "$CTRW" task rm c2
	check_eq "task rm" "0" "$out_rc"
	run_to out 30 "$CTRW" containers rm c2
	check_eq "containers rm" "0/" "$out_rc/$out"
else
	not_ok "run -d sleep" "rc=$out_rc $out"
fi

# container create + task start -d (separate create and start).
# `ctr containers create` has no --runc-binary: containerd runs with a PATH
# whose first `runc` is RUNTIME, so the shim's default binary is RUNTIME too.
run_to out 60 "$CTRW" containers create "$IMG" c3 sleep 1000
run_to out2 60 "$CTRW" task start -d c3
run_to st 30 "$CTRW" task ls
st=$(printf '%s\n' "$st" | awk '$1 == "c3" { print $3 }')
check_eq "containers create + task start -d" "0/0/RUNNING" "$out_rc/$out2_rc/$st"
run_to out 30 "$CTRW" task kill -s SIGTERM c3
sleep 0.3
run_to out 30 "$CTRW" task rm -f c3
run_to out2 30 "$CTRW" containers rm c3
check_eq "task rm -f running task" "0/0" "$out_rc/$out2_rc"

# exit code propagation
run_to out 120 "$CTRW" run --rm "${RB[@]}" "$IMG" c4 sh -c 'exit 3'
check_eq "exit code 3 propagates" "3" "$out_rc"

run_to out 120 "$CTRW" run --rm "${RB[@]}" "$IMG" c5 /nonexistent
if [ "$out_rc" != 0 ]; then ok "missing executable fails ($out_rc)"; else not_ok "missing executable fails" "$out"; fi
timeout 10 "$CTRW" containers rm c5 >/dev/null 2>&1 || true

# the engine's own process killed: the shim of a running task gets
# SIGKILL; the task's process runs on. The runtime's delete --force (what
# the shim would have run) removes it all: no keeper, CT or fifo left.
run_to out 60 "$CTRW" run -d "${RB[@]}" "$IMG" c6 sleep 1000
# (an if, not `&& echo` in a pipeline: under pipefail the loop's last
# non-matching grep would end the script)
spid=
for p in $(pgrep -f containerd-shim 2>/dev/null || true); do
	if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-id c6 "; then
		spid=$p
		break
	fi
done
if [ "$out_rc" = 0 ] && [ -n "$spid" ]; then
	kill -9 "$spid"
	sleep 0.5
	run_to out 60 "$REAL_RUNTIME" --root "/run/containerd/runc/$NS" delete --force c6
	check_eq "kill -9 the shim, then the runtime's delete --force" "0/" "$out_rc/$out"
	timeout 30 "$CTRW" task rm -f c6 >/dev/null 2>&1 || true
	timeout 30 "$CTRW" containers rm c6 >/dev/null 2>&1 || true
else
	not_ok "run -d for kill -9 of the shim" "rc=$out_rc $out shim=$spid"
fi
check_eq "no keeper left" "" "$(keepers_left)"
[ -n "${BACKEND_DIR:-}" ] && [ -d "$BACKEND_DIR/pve/lxc" ] &&
	check_eq "no CT left on the double" "" "$(ls "$BACKEND_DIR/pve/lxc" | grep '\.conf$' || true)"
check_eq "no keeper directory left" "$KEEPER_DIRS_BEFORE" "$(ls /run/proxcage-keeper 2>/dev/null || true)"

# nothing left behind
run_to out 30 "$CTRW" task ls -q
run_to out2 30 "$CTRW" containers ls -q
check_eq "no tasks/containers left" "/" "$out/$out2"
run_to out 30 "$REAL_RUNTIME" --root "/run/containerd/runc/$NS" list -q
check_eq "no runtime containers left" "" "$(printf '%s' "$out" | grep -v '^$' || true)"

summary
