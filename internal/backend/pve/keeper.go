package pve

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/lxctools"
	"github.com/proxcage/proxcage/internal/proc"
)

// A keeper is what an engine (conmon, containerd's shim) gets for a CT:
// a local process whose pid is in the pid file from `create` on, which
// the engine, as its subreaper, waits for. A CT's init is the child of
// LXC's monitor, not of the engine, so without it no engine sees the
// workload end, nor its exit status, nor its output.
//
// create (with --pid-file, on the CT's node) makes a directory on the
// node, keeperRoot/KEY, that LXC bind-mounts into the CT at CtrKeeperDir
// (an lxc.mount.entry line of the CT's config, written as the env is,
// env.go), holding the static wrapper proxcage-lxc-init, the process to
// run, fifos for its stdio and a file for its exit status. The CT's
// entrypoint is the wrapper (Settings.Keeper): it runs the process as its
// child with the fifos as stdio, passes signals on, and records the exit
// status. The keeper, `proxcage keeper DIR` in its own session with the
// stdio the engine gave create, relays the fifos to that stdio, and once
// the process and the CT have ended exits with the recorded status
// (137 when the CT was stopped without one: SIGKILL of its init).

// keeperRoot is where keeper directories live on the node: under /run, so
// a reboot clears them with the keepers; 0711, so that a CT's mapped root
// reaches its own directory (LXC does the bind mount as that uid).
const keeperRoot = "/run/proxcage-keeper"

// CtrKeeperDir is where the CT sees its keeper directory: in the CT's
// /dev (a tmpfs LXC makes), so nothing is written to its rootfs.
const CtrKeeperDir = "/dev/.proxcage-keeper"

// keeperFile is DIR/process.json, as cmd/proxcage-lxc-init reads it.
type keeperFile struct {
	Args     []string `json:"args"`
	Cwd      string   `json:"cwd"`
	Stdin    bool     `json:"stdin,omitempty"`
	Terminal bool     `json:"terminal,omitempty"`
}

// keeperConfig is DIR/keeper.json, what the keeper process needs.
type keeperConfig struct {
	VMID    int    `json:"vmid"`
	LxcInfo string `json:"lxcInfo"`
}

// keeperDir is the keeper directory of the container whose state
// directory is stateDir: one per container, whatever its VMID becomes.
func keeperDir(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return filepath.Join(keeperRoot, hex.EncodeToString(sum[:8]))
}

// keeperMountLine is the CT config's raw line that mounts the node's
// hostDir at ctrDir in the CT.
func keeperMountLine(hostDir, ctrDir string) string {
	return lxctools.EscapeMountPath(hostDir) + " " + strings.TrimPrefix(ctrDir, "/") + " none bind,create=dir 0 0"
}

// stdinGiven reports whether our stdin is something to relay: not
// /dev/null (what engines give a container without -i) and open at all.
func stdinGiven() bool {
	var st, null unix.Stat_t
	if err := unix.Fstat(0, &st); err != nil {
		return false
	}
	if err := unix.Stat("/dev/null", &null); err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null.Rdev {
		return false
	}
	return true
}

// prepareKeeper makes dir for kp: the wrapper (a copy of helper), the
// process, the fifos and the exit file, owned by the host uid the CT's
// process runs as (hostBase+uid: 100000+ for an unprivileged CT).
func prepareKeeper(dir, helper string, kp *KeeperProcess, terminal bool, hostBase uint32, cfg keeperConfig) (err error) {
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.MkdirAll(keeperRoot, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(keeperRoot, 0o711); err != nil {
		return err
	}
	_ = os.RemoveAll(dir) // a crashed create's
	if err := os.Mkdir(dir, 0o711); err != nil {
		return err
	}
	if err := atomicfile.CopyNew(helper, filepath.Join(dir, "init"), 0o755); err != nil {
		return fmt.Errorf("copy the wrapper: %w", err)
	}
	kf := keeperFile{Args: kp.Args, Cwd: kp.Cwd, Stdin: stdinGiven(), Terminal: terminal}
	for name, v := range map[string]any{"process.json": kf, "keeper.json": cfg} {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, name), data, atomicfile.Options{Perm: 0o644}); err != nil {
			return err
		}
	}
	uid, gid := int(hostBase+kp.UID), int(hostBase+kp.GID)
	// A terminal is one stream each way: the CT's pty, on stdout and stdin.
	fifos := []string{"stdout", "stdin"}
	if !terminal {
		fifos = []string{"stdout", "stderr"}
		if kf.Stdin {
			fifos = append(fifos, "stdin")
		}
	}
	for _, f := range fifos {
		p := filepath.Join(dir, f)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	// What the wrapper writes: that it started, and the exit status.
	for _, f := range []string{"started", "exit"} {
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// spawnKeeper starts `proxcage keeper DIR` in its own session with our
// stdio (the engine's) and returns it and its start time. proxcage exits
// right after: the engine, subreaper of its children, inherits it.
//
// With a console socket the keeper's stdio is instead a new pty's slave
// (raw: the CT's own pty does the terminal's work) and its master goes to
// the socket, as runc hands the engine a container's console.
func spawnKeeper(dir, consoleSocket string) (*exec.Cmd, uint64, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command(exe, "keeper", dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var master console.Console
	if consoleSocket != "" {
		m, slave, err := lxctools.OpenPty()
		if err != nil {
			return nil, 0, fmt.Errorf("allocate a pty: %w", err)
		}
		defer m.Close()
		defer slave.Close()
		if sc, err := console.ConsoleFromFile(slave); err == nil {
			_ = sc.SetRaw()
		}
		master = m
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	if master != nil {
		if err := lxctools.SendFd(consoleSocket, master); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, 0, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--console-socket")
		}
	}
	start, err := proc.StartTime(cmd.Process.Pid)
	if err != nil {
		return nil, 0, err
	}
	// Not waited for unless this process runs the container in the
	// foreground (Backend.Wait): otherwise proxcage exits and the engine,
	// the subreaper, inherits it.
	return cmd, start, nil
}

// keeperAlive reports whether the recorded keeper still runs.
func keeperAlive(p private) bool {
	return p.Keeper > 0 && proc.Alive(p.Keeper, p.KeeperStart)
}

// endKeeper removes a container's keeper: once its CT is gone the keeper
// ends by itself (its fifos reach EOF); one that waits for a start that
// never comes is signalled. Then its directory goes.
func endKeeper(p private, dir string, sig unix.Signal) {
	for deadline := time.Now().Add(2 * time.Second); p.Started && keeperAlive(p) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if keeperAlive(p) {
		_ = lxctools.Signal(p.Keeper, sig)
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// Stdio is the keeper's: what the engine gave create.
type Stdio struct{ In, Out, Err *os.File }

// RunKeeper is the keeper process (`proxcage keeper DIR`): it relays the
// fifos to its stdio until the process ends, waits for the CT to stop,
// and returns the exit status to exit with.
func RunKeeper(ctx context.Context, dir string, stdio Stdio) (int, error) {
	var cfg keeperConfig
	data, err := os.ReadFile(filepath.Join(dir, "keeper.json"))
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		return 1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "keeper directory %s", dir)
	}
	// Our stdout may be a pipe whose reader (the engine) is gone: keep
	// draining the fifos anyway, so the CT's process never blocks.
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP)
	if stdin := filepath.Join(dir, "stdin"); fileExists(stdin) {
		// Held open for reading and writing, so the wrapper's reader
		// never sees EOF before our stdin ends.
		if f, err := os.OpenFile(stdin, os.O_RDWR, 0); err == nil {
			go func() {
				_, _ = io.Copy(f, stdio.In)
				// Closing a fifo's last descriptor drops what it holds:
				// first wait for the wrapper to open it (at start).
				for i := 0; i < 6000 && !wrapperStarted(dir); i++ {
					time.Sleep(10 * time.Millisecond)
				}
				f.Close()
			}()
		}
	}
	done := make(chan struct{}, 2)
	relays := 0
	for _, s := range []struct {
		name string
		to   *os.File
	}{{"stdout", stdio.Out}, {"stderr", stdio.Err}} {
		if !fileExists(filepath.Join(dir, s.name)) {
			continue // a terminal has no stderr of its own
		}
		relays++
		go func() {
			defer func() { done <- struct{}{} }()
			// Blocks until the wrapper opens it for writing: at start.
			f, err := os.Open(filepath.Join(dir, s.name))
			if err != nil {
				return
			}
			defer f.Close()
			relay(s.to, f)
		}()
	}
	for range relays {
		<-done
	}
	code := 137 // the CT stopped with no status recorded: its init was killed
	if data, err := os.ReadFile(filepath.Join(dir, "exit")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			code = n
		}
	}
	// Engines ask `state` as soon as we exit: it must say stopped.
	waitStopped(ctx, cfg)
	return code, nil
}

// wrapperStarted reports whether the wrapper has opened its fifos: it
// writes DIR/started then.
func wrapperStarted(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "started"))
	return err == nil && fi.Size() > 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// relay copies src to dst; once dst fails (its reader is gone) it keeps
// reading src to EOF.
func relay(dst io.Writer, src io.Reader) {
	if _, err := io.Copy(dst, src); err != nil {
		_, _ = io.Copy(io.Discard, src)
	}
}

// waitStopped waits, at most 30 s, while LXC reports the CT running or
// stopping. A failed lxc-info ends the wait too: a CT LXC does not know
// is stopped, and the keeper must not hang on a tool that cannot answer.
func waitStopped(ctx context.Context, cfg keeperConfig) {
	lt := lxctools.Tools{Bin: func(tool string) string { return cmp.Or(cfg.LxcInfo, tool) }}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		st, err := lt.State(ctx, strconv.Itoa(cfg.VMID))
		if err != nil || st != "RUNNING" && st != "STOPPING" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
