package main

import (
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// keeperFile mirrors internal/backend/pve's (keeper.go): what the wrapper
// runs.
type keeperFile struct {
	Args     []string `json:"args"`
	Cwd      string   `json:"cwd"`
	Stdin    bool     `json:"stdin,omitempty"`
	Terminal bool     `json:"terminal,omitempty"`
}

// keeperMain is the CT's init under a pve keeper:
//
//	DIR/init --keeper DIR
//
// DIR is a host directory the pve backend bind-mounts into the CT. It runs
// DIR/process.json's process as its child with the fifos DIR/stdout,
// DIR/stderr (and DIR/stdin) as its stdio, which the keeper on the host
// relays to the engine's; passes every signal on to it (as docker's
// --init does: the process is pid 2, without pid 1's immunity); reaps
// orphans; and writes the process's exit status (128+N for signal N) to
// DIR/exit before it exits with the same status, which stops the CT.
func keeperMain(dir string) {
	var kf keeperFile
	data, err := os.ReadFile(filepath.Join(dir, "process.json"))
	if err == nil {
		err = json.Unmarshal(data, &kf)
	}
	if err == nil && len(kf.Args) == 0 {
		err = os.ErrInvalid
	}
	if err != nil {
		keeperFail(dir, 2, "process.json: "+err.Error())
	}
	stdin := openFifo(filepath.Join(dir, "stdin"), unix.O_RDONLY, kf.Stdin || kf.Terminal, 0)
	stdout := openFifo(filepath.Join(dir, "stdout"), unix.O_WRONLY, true, 1)
	stderr := stdout
	if !kf.Terminal {
		stderr = openFifo(filepath.Join(dir, "stderr"), unix.O_WRONLY, true, 2)
	}
	// From here on, failures go to the engine's stderr.
	_ = unix.Dup2(stderr, 2)
	writeFile(filepath.Join(dir, "started"), "1\n")
	cwd := kf.Cwd
	if cwd == "" {
		cwd = "/"
	}
	_ = os.MkdirAll(cwd, 0o755) // as runc does for a cwd the rootfs lacks
	if err := os.Chdir(cwd); err != nil {
		keeperFail(dir, 127, "cwd "+cwd+": "+err.Error())
	}
	path, err := lookPath(kf.Args[0])
	if err != nil {
		keeperFail(dir, 127, err.Error())
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{uintptr(stdin), uintptr(stdout), uintptr(stderr)}}
	var drained <-chan struct{}
	if kf.Terminal {
		// The process gets a terminal of the CT's own devpts as its
		// controlling one (so `tty` names /dev/pts/N in the CT); its
		// master is relayed to the fifos, which the host's keeper relays
		// to the engine's pty.
		master, slave, err := ctPty()
		if err != nil {
			keeperFail(dir, 127, "terminal: "+err.Error())
		}
		in, out := os.NewFile(uintptr(stdin), "stdin"), os.NewFile(uintptr(stdout), "stdout")
		done := make(chan struct{})
		go func() { _, _ = io.Copy(out, master); close(done) }()
		go func() { _, _ = io.Copy(master, in) }()
		drained = done
		s := int(slave.Fd())
		attr.Files = []uintptr{uintptr(s), uintptr(s), uintptr(s)}
		attr.Sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	child, err := syscall.ForkExec(path, kf.Args, attr)
	if err != nil {
		keeperFail(dir, 127, "exec "+kf.Args[0]+": "+err.Error())
	}
	if kf.Terminal {
		// Ours closed, the master reads EIO once the process and its
		// children have closed theirs.
		_ = syscall.Close(int(attr.Files[0]))
	} else {
		for _, fd := range []int{stdin, stdout} {
			if fd > 2 {
				_ = unix.Close(fd)
			}
		}
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if err != nil || pid <= 0 {
					break
				}
				if pid == child {
					code := ws.ExitStatus()
					if ws.Signaled() {
						code = 128 + int(ws.Signal())
					}
					if drained != nil {
						// What the terminal still holds goes out first.
						select {
						case <-drained:
						case <-time.After(2 * time.Second):
						}
					}
					keeperExit(dir, code)
				}
			}
		case syscall.SIGURG: // the Go runtime's own preemption signal
		default:
			_ = syscall.Kill(child, s)
		}
	}
}

// ctPty opens a pty of the CT's devpts: its master, and its slave
// without making it our controlling terminal.
func ctPty() (*os.File, *os.File, error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return nil, nil, err
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		unix.Close(m)
		return nil, nil, err
	}
	return os.NewFile(uintptr(m), "/dev/ptmx"), slave, nil
}

// openFifo opens DIR's fifo for the child's fd: without blocking, so that
// a keeper that is gone (an engine killed before start) leaves the CT its
// own stdio (fd own) instead of hanging its start; /dev/null for an
// absent stdin.
func openFifo(path string, mode int, use bool, own int) int {
	if !use {
		if fd, err := unix.Open("/dev/null", mode|unix.O_CLOEXEC, 0); err == nil {
			return fd
		}
		return own
	}
	fd, err := unix.Open(path, mode|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return own
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return fd
}

// keeperExit records the status for the host's keeper and exits with it.
func keeperExit(dir string, code int) {
	writeFile(filepath.Join(dir, "exit"), strconv.Itoa(code)+"\n")
	os.Exit(code)
}

// writeFile writes into one of the files the host made for us (we may
// create none there).
func writeFile(path, s string) {
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		_, _ = f.WriteString(s)
		_ = f.Close()
	}
}

func keeperFail(dir string, code int, msg string) {
	_, _ = os.Stderr.WriteString("proxcage-lxc-init: " + msg + "\n")
	keeperExit(dir, code)
}
