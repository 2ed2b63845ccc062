package lxctools

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestAttachArgs(t *testing.T) {
	p := &specs.Process{Args: []string{"id", "-u"}, Env: []string{"A=1", "B=2"}, Cwd: "/srv", User: specs.User{UID: 1000, GID: 44}}
	want := []string{"-n", "c1", "--clear-env", "-v", "A=1", "-v", "B=2", "-u", "1000", "-g", "44", "--",
		"/bin/sh", "-c", `cd "$0" && exec "$@"`, "/srv", "id", "-u"}
	if got := AttachArgs("c1", p); !slices.Equal(got, want) {
		t.Fatalf("AttachArgs = %q", got)
	}
	p.Cwd = "/"
	if got := AttachArgs("c1", p); got[len(got)-3] != "--" {
		t.Fatalf("cwd / needs no shell: %q", got)
	}
	if got := (Tools{LXCPath: "/x"}).Args("-n", "c"); !slices.Equal(got, []string{"-P", "/x", "-n", "c"}) {
		t.Fatalf("Args with an lxcpath: %q", got)
	}
}

// TestState: lxc-info's answer, a container LXC does not know (STOPPED),
// and a failure that says nothing of the state (an error), read once by
// ParseState whatever runs the tool.
func TestState(t *testing.T) {
	failed := errors.New("exit status 1")
	if st, err := ParseState("RUNNING\n", "", nil); st != "RUNNING" || err != nil {
		t.Fatalf("running: %q %v", st, err)
	}
	if st, err := ParseState("", "103 doesn't exist\n", failed); st != "STOPPED" || err != nil {
		t.Fatalf("unknown container: %q %v", st, err)
	}
	if _, err := ParseState("", "Insufficent privileges to control 103\n", failed); err != failed {
		t.Fatalf("other failure: %v", err)
	}
	if got := StateArgs("103"); !slices.Equal(got, []string{"-n", "103", "-s", "-H"}) {
		t.Fatalf("StateArgs = %q", got)
	}
	bin := filepath.Join(t.TempDir(), "lxc-info")
	script := "#!/bin/sh\ncase \"$2\" in\n1) echo STOPPING ;;\n2) echo \"$2 doesn't exist\" >&2; exit 1 ;;\n*) echo \"no access\" >&2; exit 1 ;;\nesac\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	lt := Tools{Bin: func(string) string { return bin }}
	ctx := context.Background()
	if st, err := lt.State(ctx, "1"); st != "STOPPING" || err != nil {
		t.Fatalf("State of 1: %q %v", st, err)
	}
	if st, err := lt.State(ctx, "2"); st != "STOPPED" || err != nil {
		t.Fatalf("State of 2: %q %v", st, err)
	}
	var le *Error
	if _, err := lt.State(ctx, "3"); !errors.As(err, &le) || le.Stderr != "no access\n" {
		t.Fatalf("State of 3: %v", err)
	}
}

func TestParsePidAndEscape(t *testing.T) {
	if ParsePid(" 1234\n") != 1234 || ParsePid("") != 0 || ParsePid("-1") != 0 {
		t.Fatal("ParsePid")
	}
	if got := EscapeMountPath(`/a b\c`); got != `/a\040b\134c` {
		t.Fatalf("EscapeMountPath = %q", got)
	}
}

func TestSignalAndWaitStatus(t *testing.T) {
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := Signal(cmd.Process.Pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := WaitStatus(cmd); st != 128+15 {
		t.Fatalf("status %d, want 143", st)
	}
	if err := Signal(cmd.Process.Pid, unix.SIGTERM); err != ErrNotRunning {
		t.Fatalf("signal to a reaped pid: %v", err)
	}
	pids, err := CgroupPids(os.Getpid())
	if err != nil || !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("CgroupPids(self) = %v %v", pids, err)
	}
}

// With all, SignalVia signals every process of the init's cgroup but the
// init, the target last, and spares the init; SignalInit reaches the init
// too, and a gone init is ErrNotRunning. The processes run in a cgroup of
// their own, checked to hold exactly them before any signal is sent.
func TestSignalViaAll(t *testing.T) {
	procs := ownCgroup(t)
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Skipf("cannot move a process into a cgroup of its own: %v", err)
		}
		return cmd
	}
	init, target, other := start(), start(), start()
	want := []int{init.Process.Pid, target.Process.Pid, other.Process.Pid}
	slices.Sort(want)
	got, err := CgroupPids(init.Process.Pid)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("CgroupPids = %v, %v; want %v (no signal sent)", got, err, want)
	}
	if err := SignalVia(init.Process.Pid, target.Process.Pid, unix.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	if st := WaitStatus(target); st != 128+15 {
		t.Errorf("target: status %d, want 143", st)
	}
	if st := WaitStatus(other); st != 128+15 {
		t.Errorf("other process: status %d, want 143", st)
	}
	var ws unix.WaitStatus
	if pid, err := unix.Wait4(init.Process.Pid, &ws, unix.WNOHANG, nil); pid != 0 || err != nil {
		t.Fatalf("the init was not spared: wait4 = %d, %v (%v)", pid, err, ws)
	}
	if err := SignalInit(init.Process.Pid, unix.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	if st := WaitStatus(init); st != 128+15 {
		t.Errorf("init: status %d, want 143", st)
	}
	if err := SignalInit(init.Process.Pid, unix.SIGTERM, true); err != ErrNotRunning {
		t.Errorf("a gone init: %v, want ErrNotRunning", err)
	}
}

// ownCgroup makes a cgroup for the test (the pids controller's on cgroup
// v1, the unified hierarchy's on v2) and returns its cgroup.procs; it is
// removed when the test ends. It needs root.
func ownCgroup(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a cgroup")
	}
	root := "/sys/fs/cgroup/pids"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		root = "/sys/fs/cgroup"
	}
	dir := filepath.Join(root, "proxcage-lxctools-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	return filepath.Join(dir, "cgroup.procs")
}
