// Package native runs containers with Linux namespaces and cgroups through
// runc's libcontainer, so it behaves like runc on every host runc supports.
//
// libcontainer keeps its own state in STATEDIR/native/ID; this package adds
// nothing to the container record.
package native

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opencontainers/cgroups"
	// Registers the device-rule manager; without it libcontainer refuses
	// any config with device rules (runc imports it in main).
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runc/libcontainer/system"
	"github.com/opencontainers/runc/libcontainer/utils"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// Name is the backend's routing name.
const Name = "native"

// Backend is the libcontainer backend. One value serves one proxcage
// invocation: it remembers the processes this invocation started so that
// `run` and `exec` in the foreground can wait for them.
type Backend struct {
	log      *slog.Logger
	logLevel string // libcontainer init's logrus level
	fg       map[string]*foreground
}

// foreground is a process this invocation waits for.
type foreground struct {
	ct      *libcontainer.Container
	proc    *libcontainer.Process
	stdio   *stdio
	signals chan os.Signal
}

// New returns the native backend. debug raises libcontainer init's log level.
func New(log *slog.Logger, debug bool) *Backend {
	lvl := "4" // logrus info
	if debug {
		lvl = "5"
	}
	return &Backend{log: log, logLevel: lvl, fg: map[string]*foreground{}}
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return Name }

func libctRoot(c *backend.Container) string { return filepath.Join(c.StateDir, Name) }

func (b *Backend) load(c *backend.Container) (*libcontainer.Container, error) {
	ct, err := libcontainer.Load(libctRoot(c), c.ID)
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, "container %q does not exist", c.ID)
		}
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "load container")
	}
	return ct, nil
}

// Create implements backend.Backend.
func (b *Backend) Create(ctx context.Context, c *backend.Container, opts backend.CreateOpts) (retErr error) {
	if opts.SystemdCgroup {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
				Msg:  "--systemd-cgroup: systemd is not running on this host",
				Hint: "drop --systemd-cgroup (engines: set the cgroup manager to cgroupfs)"}
		}
	}
	if err := checkTerminal(c.Spec.Process.Terminal, opts.Stdio); err != nil {
		return err
	}
	s, err := specFor(b.log.With("id", c.ID), c)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "copy config.json")
	}
	rootless := os.Geteuid() != 0
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       c.ID,
		UseSystemdCgroup: opts.SystemdCgroup,
		NoPivotRoot:      opts.NoPivot,
		NoNewKeyring:     opts.NoNewKeyring,
		Spec:             s,
		RootlessEUID:     rootless,
		RootlessCgroups:  rootless,
	})
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "config.json")
	}
	bundleLabel(cfg.Labels, c.Bundle)
	proc, err := newProcess(s.Process)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "config.json")
	}
	proc.Init = true
	proc.LogLevel = b.logLevel
	asLimit := takeAddressSpaceLimit(proc)

	var fg *foreground
	if !opts.Detach {
		// Like runc run: become the subreaper before the init exists, and
		// catch SIGCHLD from now on so no exit is missed.
		if err := system.SetSubreaper(1); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "set subreaper")
		}
		fg = &foreground{proc: proc, signals: notifySignals()}
	}

	ct, err := libcontainer.Create(libctRoot(c), c.ID, cfg)
	if err != nil {
		return classifyCreate(err)
	}
	defer func() {
		if retErr != nil {
			_ = ct.Destroy()
		}
	}()
	sio, err := setupStdio(proc, c.Spec.Process.Terminal, opts.Stdio)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			sio.close()
		}
	}()
	if err := ct.Start(proc); err != nil {
		return classifyStart(err)
	}
	if err := applyAddressSpaceLimit(proc, asLimit); err != nil {
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "process.rlimits")
	}
	if err := sio.started(); err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		return errdefs.Wrap(errdefs.ErrInternal, err, "console")
	}
	if opts.PidFile != "" {
		pid, _ := proc.Pid()
		if err := atomicfile.WritePidFile(opts.PidFile, pid); err != nil {
			_ = proc.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
			return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	if fg != nil {
		fg.ct, fg.stdio = ct, sio
		b.fg[c.ID] = fg
	}
	return nil
}

func checkTerminal(terminal bool, s backend.Stdio) error {
	if s.Detach && terminal && s.ConsoleSocket == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "process.terminal is true but no --console-socket was given to receive the pty")
	}
	if (!s.Detach || !terminal) && s.ConsoleSocket != "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "--console-socket needs process.terminal=true and a detached create/run/exec")
	}
	return nil
}

// setupStdio wires the process's streams: a pty sent to the console socket,
// a pty copied to our own terminal, or our stdio inherited (an engine passes
// its pipes as our 0/1/2, exactly as with runc --detach).
func setupStdio(p *libcontainer.Process, terminal bool, s backend.Stdio) (*stdio, error) {
	if s.PreserveFDs > 0 {
		for i := 3; i < 3+s.PreserveFDs; i++ {
			if _, err := unix.FcntlInt(uintptr(i), unix.F_GETFD, 0); err != nil {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "--preserve-fds=%d: fd %d is not open", s.PreserveFDs, i)
			}
			p.ExtraFiles = append(p.ExtraFiles, os.NewFile(uintptr(i), "PreserveFD:"+strconv.Itoa(i)))
		}
	}
	if !terminal {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
		return &stdio{}, nil
	}
	var (
		sock *os.File
		sio  *stdio
		err  error
	)
	if s.Detach {
		sock, sio, err = dialConsoleSocket(s.ConsoleSocket)
	} else {
		sock, sio, err = foregroundConsole()
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "terminal")
	}
	p.ConsoleSocket = sock
	return sio, nil
}

func classifyCreate(err error) error {
	switch {
	case errors.Is(err, libcontainer.ErrExist):
		return errdefs.Wrap(errdefs.ErrAlreadyExists, err, "create")
	case errors.Is(err, os.ErrPermission):
		return errdefs.Wrap(errdefs.ErrPermissionDenied, err, "create")
	}
	return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "create")
}

func classifyStart(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return errdefs.Wrap(errdefs.ErrPermissionDenied, err, "start init")
	}
	// The init reports errors as text through its pipe, so match the text.
	if msg := err.Error(); strings.Contains(msg, "executable file not found") || strings.Contains(msg, `exec: "`) && strings.Contains(msg, "no such file or directory") {
		return errdefs.WithHint(errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "start init"),
			"check that process.args[0] exists in the rootfs; a bare name is looked up in PATH from process.env")
	}
	// Almost every init failure is a property of the bundle (a missing
	// binary, a bad mount, an unknown capability).
	return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "start init")
}

// Start implements backend.Backend.
func (b *Backend) Start(ctx context.Context, c *backend.Container) error {
	ct, err := b.load(c)
	if err != nil {
		return err
	}
	st, err := ct.Status()
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "status")
	}
	switch st {
	case libcontainer.Created:
		if err := ct.Exec(); err != nil {
			return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "start")
		}
		return nil
	case libcontainer.Stopped:
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot start a container that has stopped")
	default:
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot start an already running container")
	}
}

// State implements backend.Backend.
func (b *Backend) State(ctx context.Context, c *backend.Container) (backend.Status, error) {
	ct, err := b.load(c)
	if err != nil {
		return backend.Status{}, err
	}
	st, err := ct.State()
	if err != nil {
		return backend.Status{}, errdefs.Wrap(errdefs.ErrInternal, err, "state")
	}
	status, err := ct.Status()
	if err != nil {
		return backend.Status{}, errdefs.Wrap(errdefs.ErrInternal, err, "status")
	}
	pid := st.InitProcessPid
	if status == libcontainer.Stopped {
		pid = 0
	}
	return backend.Status{Status: status.String(), Pid: pid}, nil
}

// Kill implements backend.Backend.
func (b *Backend) Kill(ctx context.Context, c *backend.Container, sig unix.Signal, all bool) error {
	ct, err := b.load(c)
	if err != nil {
		return err
	}
	if all {
		return b.killAll(ct, sig)
	}
	if err := ct.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			// runc's wording; containerd and podman match on it.
			return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition, Msg: "container not running",
				Hint: "it has exited; remove it with `proxcage delete " + c.ID + "`"}
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "signal")
	}
	return nil
}

// killAll signals every process of the container's cgroup, init last.
func (b *Backend) killAll(ct *libcontainer.Container, sig unix.Signal) error {
	st, err := ct.Status()
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "status")
	}
	if st == libcontainer.Stopped {
		return nil // runc: --all on a stopped container is not an error
	}
	if sig == unix.SIGKILL {
		// libcontainer kills the whole cgroup or pid namespace for KILL.
		if err := ct.Signal(sig); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
			return errdefs.Wrap(errdefs.ErrInternal, err, "signal")
		}
		return nil
	}
	pids, err := ct.Processes()
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "list processes")
	}
	for _, p := range pids {
		if err := unix.Kill(p, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return errdefs.Wrap(errdefs.ErrInternal, err, "signal pid %d", p)
		}
	}
	return nil
}

// Delete implements backend.Backend. It follows runc delete: a created
// container is killed, a running one needs force.
func (b *Backend) Delete(ctx context.Context, c *backend.Container, force bool) error {
	var (
		ct  *libcontainer.Container
		err error
	)
	if fg, ok := b.fg[c.ID]; ok {
		ct = fg.ct // `run` in the foreground: no need to reload the state
	} else {
		ct, err = libcontainer.Load(libctRoot(c), c.ID)
	}
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil // a create that died early left no libcontainer state
	}
	if err != nil {
		if force {
			return nil // unreadable state: the runtime removes the directory
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "load container")
	}
	st, err := ct.Status()
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "status")
	}
	switch {
	case st == libcontainer.Stopped:
		return wrapDestroy(ct.Destroy())
	case force || st == libcontainer.Created:
		return killAndDestroy(ctx, ct)
	default:
		return backend.NotStopped(c.ID, st.String())
	}
}

func wrapDestroy(err error) error {
	return errdefs.Wrap(errdefs.ErrInternal, err, "destroy")
}

// killAndDestroy SIGKILLs the init and waits (up to 10 s, as runc) for it
// to die before destroying.
func killAndDestroy(ctx context.Context, ct *libcontainer.Container) error {
	_ = ct.Signal(unix.SIGKILL)
	for range 1000 {
		if err := ct.Signal(unix.Signal(0)); err != nil {
			return wrapDestroy(ct.Destroy())
		}
		select {
		case <-ctx.Done():
			return errdefs.Wrap(errdefs.ErrUnavailable, ctx.Err(), "wait for init to die")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return errdefs.New(errdefs.ErrUnavailable, "container init still running 10 s after SIGKILL")
}

// Wait implements backend.Attacher for `run` in the foreground: it forwards
// signals to the init, resizes the pty, reaps, and returns the exit status.
func (b *Backend) Wait(ctx context.Context, c *backend.Container) (int, error) {
	fg, ok := b.fg[c.ID]
	if !ok {
		return -1, errdefs.New(errdefs.ErrInternal, "container %s was not created in the foreground", c.ID)
	}
	defer fg.stdio.close()
	return forward(fg.proc, fg.stdio, fg.signals)
}

// notifySignals starts catching signals for forwarding. SIGCHLD is caught
// at once so no exit is missed; the other signals are registered in the
// background because signal.Notify for all of them costs a syscall per
// signal, time better spent starting the container (runc does the same).
func notifySignals() chan os.Signal {
	ch := make(chan os.Signal, 2048)
	signal.Notify(ch, unix.SIGCHLD)
	go signal.Notify(ch)
	return ch
}

// forward is runc's signal loop: SIGCHLD reaps, SIGWINCH resizes, the rest
// goes to the process.
func forward(p *libcontainer.Process, s *stdio, sigs chan os.Signal) (int, error) {
	defer signal.Stop(sigs)
	pid, err := p.Pid()
	if err != nil {
		return -1, err
	}
	s.resize()
	for sig := range sigs {
		switch sig {
		case unix.SIGWINCH:
			s.resize()
		case unix.SIGCHLD:
			for {
				var ws unix.WaitStatus
				got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if got <= 0 || err != nil {
					break
				}
				if got == pid {
					_, _ = p.Wait() // flush libcontainer's own bookkeeping
					return utils.ExitStatus(ws), nil
				}
			}
		case unix.SIGURG:
			// Go runtime preemption; never forward.
		default:
			_ = p.Signal(sig)
		}
	}
	return -1, nil
}

// Exec implements backend.Backend.
func (b *Backend) Exec(ctx context.Context, c *backend.Container, p *specs.Process, opts backend.ExecOpts) (int, error) {
	ct, err := b.load(c)
	if err != nil {
		return -1, err
	}
	st, err := ct.Status()
	if err != nil {
		return -1, errdefs.Wrap(errdefs.ErrInternal, err, "status")
	}
	switch st {
	case libcontainer.Stopped:
		return -1, backend.ExecStopped(c.ID, "")
	case libcontainer.Paused:
		return -1, errdefs.New(errdefs.ErrFailedPrecondition, "cannot exec in a paused container")
	}
	if err := checkTerminal(p.Terminal, opts.Stdio); err != nil {
		return -1, err
	}
	proc, err := newProcess(p)
	if err != nil {
		return -1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "process")
	}
	proc.LogLevel = b.logLevel
	var sigs chan os.Signal
	if !opts.Detach {
		sigs = notifySignals()
	}
	sio, err := setupStdio(proc, p.Terminal, opts.Stdio)
	if err != nil {
		return -1, err
	}
	if err := ct.Run(proc); err != nil {
		sio.close()
		return -1, errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "exec")
	}
	if err := sio.started(); err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		sio.close()
		return -1, errdefs.Wrap(errdefs.ErrInternal, err, "console")
	}
	pid, _ := proc.Pid()
	if opts.PidFile != "" {
		if err := atomicfile.WritePidFile(opts.PidFile, pid); err != nil {
			_ = proc.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
			sio.close()
			return -1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	if opts.Detach {
		return pid, nil
	}
	defer sio.close()
	return forward(proc, sio, sigs)
}

// Pause implements backend.Pauser.
func (b *Backend) Pause(ctx context.Context, c *backend.Container) error {
	ct, err := b.load(c)
	if err != nil {
		return err
	}
	if err := ct.Pause(); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
		}
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "pause")
	}
	return nil
}

// Resume implements backend.Pauser.
func (b *Backend) Resume(ctx context.Context, c *backend.Container) error {
	ct, err := b.load(c)
	if err != nil {
		return err
	}
	if err := ct.Resume(); err != nil {
		if errors.Is(err, libcontainer.ErrNotPaused) {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container not paused")
		}
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "resume")
	}
	return nil
}

// Pids implements backend.Lister.
func (b *Backend) Pids(ctx context.Context, c *backend.Container) ([]int, error) {
	ct, err := b.load(c)
	if err != nil {
		return nil, err
	}
	pids, err := ct.Processes()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list processes")
	}
	return pids, nil
}

// Update implements backend.Updater, with runc update's semantics.
func (b *Backend) Update(ctx context.Context, c *backend.Container, r *specs.LinuxResources) error {
	ct, err := b.load(c)
	if err != nil {
		return err
	}
	cfg := ct.Config()
	res := cfg.Cgroups.Resources
	if r.Memory != nil {
		if r.Memory.Limit != nil {
			res.Memory = *r.Memory.Limit
			if *r.Memory.Limit == -1 && r.Memory.Swap == nil {
				res.MemorySwap = 0
			}
		}
		if r.Memory.Reservation != nil {
			res.MemoryReservation = *r.Memory.Reservation
		}
		if r.Memory.Swap != nil {
			res.MemorySwap = *r.Memory.Swap
		}
	}
	if r.CPU != nil {
		if r.CPU.Shares != nil {
			res.CpuShares = *r.CPU.Shares
			res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*r.CPU.Shares)
		}
		if r.CPU.Quota != nil {
			res.CpuQuota = *r.CPU.Quota
		}
		if r.CPU.Period != nil {
			res.CpuPeriod = *r.CPU.Period
		}
		if r.CPU.RealtimePeriod != nil {
			res.CpuRtPeriod = *r.CPU.RealtimePeriod
		}
		if r.CPU.RealtimeRuntime != nil {
			res.CpuRtRuntime = *r.CPU.RealtimeRuntime
		}
		if r.CPU.Cpus != "" {
			res.CpusetCpus = r.CPU.Cpus
		}
		if r.CPU.Mems != "" {
			res.CpusetMems = r.CPU.Mems
		}
	}
	if r.Pids != nil {
		res.PidsLimit = r.Pids.Limit
	}
	if r.BlockIO != nil && r.BlockIO.Weight != nil {
		res.BlkioWeight = *r.BlockIO.Weight
	}
	if r.Unified != nil {
		res.Unified = r.Unified
	}
	cfg.Cgroups.SkipDevices = true // like runc: update never rewrites device rules
	if err := ct.Set(cfg); err != nil {
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "update")
	}
	return nil
}
