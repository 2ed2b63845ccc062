// Package pve runs OCI bundles as first-class Proxmox VE containers (CTs),
// so backups, HA, migration and the PVE UI apply. This file is the
// lifecycle over the local pct transport; translate.go maps the bundle to
// pct options, errors.go classifies PVE's failures, vmid.go finds VMIDs.
//
// OCI "created" is modelled as a CT that exists but was never started: PVE
// has no created-but-paused init. The pid in state is the host pid of the
// CT's init (lxc-info) while it runs, 0 otherwise.
package pve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/vztmpl"
)

// Name is the backend's routing name.
const Name = "pve"

// Backend is the Proxmox VE backend over pct.
type Backend struct {
	cfg   config.PVE
	set   Settings
	vmids *vmidRange
	tools tools
	log   *slog.Logger
	node  *Node // cached per invocation
}

// New checks the [pve] config and returns the backend.
func New(cfg config.PVE, log *slog.Logger) (*Backend, error) {
	if cfg.Transport != "pct" {
		return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  fmt.Sprintf("[pve] transport %q is not available", cfg.Transport),
			Hint: `use transport = "pct" on a PVE node (the REST API transport is not built yet)`}
	}
	timeout, err := time.ParseDuration(cfg.Timeout)
	if err != nil || timeout <= 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "[pve] timeout %q: want a duration such as \"2m\"", cfg.Timeout)
	}
	vr, err := parseVMIDRange(cfg.VMIDRange)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "config")
	}
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	b := &Backend{
		cfg: cfg, vmids: vr, log: log,
		set: Settings{RootfsStorage: cfg.RootfsStorage, Bridge: cfg.Bridge, AllowPrivileged: cfg.AllowPrivileged, Features: cfg.Features},
		tools: tools{
			pct: or(cfg.Tools.Pct, "pct"), pvesh: or(cfg.Tools.Pvesh, "pvesh"), pvesm: or(cfg.Tools.Pvesm, "pvesm"),
			pveversion: or(cfg.Tools.Pveversion, "pveversion"), lxcInfo: or(cfg.Tools.LxcInfo, "lxc-info"),
			lxcAttach: or(cfg.Tools.LxcAttach, "lxc-attach"), timeout: timeout, log: log,
		},
	}
	return b, nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return Name }

// private is what the store keeps for a pve container.
type private struct {
	VMID     int    `json:"vmid"`
	Template string `json:"template,omitempty"` // volid
	PidFile  string `json:"pidFile,omitempty"`  // written at start: PVE has no init before start
	Started  bool   `json:"started,omitempty"`
	// Killed: a terminating signal reached the container while it was
	// "created" (no init runs yet); it is stopped without ever running.
	Killed bool `json:"killed,omitempty"`
}

func loadPrivate(c *backend.Container) (private, error) {
	var p private
	if len(c.Private) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(c.Private, &p); err != nil {
		return p, errdefs.Wrap(errdefs.ErrInternal, err, "read pve state")
	}
	return p, nil
}

func (b *Backend) savePrivate(c *backend.Container, p private) error {
	data, _ := json.Marshal(p)
	c.Private = data
	if c.Persist != nil {
		return c.Persist()
	}
	return nil
}

var versionRE = regexp.MustCompile(`pve-manager/(\d+)\.(\d+)`)

// nodeInfo reads the node's PVE version once per invocation.
func (b *Backend) nodeInfo(ctx context.Context) (Node, error) {
	if b.node != nil {
		return *b.node, nil
	}
	out, err := b.tools.run(ctx, 0, b.tools.pveversion)
	if err != nil {
		return Node{}, err
	}
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return Node{}, errdefs.New(errdefs.ErrInternal, "pveversion printed %q: no pve-manager version", strings.TrimSpace(out))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	b.node = &Node{Version: Version{major, minor}}
	return *b.node, nil
}

// templateDir asks pvesm where the template storage keeps vztmpl files.
func (b *Backend) templateDir(ctx context.Context) (string, error) {
	out, err := b.tools.run(ctx, 0, b.tools.pvesm, "path", b.cfg.TemplateStorage+":vztmpl/proxcage-probe.tar.zst")
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(strings.TrimSpace(out))
	// A dir storage creates template/cache/ on first download; do the same.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "template directory of storage %s", b.cfg.TemplateStorage)
	}
	return dir, nil
}

const createAttempts = 10

// Create implements backend.Backend: template, VMID, pct create. A failure
// after pct create destroys the CT again.
func (b *Backend) Create(ctx context.Context, c *backend.Container, opts backend.CreateOpts) error {
	if opts.ConsoleSocket != "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "--console-socket is not supported by the pve backend (use `pct console VMID`)")
	}
	node, err := b.nodeInfo(ctx)
	if err != nil {
		return err
	}
	plan, err := Translate(c.ID, c.Spec, b.set, node)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "translate bundle for pve")
	}
	dir, err := b.templateDir(ctx)
	if err != nil {
		return err
	}
	path, digest, cached, err := vztmpl.Ensure(ctx, c.Rootfs, dir)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "build template from %s", c.Rootfs)
	}
	b.log.Debug("template", "path", path, "digest", digest, "cached", cached)
	volid := b.cfg.TemplateStorage + ":vztmpl/" + filepath.Base(path)
	p := private{Template: volid, PidFile: opts.PidFile}

	avoid := map[int]bool{}
	requested, hasRequest := c.Spec.Annotations[AnnotationVMID]
	for attempt := 1; ; attempt++ {
		var vmid int
		if hasRequest {
			n, ours, err := b.requestedVMID(ctx, c.ID, requested)
			if err != nil {
				return err
			}
			if ours {
				// A create of this same id got this far before: start over.
				if err := b.destroy(ctx, n); err != nil {
					return err
				}
			}
			vmid = n
		} else if vmid, err = b.nextFreeVMID(ctx, avoid); err != nil {
			return err
		}
		p.VMID = vmid
		// Record the VMID before pct create: a crash from here on still
		// leaves the record that `delete --force` needs.
		if err := b.savePrivate(c, p); err != nil {
			return err
		}
		args := append([]string{"create", strconv.Itoa(vmid), volid}, pctArgs(plan)...)
		err = retryTransient(ctx, b.log, 4, func() error {
			_, err := b.tools.run(ctx, vmid, b.tools.pct, args...)
			return err
		})
		if err == nil {
			return nil
		}
		if errdefs.Category(err) == errdefs.ErrAlreadyExists && !hasRequest && attempt < createAttempts {
			// Another creator took this VMID between nextid and create.
			b.log.Debug("VMID taken, picking another", "vmid", vmid)
			avoid[vmid] = true
			continue
		}
		// pct create may have left a half-made CT: remove it if it is ours.
		b.cleanupFailedCreate(ctx, c.ID, vmid)
		p.VMID = 0
		_ = b.savePrivate(c, p)
		return err
	}
}

// cleanupFailedCreate destroys the CT at vmid if it carries our id.
func (b *Backend) cleanupFailedCreate(ctx context.Context, id string, vmid int) {
	ctx = context.WithoutCancel(ctx)
	if owner, err := b.ociIDOf(ctx, vmid); err == nil && owner == id {
		if err := b.destroy(ctx, vmid); err != nil {
			b.log.Warn("rollback: destroy half-created CT failed", "vmid", vmid, "err", err)
		}
	}
}

// ociIDOf reads the OCI id from a CT's description ("" when not ours).
func (b *Backend) ociIDOf(ctx context.Context, vmid int) (string, error) {
	out, err := b.tools.run(ctx, vmid, b.tools.pct, "config", strconv.Itoa(vmid))
	if err != nil {
		return "", err
	}
	cfg := parseConfig(out)
	desc := cfg["description"]
	if d, err := urlUnescape(desc); err == nil {
		desc = d
	}
	id, _ := OCIIDFromDescription(desc)
	return id, nil
}

// parseConfig reads `pct config` output: "key: value" lines (raw lxc.*
// lines are kept by their full key).
func parseConfig(out string) map[string]string {
	cfg := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			cfg[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return cfg
}

// urlUnescape undoes PVE's %XX escaping of the description in pct config.
func urlUnescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return s, err
			}
			b.WriteByte(byte(n))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

func (b *Backend) vmidOf(c *backend.Container) (private, error) {
	p, err := loadPrivate(c)
	if err != nil {
		return p, err
	}
	if p.VMID == 0 {
		return p, errdefs.New(errdefs.ErrNotFound, "container %q has no CT (its create did not get that far)", c.ID)
	}
	return p, nil
}

// Start implements backend.Backend: pct start, then the init's host pid
// goes to the pid file given at create.
func (b *Backend) Start(ctx context.Context, c *backend.Container) error {
	p, err := b.vmidOf(c)
	if err != nil {
		return err
	}
	if p.Started || p.Killed {
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot start a container that has already been started or killed (CT %d)", p.VMID)
	}
	err = retryTransient(ctx, b.log, 4, func() error {
		_, err := b.tools.run(ctx, p.VMID, b.tools.pct, "start", strconv.Itoa(p.VMID))
		return err
	})
	if err != nil {
		return err
	}
	p.Started = true
	if err := b.savePrivate(c, p); err != nil {
		return err
	}
	if p.PidFile != "" {
		pid, err := b.hostPid(ctx, p.VMID)
		if err != nil {
			return err
		}
		if err := backend.WritePidFile(p.PidFile, pid); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	return nil
}

// hostPid is the host pid of the CT's init, from lxc-info.
func (b *Backend) hostPid(ctx context.Context, vmid int) (int, error) {
	out, err := b.tools.run(ctx, vmid, b.tools.lxcInfo, "-n", strconv.Itoa(vmid), "-p", "-H")
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return 0, errdefs.New(errdefs.ErrFailedPrecondition, "lxc-info printed no pid for CT %d (%q): not running?", vmid, strings.TrimSpace(out))
	}
	return pid, nil
}

// status returns "running" or "stopped" from pct status.
func (b *Backend) status(ctx context.Context, vmid int) (string, error) {
	out, err := b.tools.run(ctx, vmid, b.tools.pct, "status", strconv.Itoa(vmid))
	if err != nil {
		return "", err
	}
	st := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "status:"))
	if st != "running" && st != "stopped" {
		return "", errdefs.New(errdefs.ErrInternal, "pct status %d printed %q", vmid, strings.TrimSpace(out))
	}
	return st, nil
}

// State implements backend.Backend.
func (b *Backend) State(ctx context.Context, c *backend.Container) (backend.Status, error) {
	p, err := b.vmidOf(c)
	if err != nil {
		return backend.Status{}, err
	}
	ann := map[string]string{"org.proxcage.pve.vmid": strconv.Itoa(p.VMID)}
	st, err := b.status(ctx, p.VMID)
	if err != nil {
		return backend.Status{}, err
	}
	switch {
	case st == "running":
		pid, err := b.hostPid(ctx, p.VMID)
		if err != nil {
			// Stopped between the two calls.
			return backend.Status{Status: "stopped", Annotations: ann}, nil
		}
		return backend.Status{Status: "running", Pid: pid, Annotations: ann}, nil
	case !p.Started && !p.Killed:
		return backend.Status{Status: "created", Annotations: ann}, nil
	default:
		return backend.Status{Status: "stopped", Annotations: ann}, nil
	}
}

// Kill implements backend.Backend: the signal goes to the CT's init from
// the host (a pidfd pins the process, so a recycled pid is never hit).
func (b *Backend) Kill(ctx context.Context, c *backend.Container, sig unix.Signal, all bool) error {
	p, err := b.vmidOf(c)
	if err != nil {
		return err
	}
	st, err := b.status(ctx, p.VMID)
	if err != nil {
		return err
	}
	if st != "running" && !p.Started && !p.Killed {
		// OCI lets kill reach a created container. A PVE CT has no init
		// before pct start, so a signal that would end one ends the
		// container: it becomes stopped without running.
		if terminates(sig) {
			p.Killed = true
			return b.savePrivate(c, p)
		}
		return nil
	}
	if st != "running" {
		return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition, Msg: "container not running",
			Hint: fmt.Sprintf("CT %d is stopped; remove it with `proxcage delete %s`", p.VMID, c.ID)}
	}
	pid, err := b.hostPid(ctx, p.VMID)
	if err != nil {
		return err
	}
	if all {
		pids, err := cgroupPids(pid)
		if err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "list CT %d processes", p.VMID)
		}
		for _, q := range pids {
			if q != pid {
				_ = unix.Kill(q, sig)
			}
		}
	}
	return signalPid(pid, sig)
}

func signalPid(pid int, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
		}
		// Old kernel: fall back to kill(2).
		return errdefs.Wrap(errdefs.ErrInternal, unix.Kill(pid, sig), "signal %d", pid)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "signal %d", pid)
	}
	return nil
}

// cgroupPids lists the processes in pid's cgroup (the CT's), v1 or v2.
func cgroupPids(pid int) ([]int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var dir string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
				if _, err := os.Stat(filepath.Join(root, parts[2], "cgroup.procs")); err == nil && dir == "" {
					dir = filepath.Join(root, parts[2])
				}
			}
		case strings.Contains(","+parts[1]+",", ",pids,"):
			dir = filepath.Join("/sys/fs/cgroup/pids", parts[2])
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("no cgroup for pid %d", pid)
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(procs)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// Pids implements backend.Lister.
func (b *Backend) Pids(ctx context.Context, c *backend.Container) ([]int, error) {
	p, err := b.vmidOf(c)
	if err != nil {
		return nil, err
	}
	pid, err := b.hostPid(ctx, p.VMID)
	if err != nil {
		return nil, err
	}
	pids, err := cgroupPids(pid)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list CT %d processes", p.VMID)
	}
	return pids, nil
}

// Delete implements backend.Backend: pct destroy --purge; with force a
// running CT is stopped first. A CT that is already gone is not an error.
func (b *Backend) Delete(ctx context.Context, c *backend.Container, force bool) error {
	p, err := loadPrivate(c)
	if err != nil {
		return err
	}
	if p.VMID == 0 {
		if force {
			// The record may predate the VMID (crash in create): find the
			// CT by its tag and description.
			return b.destroyByID(ctx, c.ID)
		}
		return nil
	}
	st, err := b.status(ctx, p.VMID)
	if errdefs.Category(err) == errdefs.ErrNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if st == "running" && !force {
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot delete container %s that is not stopped: running (CT %d)", c.ID, p.VMID)
	}
	return b.destroy(ctx, p.VMID)
}

// destroy stops (if needed) and purges a CT.
func (b *Backend) destroy(ctx context.Context, vmid int) error {
	id := strconv.Itoa(vmid)
	if st, err := b.status(ctx, vmid); err == nil && st == "running" {
		if err := retryTransient(ctx, b.log, 4, func() error {
			_, err := b.tools.run(ctx, vmid, b.tools.pct, "stop", id)
			return err
		}); err != nil && errdefs.Category(err) != errdefs.ErrFailedPrecondition {
			return err
		}
	}
	destroy := func() error {
		return retryTransient(ctx, b.log, 4, func() error {
			_, err := b.tools.run(ctx, vmid, b.tools.pct, "destroy", id, "--purge", "1", "--force", "1")
			return err
		})
	}
	err := destroy()
	if err != nil && strings.Contains(err.Error(), "CT is locked (create)") {
		// The lock outlived a create that was killed (we hold this
		// container's lock, so no proxcage create of it still runs, and
		// the retries above waited for a pct create to finish).
		b.log.Info("clearing the create lock of a CT whose create died", "vmid", vmid)
		if _, uerr := b.tools.run(ctx, vmid, b.tools.pct, "unlock", id); uerr == nil {
			err = destroy()
		}
	}
	if errdefs.Category(err) == errdefs.ErrNotFound {
		return nil
	}
	return err
}

// destroyByID removes every CT tagged proxcage whose description holds id.
func (b *Backend) destroyByID(ctx context.Context, id string) error {
	_, err := b.ReclaimByID(ctx, id)
	return err
}

// ReclaimByID implements backend.Reclaimer: the CT's tag and description
// identify it cluster-wide even when the state directory is gone. Only CTs
// on this node can be destroyed by the pct transport.
func (b *Backend) ReclaimByID(ctx context.Context, id string) (bool, error) {
	guests, err := b.clusterGuests(ctx)
	if err != nil {
		return false, err
	}
	found := false
	for _, g := range guests {
		if g.Type != "lxc" || !g.hasTag(Tag) {
			continue
		}
		if owner, err := b.ociIDOf(ctx, g.vmid()); err == nil && owner == id {
			if err := b.destroy(ctx, g.vmid()); err != nil {
				return found, err
			}
			found = true
		}
	}
	return found, nil
}

// Exec implements backend.Backend with lxc-attach. LXC has no working
// directory option: a cwd other than / runs the command through the CT's
// /bin/sh.
func (b *Backend) Exec(ctx context.Context, c *backend.Container, proc *specs.Process, opts backend.ExecOpts) (int, error) {
	p, err := b.vmidOf(c)
	if err != nil {
		return -1, err
	}
	if st, err := b.status(ctx, p.VMID); err != nil {
		return -1, err
	} else if st != "running" {
		return -1, errdefs.New(errdefs.ErrFailedPrecondition, "cannot exec in a stopped container (CT %d)", p.VMID)
	}
	args := []string{"-n", strconv.Itoa(p.VMID), "--clear-env"}
	for _, e := range proc.Env {
		args = append(args, "-v", e)
	}
	args = append(args, "-u", strconv.Itoa(int(proc.User.UID)), "-g", strconv.Itoa(int(proc.User.GID)), "--")
	if proc.Cwd != "" && proc.Cwd != "/" {
		args = append(args, "/bin/sh", "-c", `cd "$0" && exec "$@"`, proc.Cwd)
	}
	args = append(args, proc.Args...)
	cmd := execCommand(b.tools.lxcAttach, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var sendMaster func() error
	if proc.Terminal && opts.ConsoleSocket != "" {
		// The engine wants the pty master: lxc-attach runs on a pty we
		// make, as its controlling terminal, and the master goes to the
		// console socket (with our stdio as a terminal, lxc-attach makes
		// its own pty and needs nothing from us).
		master, slave, err := openPty()
		if err != nil {
			return -1, errdefs.Wrap(errdefs.ErrInternal, err, "allocate a pty")
		}
		defer master.Close()
		defer slave.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		sendMaster = func() error { return sendFd(opts.ConsoleSocket, master) }
	} else if proc.Terminal && opts.Detach {
		return -1, errdefs.New(errdefs.ErrInvalidArgument, "exec --tty --detach needs --console-socket to receive the pty")
	}
	if err := cmd.Start(); err != nil {
		return -1, errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "lxc-attach")
	}
	if sendMaster != nil {
		if err := sendMaster(); err != nil {
			_ = cmd.Process.Kill()
			return -1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--console-socket")
		}
	}
	if opts.PidFile != "" {
		if err := backend.WritePidFile(opts.PidFile, cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			return -1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	if opts.Detach {
		pid := cmd.Process.Pid
		_ = cmd.Process.Release()
		return pid, nil
	}
	return waitStatus(cmd), nil
}

// pctArgs renders a plan for the pct command line. An argv cannot hold
// the NUL bytes that separate the API's env list, so it is written with
// the two characters \0 there (what pct's option parser splits on; to be
// confirmed on a real PVE 9.1 node).
func pctArgs(plan *Plan) []string {
	args := plan.Args()
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "\x00", `\0`)
	}
	return args
}

// terminates reports whether sig's default action ends a process (all but
// the ignored and job-control ones, and 0, which only probes).
func terminates(sig unix.Signal) bool {
	switch sig {
	case 0, unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGCONT, unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return true
}
