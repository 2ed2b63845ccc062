// Package lxc runs OCI bundles as plain LXC containers through the LXC
// tools, for hosts that run LXC without Proxmox. translate.go maps the
// spec to an LXC config (pure); this file is the lifecycle.
//
// How OCI states map to LXC: LXC has no created-but-paused init (its
// start runs the container's command at once). So `create` starts the
// container with a stand-in process, proxcage-lxc-init (a static binary
// bind-mounted into the container's /dev), which waits on an exec fifo as
// runc's init does; `start` opens the fifo and the stand-in execs the
// container's process. Namespaces, cgroups, the pid and the stdio binding
// all exist from `create` on, as OCI says.
//
// The container runs under lxc-execute, whose init (init.lxc) is pid 1 in
// the container and runs the process as pid 2: it forwards signals to it
// and reaps orphans, and lxc-execute exits with the process's own exit
// status, which a foreground `run` needs and lxc-start does not give. The
// state's pid is init.lxc's host pid (signals sent to it reach the process).
package lxc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/lxctools"
	"github.com/proxcage/proxcage/internal/proc"
)

// Name is the backend's routing name.
const Name = "lxc"

// Backend is the LXC backend.
type Backend struct {
	log    *slog.Logger
	runner string // the proxcage binary, for OCI hooks run by LXC
	// running are the lxc-execute monitors this process started, for a
	// foreground run's Wait.
	running map[string]*monitor
}

// monitor is an lxc-execute process and the channel closed once it has
// been waited for.
type monitor struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// New returns the backend.
func New(log *slog.Logger) *Backend {
	exe, _ := os.Executable()
	return &Backend{log: log, runner: exe, running: map[string]*monitor{}}
}

// InitHelper is the stand-in process's program name.
const InitHelper = "proxcage-lxc-init"

// initHelper finds proxcage-lxc-init (lxctools.FindHelper).
func (b *Backend) initHelper() (string, error) { return lxctools.FindHelper(b.runner, InitHelper) }

// Name implements backend.Backend.
func (b *Backend) Name() string { return Name }

// private is what the store keeps for an lxc container.
type private struct {
	LXCPath       string       `json:"lxcpath"`
	PidFile       string       `json:"pidFile,omitempty"`
	ConsoleSocket string       `json:"consoleSocket,omitempty"`
	Terminal      bool         `json:"terminal,omitempty"`
	Args          []string     `json:"args"`
	Started       bool         `json:"started,omitempty"`
	PostStart     []specs.Hook `json:"postStart,omitempty"`
	PostStop      []specs.Hook `json:"postStop,omitempty"`
	State         *specs.State `json:"state,omitempty"` // what hooks get on stdin
	// Pid and StartTime name the container's init (init.lxc) for good:
	// state, kill and delete read /proc instead of asking lxc-info.
	Pid       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"`
	// Keeper and KeeperStart name lxc-execute, the container's monitor:
	// the process an engine waits for. It lives exactly as long as the
	// container, holds the stdio the engine gave, and exits with the
	// process's exit status; init.lxc, its child, no engine can reap.
	Keeper      int    `json:"keeper,omitempty"`
	KeeperStart uint64 `json:"keeperStart,omitempty"`
}

func loadPrivate(c *backend.Container) (private, error) {
	var p private
	ok, err := backend.LoadPrivate(c, &p)
	if err == nil && !ok {
		err = errdefs.New(errdefs.ErrNotFound, "container %q has no LXC state (its create did not get that far)", c.ID)
	}
	return p, err
}

func savePrivate(c *backend.Container, p private) error { return backend.SavePrivate(c, p) }

func (b *Backend) tools(p private) lxctools.Tools {
	return lxctools.Tools{LXCPath: p.LXCPath, Timeout: time.Minute}
}

// paths of a container's LXC files under its state directory.
func configPath(p private, id string) string { return filepath.Join(p.LXCPath, id, "config") }
func logPath(p private, id string) string    { return filepath.Join(p.LXCPath, id, "lxc.log") }
func initDir(p private, id string) string    { return filepath.Join(p.LXCPath, id, "init") }

// Create implements backend.Backend: translate and write the config.
func (b *Backend) Create(ctx context.Context, c *backend.Container, opts backend.CreateOpts) error {
	if c.StateDir == "" {
		return errdefs.New(errdefs.ErrInternal, "no state directory for container %q", c.ID)
	}
	if c.Spec.Process == nil || len(c.Spec.Process.Args) == 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "process.args is empty")
	}
	if c.Spec.Process.Terminal && opts.ConsoleSocket == "" && opts.Detach {
		return errdefs.New(errdefs.ErrInvalidArgument, "process.terminal needs --console-socket to receive the pty when detached")
	}
	if opts.PreserveFDs > 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "--preserve-fds is not supported by the lxc backend (LXC refuses to pass descriptors into a container)")
	}
	if !c.Spec.Process.Terminal && opts.ConsoleSocket != "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "--console-socket given but process.terminal is false")
	}
	p := private{
		LXCPath: filepath.Join(c.StateDir, "lxc"), PidFile: opts.PidFile,
		ConsoleSocket: opts.ConsoleSocket, Terminal: c.Spec.Process.Terminal, Args: c.Spec.Process.Args,
	}
	helper, err := b.initHelper()
	if err != nil {
		return err
	}
	set := Settings{
		CgroupV2: cgroupV2(), HookRunner: b.runner, StateDir: filepath.Join(p.LXCPath, c.ID),
		// lxc-execute gets the argv after --, so any argument works
		// (lxc.init.cmd splits at spaces, with no quoting).
		ArgsOnCommandLine: true,
		HostHostname:      hostHostname(),
		SourceIsFile: func(path string) bool {
			fi, err := os.Stat(path)
			return err == nil && !fi.IsDir()
		},
		InitHelper: helper, InitDir: initDir(p, c.ID),
		KeeperInit: keeperInit,
	}
	cfg, err := Translate(c.ID, c.Spec, c.Rootfs, set)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "translate bundle for lxc")
	}
	// Info, not warn: runc's default spec alone gives some (autodev's
	// /dev options, cgroupsPath), and stderr is the engine's error channel.
	for _, w := range cfg.Warnings {
		b.log.Info("lxc: spec field not applied exactly: "+w, "id", c.ID)
	}
	dir := filepath.Join(p.LXCPath, c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "lxc directory")
	}
	if err := os.MkdirAll(initDir(p, c.ID), 0o755); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "init directory")
	}
	fifo := filepath.Join(initDir(p, c.ID), "exec.fifo")
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "exec fifo")
	}
	// LXC runs the stand-in as the process's user (lxc.init.uid): the
	// directory and fifo are that user's, for its ready file and the
	// fifo's open.
	if u := c.Spec.Process; u != nil && (u.User.UID != 0 || u.User.GID != 0) {
		uid, gid := hostID(c.Spec, u.User.UID, true), hostID(c.Spec, u.User.GID, false)
		for _, f := range []string{initDir(p, c.ID), fifo} {
			if err := os.Chown(f, int(uid), int(gid)); err != nil {
				return errdefs.Wrap(errdefs.ErrInternal, err, "init directory")
			}
		}
	}
	if err := writeProcessFile(initDir(p, c.ID), cfg.StandIn); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "translate bundle for lxc")
	}
	conf := cfg.Render()
	if err := os.WriteFile(configPath(p, c.ID), []byte(conf), 0o600); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "write lxc config")
	}
	if len(cfg.Sysctl) > 0 {
		data, _ := json.Marshal(cfg.Sysctl)
		if err := os.WriteFile(filepath.Join(dir, sysctlFile), data, 0o600); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "write sysctls")
		}
	}
	if c.Spec.Hooks != nil {
		data, _ := json.Marshal(c.Spec.Hooks)
		if err := os.WriteFile(filepath.Join(dir, hooksFile), data, 0o600); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "write hooks")
		}
	}
	p.PostStart, p.PostStop = cfg.PostStart, cfg.PostStop
	p.State = &specs.State{Version: specs.Version, ID: c.ID, Status: specs.StateCreating, Bundle: c.Bundle, Annotations: c.Spec.Annotations}
	if err := writeHookState(dir, *p.State); err != nil {
		return err
	}
	if err := savePrivate(c, p); err != nil {
		return err
	}
	pid, err := b.launch(ctx, c, p)
	if err != nil {
		return err
	}
	p.State.Status, p.State.Pid = specs.StateCreated, pid
	p.Pid = pid
	if p.StartTime, err = proc.StartTime(pid); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "read the init's start time")
	}
	p.Keeper = b.running[c.ID].cmd.Process.Pid
	if p.KeeperStart, err = proc.StartTime(p.Keeper); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "read the monitor's start time")
	}
	if err := savePrivate(c, p); err != nil {
		return err
	}
	if p.PidFile != "" {
		// The engine becomes the subreaper of this pid and waits for it.
		if err := atomicfile.WritePidFile(p.PidFile, p.Keeper); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	return nil
}

// cgroupV2 reports a unified-only host (on the v1 hybrid LXC uses v1).
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// launch runs lxc-execute with the stand-in process, detached from us
// (its own session: the monitor outlives proxcage, and a terminal's ^C
// reaches the container, not it), with our stdio or a pty for a terminal,
// and waits until the container's init has a pid.
func (b *Backend) launch(ctx context.Context, c *backend.Container, p private) (int, error) {
	t := b.tools(p)
	args := []string{"-q", "-n", c.ID, "-f", configPath(p, c.ID), "-o", logPath(p, c.ID), "-l", "ERROR", "--", CtrInitHelper, CtrInitDir}
	cmd := t.Command("lxc-execute", append(args, p.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var sendMaster func() error
	if p.Terminal && p.ConsoleSocket != "" {
		send, cleanup, err := lxctools.OnPty(cmd, p.ConsoleSocket)
		if err != nil {
			return 0, errdefs.Wrap(errdefs.ErrInternal, err, "allocate a pty")
		}
		defer cleanup()
		sendMaster = send
	}
	if err := lxctools.CloseExecFrom(3); err != nil {
		return 0, errdefs.Wrap(errdefs.ErrInternal, err, "close inherited descriptors")
	}
	if err := cmd.Start(); err != nil {
		return 0, errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "lxc-execute")
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.running[c.ID] = &monitor{cmd: cmd, exited: exited}
	pid, err := b.waitRunning(ctx, t, c.ID, cmd.Process.Pid, initDir(p, c.ID), exited)
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return 0, b.startError(p, c.ID, err)
	}
	if sendMaster != nil {
		if err := sendMaster(); err != nil {
			_ = lxctools.Signal(pid, unix.SIGKILL)
			return 0, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--console-socket")
		}
	}
	return pid, nil
}

// Start implements backend.Backend: the stand-in process gets the exec
// fifo's byte and execs the container's process.
func (b *Backend) Start(ctx context.Context, c *backend.Container) error {
	p, err := loadPrivate(c)
	if err != nil {
		return err
	}
	if p.Started {
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot start a container that has already been started")
	}
	if live(p) == 0 {
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot start a container that is not created: stopped")
	}
	if err := openFifo(ctx, filepath.Join(initDir(p, c.ID), "exec.fifo")); err != nil {
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "start")
	}
	p.Started = true
	p.State.Status = specs.StateRunning
	if err := savePrivate(c, p); err != nil {
		return err
	}
	for _, h := range p.PostStart {
		// OCI: a failing poststart hook is logged, not fatal.
		if err := runHook(ctx, h, *p.State); err != nil {
			b.log.Warn("poststart hook failed", "id", c.ID, "path", h.Path, "err", err)
		}
	}
	return nil
}

// openFifo opens the exec fifo for reading (the stand-in holds it open for
// writing) and reads its byte. A stand-in that is gone never opens it: the
// wait is bounded.
func openFifo(ctx context.Context, path string) error {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		done <- result{f, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return r.err
		}
		defer r.f.Close()
		buf := make([]byte, 1)
		if n, err := r.f.Read(buf); n != 1 {
			return fmt.Errorf("the container process is gone (%v)", err)
		}
		return nil
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	// Unblock our own open with a writer, so the goroutine ends.
	if w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		w.Close()
	}
	if r := <-done; r.f != nil {
		r.f.Close()
	}
	return errors.New("the container process did not take the start signal within 10s")
}

// waitRunning waits until the stand-in runs (it writes DIR/ready) and
// returns the host pid of the container's init, the monitor's child. It
// polls files, not lxc-info: each lxc-info is a process to start.
func (b *Backend) waitRunning(ctx context.Context, t lxctools.Tools, id string, monitor int, dir string, exited <-chan struct{}) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	delay := 200 * time.Microsecond
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			if kids, err := lxctools.Children(monitor); err == nil && len(kids) == 1 {
				return kids[0], nil
			}
			// No /proc children file (CONFIG_PROC_CHILDREN off): ask LXC.
			if pid, err := t.Pid(ctx, id); err == nil && pid > 0 {
				return pid, nil
			}
		}
		select {
		case <-exited:
			return 0, errExitedEarly
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the container did not start within 30s")
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// live returns the init's pid while it runs, else 0.
func live(p private) int {
	if p.Pid > 0 && proc.Alive(p.Pid, p.StartTime) {
		return p.Pid
	}
	return 0
}

// status is what State reports for a live container: the keeper's pid
// (what the pid file holds, as runc's state and pid file agree), and the
// init's in an annotation. Containers made before keepers report the init.
func status(st string, p private, initPid int) backend.Status {
	pid := initPid
	if p.Keeper > 0 && proc.Alive(p.Keeper, p.KeeperStart) {
		pid = p.Keeper
	}
	return backend.Status{Status: st, Pid: pid, Annotations: map[string]string{backend.AnnotationInitPid: strconv.Itoa(initPid)}}
}

var errExitedEarly = errors.New("the container exited during create")

// startError names why a create failed: the stand-in's own words (the
// process cannot be executed), else what LXC logged.
func (b *Backend) startError(p private, id string, err error) error {
	if msg, rerr := os.ReadFile(filepath.Join(initDir(p, id), "error")); rerr == nil && len(msg) > 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "%s", strings.TrimSpace(string(msg)))
	}
	data, _ := os.ReadFile(logPath(p, id))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var why []string
	for _, l := range lines {
		if i := strings.Index(l, " - "); i >= 0 {
			l = l[i+3:]
		}
		if l != "" {
			why = append(why, l)
		}
	}
	if len(why) > 3 {
		why = why[len(why)-3:]
	}
	if len(why) > 0 {
		return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition, Msg: err.Error() + ": " + strings.Join(why, "; "),
			Hint: "the LXC log is " + logPath(p, id)}
	}
	return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "start")
}

// State implements backend.Backend, from /proc: the init's pid and start
// time recorded at create, and its cgroup's freezer.
func (b *Backend) State(ctx context.Context, c *backend.Container) (backend.Status, error) {
	p, err := loadPrivate(c)
	if err != nil {
		return backend.Status{}, err
	}
	pid := live(p)
	switch {
	case pid == 0:
		return backend.Status{Status: "stopped"}, nil
	case !p.Started:
		return status("created", p, pid), nil
	case lxctools.Frozen(pid):
		return status("paused", p, pid), nil
	}
	return status("running", p, pid), nil
}

// Kill implements backend.Backend: the signal goes to the container's
// init from the host, through a pidfd (init.lxc passes it on; a created
// container's stand-in dies of it like any process), and a SIGKILL, which
// init.lxc cannot pass on, to the process it runs (lxctools.SignalVia).
func (b *Backend) Kill(ctx context.Context, c *backend.Container, sig unix.Signal, all bool) error {
	p, err := loadPrivate(c)
	if err != nil {
		return err
	}
	pid := live(p)
	if pid == 0 {
		return errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
	}
	target := pid
	if sig == unix.SIGKILL {
		// init.lxc killed makes lxc-execute, the keeper, exit 1; its
		// child killed makes init.lxc exit 137 (128+9), as runc's would.
		target = killPayload(pid)
	}
	if err := lxctools.SignalVia(pid, target, sig, all); err != nil {
		if errors.Is(err, lxctools.ErrNotRunning) {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "kill %s", c.ID)
	}
	return nil
}

// keeperInit is Settings.KeeperInit: lxc-execute's one child is the
// container's init.lxc.
func keeperInit(pid int) int {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "lxc-execute" {
		return pid
	}
	if kids, err := lxctools.Children(pid); err == nil && len(kids) == 1 {
		return kids[0]
	}
	return pid
}

// killPayload is where a SIGKILL goes: the process init.lxc runs (its
// only child), else init.lxc itself.
func killPayload(initPid int) int {
	if kids, err := lxctools.Children(initPid); err == nil && len(kids) == 1 {
		return kids[0]
	}
	return initPid
}

// Wait implements backend.Attacher: the exit status of a container this
// process started (a foreground run).
func (b *Backend) Wait(ctx context.Context, c *backend.Container) (int, error) {
	m, ok := b.running[c.ID]
	if !ok {
		return -1, errdefs.New(errdefs.ErrFailedPrecondition, "container %q was not started by this process", c.ID)
	}
	select {
	case <-m.exited:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	ws := m.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// Delete implements backend.Backend: stop (with force), run the poststop
// hooks, remove the LXC directory. Never lxc-destroy: for a dir rootfs it
// deletes the rootfs, which is the bundle's.
func (b *Backend) Delete(ctx context.Context, c *backend.Container, force bool) error {
	p, err := loadPrivate(c)
	if errdefs.Category(err) == errdefs.ErrNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	t := b.tools(p)
	if pid := live(p); pid > 0 {
		if p.Started && !force {
			return backend.NotStopped(c.ID, "running")
		}
		if _, err := t.Run(ctx, "lxc-stop", "-n", c.ID, "-k"); err != nil && live(p) > 0 {
			return errdefs.Wrap(errdefs.ErrInternal, err, "stop")
		}
		// The monitor cleans up once the init is gone.
		for deadline := time.Now().Add(10 * time.Second); live(p) > 0 && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
	}
	// The keeper (lxc-execute) holds the container's command socket a
	// moment after its init is gone: a create of the same id right after
	// this delete (upgrade does it) would find it "already running".
	if p.Keeper > 0 {
		for deadline := time.Now().Add(10 * time.Second); proc.Alive(p.Keeper, p.KeeperStart); {
			if time.Now().After(deadline) {
				_ = unix.Kill(p.Keeper, unix.SIGKILL)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if p.State != nil && p.State.Pid > 0 {
		for _, h := range p.PostStop {
			if err := runHook(ctx, h, *p.State); err != nil {
				b.log.Warn("poststop hook failed", "id", c.ID, "path", h.Path, "err", err)
			}
		}
	}
	if err := os.RemoveAll(p.LXCPath); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "remove lxc directory")
	}
	return nil
}

// Exec implements backend.Backend with lxc-attach.
func (b *Backend) Exec(ctx context.Context, c *backend.Container, proc *specs.Process, opts backend.ExecOpts) (int, error) {
	p, err := loadPrivate(c)
	if err != nil {
		return -1, err
	}
	if live(p) == 0 {
		return -1, backend.ExecStopped(c.ID, "")
	}
	return b.tools(p).Exec(ctx, c.ID, proc, lxctools.AttachOpts{Detach: opts.Detach, ConsoleSocket: opts.ConsoleSocket, PidFile: opts.PidFile})
}

// Pids implements backend.Lister.
func (b *Backend) Pids(ctx context.Context, c *backend.Container) ([]int, error) {
	p, err := loadPrivate(c)
	if err != nil {
		return nil, err
	}
	pid := live(p)
	if pid == 0 {
		return nil, errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
	}
	pids, err := lxctools.CgroupPids(pid)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list processes")
	}
	return pids, nil
}

// Pause implements backend.Pauser with lxc-freeze.
func (b *Backend) Pause(ctx context.Context, c *backend.Container) error {
	return b.freeze(ctx, c, "lxc-freeze")
}

// Resume implements backend.Pauser with lxc-unfreeze.
func (b *Backend) Resume(ctx context.Context, c *backend.Container) error {
	return b.freeze(ctx, c, "lxc-unfreeze")
}

func (b *Backend) freeze(ctx context.Context, c *backend.Container, tool string) error {
	p, err := loadPrivate(c)
	if err != nil {
		return err
	}
	if _, err := b.tools(p).Run(ctx, tool, "-n", c.ID); err != nil {
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "%s", tool)
	}
	return nil
}

func hostHostname() string {
	h, _ := os.Hostname()
	return h
}

// hostID maps a container id to the host's through the spec's user
// namespace maps (none: the same id).
func hostID(s *specs.Spec, id uint32, uid bool) uint32 {
	if s.Linux == nil {
		return id
	}
	maps := s.Linux.GIDMappings
	if uid {
		maps = s.Linux.UIDMappings
	}
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + id - m.ContainerID
		}
	}
	return id
}
