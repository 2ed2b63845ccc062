package lxctools

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// ErrNotRunning: the process to signal is gone.
var ErrNotRunning = errors.New("container not running")

// SignalInit sends sig to a container's init pid through a pidfd (Signal)
// and, with all, first to every other process of its cgroup, as `kill
// --all` asks. It fails with ErrNotRunning when the init is gone; an error
// naming what failed otherwise, for the caller to categorise.
func SignalInit(pid int, sig unix.Signal, all bool) error { return SignalVia(pid, pid, sig, all) }

// SignalVia is SignalInit for a container whose init passes on what
// happens to the process it runs (init.lxc exits 128+9 when its child is
// killed): sig goes to target, the init itself or that process, through a
// pidfd and, with all, first to every process of the init's cgroup but
// the init and target. An init spared that way exits with its process.
func SignalVia(initPid, target int, sig unix.Signal, all bool) error {
	if all {
		pids, err := CgroupPids(initPid)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return ErrNotRunning
			}
			return fmt.Errorf("list the container's processes: %w", err)
		}
		for _, q := range pids {
			if q != initPid && q != target {
				_ = unix.Kill(q, sig)
			}
		}
	}
	if err := Signal(target, sig); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return err
		}
		return fmt.Errorf("signal %d: %w", target, err)
	}
	return nil
}

// Signal sends sig to pid through a pidfd, so a recycled pid is never hit.
func Signal(pid int, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrNotRunning
		}
		// Old kernel: fall back to kill(2).
		if err := unix.Kill(pid, sig); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return ErrNotRunning
			}
			return err
		}
		return nil
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrNotRunning
		}
		return err
	}
	return nil
}

// CgroupPids lists the processes in pid's cgroup (the container's), on
// cgroup v1 (the pids controller) or v2.
func CgroupPids(pid int) ([]int, error) {
	cgs, err := cgroupsOf(pid)
	if err != nil {
		return nil, err
	}
	var dir string
	for _, cg := range cgs {
		switch {
		case cg.unified():
			for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
				if _, err := os.Stat(filepath.Join(root, cg.path, "cgroup.procs")); err == nil && dir == "" {
					dir = filepath.Join(root, cg.path)
				}
			}
		case cg.has("pids"):
			dir = filepath.Join("/sys/fs/cgroup/pids", cg.path)
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("no cgroup for pid %d", pid)
	}
	return readPids(filepath.Join(dir, "cgroup.procs"))
}

// cgroup is a line of /proc/PID/cgroup: hierarchy id, controllers, path.
type cgroup struct{ id, controllers, path string }

// unified: the line of the cgroup v2 hierarchy.
func (c cgroup) unified() bool { return c.id == "0" && c.controllers == "" }

// has: a v1 hierarchy with controller ctrl.
func (c cgroup) has(ctrl string) bool { return strings.Contains(","+c.controllers+",", ","+ctrl+",") }

// cgroupsOf reads pid's cgroups (/proc/PID/cgroup).
func cgroupsOf(pid int) ([]cgroup, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var out []cgroup
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			out = append(out, cgroup{parts[0], parts[1], parts[2]})
		}
	}
	return out, nil
}

// readPids reads a list of pids separated by blanks (cgroup.procs, a
// task's children file).
func readPids(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// WaitStatus waits for cmd and returns its exit status the way a shell
// reports it (128+signal when killed).
func WaitStatus(cmd *exec.Cmd) int {
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}

// OpenPty returns a new pty's master and slave.
func OpenPty() (master console.Console, slave *os.File, err error) {
	master, name, err := console.NewPty()
	if err != nil {
		return nil, nil, err
	}
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// SendFd sends f's descriptor over the AF_UNIX socket at path (SCM_RIGHTS),
// as runc does with a pty master for --console-socket.
func SendFd(path string, f console.Console) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("console socket %s: %w", path, err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	rights := unix.UnixRights(int(f.Fd()))
	_, _, err = uc.WriteMsgUnix([]byte(f.Name()), rights, nil)
	return err
}

// OnPty makes cmd run on a new pty as its controlling terminal and returns
// a function that hands the master to the console socket, and a cleanup.
func OnPty(cmd *exec.Cmd, consoleSocket string) (send func() error, cleanup func(), err error) {
	master, slave, err := OpenPty()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	return func() error { return SendFd(consoleSocket, master) },
		func() { master.Close(); slave.Close() }, nil
}

// CloseExecFrom marks every descriptor from minFd up close-on-exec, as
// runc does before it execs: Go closes only its own descriptors on exec,
// and LXC's tools refuse to start with an inherited one ("Aborting attach
// to prevent leaking file descriptors into container").
func CloseExecFrom(minFd int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < minFd {
			continue
		}
		// The directory's own descriptor may be gone by now: ignore EBADF.
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	return nil
}

// Children lists the children of pid (its main thread's).
func Children(pid int) ([]int, error) {
	return readPids(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
}

// Frozen reports whether pid's cgroup is frozen (cgroup v1 freezer, or
// v2 cgroup.events).
func Frozen(pid int) bool {
	cgs, err := cgroupsOf(pid)
	if err != nil {
		return false
	}
	for _, cg := range cgs {
		if cg.has("freezer") {
			st, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", cg.path, "freezer.state"))
			return strings.TrimSpace(string(st)) != "THAWED" && len(st) > 0
		}
		if cg.unified() {
			for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
				if ev, err := os.ReadFile(filepath.Join(root, cg.path, "cgroup.events")); err == nil {
					if strings.Contains(string(ev), "frozen 1") {
						return true
					}
				}
			}
		}
	}
	return false
}
