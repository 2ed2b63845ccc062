// Package pve runs OCI bundles as first-class Proxmox VE containers (CTs),
// so backups, HA, migration and the PVE UI apply. This file is the
// lifecycle, the same over both transports (transport.go: pct on the node;
// apitransport.go: the REST API from anywhere); nodehost.go is what only
// the CT's own node can do, translate.go maps the bundle to CT options,
// errors.go classifies PVE's failures, vmid.go finds VMIDs.
//
// OCI "created" is modelled as a CT that exists but was never started: PVE
// has no created-but-paused init. The pid in state is the host pid of the
// CT's init (lxc-info) while it runs, 0 otherwise.
package pve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/lxctools"
	"github.com/proxcage/proxcage/internal/volume"
)

// OCITemplateName names the OCI archive template of an image:
// proxcage-oci-IMAGE-ARCHIVE.tar, the first 16 hex digits of the image's
// manifest digest (what `rmi` removes by) and of the archive's own (OCI
// media types and a config carrying the overrides: backend.ImageSource).
func OCITemplateName(image, archive string) string {
	short := func(d string) string {
		hex := strings.TrimPrefix(d, "sha256:")
		if len(hex) > 16 {
			hex = hex[:16]
		}
		return hex
	}
	if archive == "" {
		archive = image // the image as it is
	}
	return "proxcage-oci-" + short(image) + "-" + short(archive) + ".tar"
}

// Name is the backend's routing name.
const Name = "pve"

// Backend is the Proxmox VE backend, over pct or the REST API.
type Backend struct {
	cfg     config.PVE
	set     Settings
	vmids   *vmidRange
	tr      transport
	timeout time.Duration // [pve] timeout
	log     *slog.Logger
	// keepers are the keepers this process started, for a foreground
	// run's Wait, and the signals caught for it from create on (a TERM
	// before Wait must reach the CT's process too, not end proxcage).
	keepers map[string]*exec.Cmd
	sigs    map[string]chan os.Signal
}

// New checks the [pve] config and returns the backend.
func New(cfg config.PVE, log *slog.Logger) (*Backend, error) {
	timeout, err := time.ParseDuration(cfg.Timeout)
	if err != nil || timeout <= 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "[pve] timeout %q: want a duration such as \"2m\"", cfg.Timeout)
	}
	vr, err := parseVMIDRange(cfg.VMIDRange)
	if err != nil {
		return nil, err
	}
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	b := &Backend{
		cfg: cfg, vmids: vr, timeout: timeout, log: log, keepers: map[string]*exec.Cmd{}, sigs: map[string]chan os.Signal{},
		set: Settings{RootfsStorage: cfg.RootfsStorage, Bridge: cfg.Bridge, AllowPrivileged: cfg.AllowPrivileged, Features: cfg.Features},
	}
	tl := tools{
		pct: or(cfg.Tools.Pct, "pct"), pvesh: or(cfg.Tools.Pvesh, "pvesh"), pvesm: or(cfg.Tools.Pvesm, "pvesm"),
		pveversion: or(cfg.Tools.Pveversion, "pveversion"), lxcInfo: or(cfg.Tools.LxcInfo, "lxc-info"),
		lxcAttach: or(cfg.Tools.LxcAttach, "lxc-attach"), timeout: timeout, log: log,
	}
	host := &nodeHost{tools: tl}
	switch cfg.Transport {
	case "pct":
		files := ctFiles{configDir: or(cfg.Tools.CTConfigDir, "/etc/pve/lxc"), lockDir: or(cfg.Tools.LockDir, "/run/lock/lxc"), lockWait: configLockWait}
		node := nodeFiles{pmxcfs: filepath.Dir(files.configDir), dpkgStatus: or(cfg.Tools.DpkgStatus, "/var/lib/dpkg/status")}
		b.tr = &pctTransport{tools: tl, cfg: cfg, vmids: vr, host: host, files: files, node: node}
	case "api":
		c, err := newAPIClient(cfg, log)
		if err != nil {
			return nil, err
		}
		b.tr = newAPITransport(cfg, c, host)
	default:
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "[pve] transport %q: want \"pct\" (on a PVE node) or \"api\" (REST API)", cfg.Transport)
	}
	return b, nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return Name }

// private is what the store keeps for a pve container.
type private struct {
	VMID     int    `json:"vmid"`
	Node     string `json:"node,omitempty"`     // api transport: the CT's node
	Template string `json:"template,omitempty"` // volid
	// FreshTemplate: this create put Template on the storage, so the
	// rollback of a failed create or run removes it again.
	FreshTemplate bool `json:"freshTemplate,omitempty"`
	// CreateTask is the UPID of a create that outlived [pve] timeout: the
	// CT is ours although it has no description yet.
	CreateTask string `json:"createTask,omitempty"`
	PidFile    string `json:"pidFile,omitempty"` // written at start: PVE has no init before start
	Started    bool   `json:"started,omitempty"`
	// Killed: a terminating signal reached the container while it was
	// "created" (no init runs yet); it is stopped without ever running.
	Killed bool `json:"killed,omitempty"`
	// Keeper, KeeperStart and KeeperDir name the container's keeper
	// (keeper.go), what the pid file names when an engine drives it.
	Keeper      int    `json:"keeper,omitempty"`
	KeeperStart uint64 `json:"keeperStart,omitempty"`
	KeeperDir   string `json:"keeperDir,omitempty"`
	// Volumes are the CT's mount point volumes made for its volumes
	// (translate.go volumes): PVE frees them with the CT.
	Volumes []volume.Mount `json:"volumes,omitempty"`
	// Upgrade is an upgrade in flight (upgrade.go); Upgraded: one was
	// made, so the CT's rootfs may carry another VMID's name.
	Upgrade  *upgradeJournal `json:"upgrade,omitempty"`
	Upgraded bool            `json:"upgraded,omitempty"`
}

func loadPrivate(c *backend.Container) (private, error) {
	var p private
	_, err := backend.LoadPrivate(c, &p)
	return p, err
}

func savePrivate(c *backend.Container, p private) error { return backend.SavePrivate(c, p) }

const createAttempts = 10

// Create implements backend.Backend: node, template, VMID, create. A
// failure after the create call destroys the CT again.
func (b *Backend) Create(ctx context.Context, c *backend.Container, opts backend.CreateOpts) error {
	return b.explain(b.create(ctx, c, opts))
}

// explain sharpens a hint with what only the config knows: which [pve]
// key names a storage PVE says does not exist.
func (b *Backend) explain(err error) error {
	var te *toolError
	if !errors.As(err, &te) || te.MissingStorage == "" {
		return err
	}
	var keys []string
	if te.MissingStorage == b.cfg.RootfsStorage {
		keys = append(keys, "rootfs_storage")
	}
	if te.MissingStorage == b.cfg.TemplateStorage {
		keys = append(keys, "template_storage")
	}
	if len(keys) == 0 {
		return err // a mount point's storage: the generic hint stands
	}
	return errdefs.WithHint(err, te.StorageKeyHint(keys))
}

func (b *Backend) create(ctx context.Context, c *backend.Container, opts backend.CreateOpts) (err error) {
	return b.createOn(ctx, c, opts, "")
}

// createOn is create on node ("": the one place picks; an upgrade's
// scratch CT must be on its CT's node, where their volumes are).
func (b *Backend) createOn(ctx context.Context, c *backend.Container, opts backend.CreateOpts, onNode string) (err error) {
	node, guests, err := b.tr.place(ctx)
	if err != nil {
		return err
	}
	if onNode != "" && onNode != node {
		node, guests = onNode, nil
	}
	// The CT's node's own versions: pve-container decides what an
	// application container takes.
	ver, cver, err := b.tr.versions(ctx, node)
	if err != nil {
		return err
	}
	host := b.tr.local(node) // nil: the CT goes to another host
	set := b.set
	set.RootfsHasShell = func() bool {
		fi, err := os.Stat(filepath.Join(c.Rootfs, "bin", "sh"))
		return err == nil && !fi.IsDir()
	}
	if host != nil {
		// Elsewhere the sources are the node's to check (PVE does).
		set.SourceKind = sourceKind
	}
	// PVE 9.1 takes an image itself (an OCI archive template): its own
	// application-container support applies, and the template is the
	// image, named by its digest. Older nodes get the rootfs as a vztmpl.
	ociImage := opts.Image != nil && opts.Image.WriteOCIArchive != nil && ver.AtLeast(9, 1)
	if ociImage {
		set.Image = opts.Image.Defaults
	}
	// An engine asks for a pid to wait on: it gets a keeper, on the
	// CT's node, through pct (the API cannot set the keeper's mount).
	var keeper string
	foreground := opts.Foreground
	if foreground && c.Spec.Process != nil && c.Spec.Process.Terminal {
		return errdefs.WithHint(backend.Unsupported(b, "running a container with process.terminal in the foreground"),
			"run it with --detach and a --console-socket, as engines do, or without a terminal")
	}
	if foreground {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, forwarded...)
		b.sigs[c.ID] = ch
		defer func() {
			if err != nil {
				signal.Stop(ch)
				delete(b.sigs, c.ID)
			}
		}()
	}
	if opts.PidFile != "" || foreground {
		// What the caller asked for, and what it can do without: an
		// engine drops --pid-file, a user adds --detach.
		asked, without := "--pid-file (an engine driving the CT)", "drop --pid-file"
		if opts.PidFile == "" {
			asked, without = "a foreground run", "run it with --detach (-d)"
		}
		if host == nil {
			return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  fmt.Sprintf("%s needs the CT's processes, which the PVE API does not reach (CT would run on node %s)", asked, node),
				Hint: "run proxcage on the PVE node (transport \"pct\", or [pve] node = this host's name), or " + without}
		}
		if !b.tr.setsRawLines() {
			return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  asked + " needs [pve] transport = \"pct\": the CT's keeper is mounted by an lxc.mount.entry line of its config, which the PVE API cannot set",
				Hint: "on the PVE node use transport \"pct\", or " + without}
		}
		keeper = keeperDir(c.StateDir)
		set.Keeper, set.KeeperHostDir = CtrKeeperDir, keeper
	}
	vols, err := volume.Decode(c.Spec.Annotations)
	if err != nil {
		return err
	}
	if foreground && slices.ContainsFunc(vols, func(v volume.Mount) bool { return !v.Anonymous }) {
		return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  "a foreground run on pve removes its CT at the end, and PVE frees a CT's volumes with it: the named volume would go too",
			Hint: "run it with --detach (-d): the CT and its volumes stay until `proxcage delete --volumes`"}
	}
	set.RawLines = b.tr.setsRawLines()
	plan, err := Translate(c.ID, c.Spec, set, Node{Version: ver, Container: cver})
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "translate bundle for pve")
	}
	for _, n := range plan.Notes {
		b.log.Info(n, "id", c.ID)
	}
	var helper string
	if keeper != "" && plan.Keeper == nil {
		if foreground {
			// Its init must stay pid 1: no wrapper reads its exit status.
			return errdefs.WithHint(backend.Unsupported(b, "running a system CT (/sbin/init) in the foreground"),
				"run it with --detach (-d), then follow it with `proxcage state` and `proxcage exec`")
		}
		// A system CT (/sbin/init): its init must be pid 1, so no wrapper
		// and no keeper; the pid file gets the init's pid at start.
		keeper = ""
	}
	if opts.ConsoleSocket != "" && keeper == "" {
		// Only a keeper's wrapper can give the CT's process a terminal.
		return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  "--console-socket on pve needs an application CT with --pid-file on its node (over pct): a keeper gives its process the terminal",
			Hint: "use `pct console VMID` for a system CT's console, or drop process.terminal"}
	}
	if keeper != "" {
		if helper, err = lxctools.FindHelper(mustExecutable(), "proxcage-lxc-init"); err != nil {
			return err
		}
	}
	if planUnprivileged(plan) {
		if err := checkIDRange(ctx, c.Rootfs); err != nil {
			return err
		}
		if host != nil {
			warnBindOwners(b.log, c.Spec)
		}
	}
	if guests == nil {
		if guests, err = b.tr.guests(ctx); err != nil {
			return err
		}
	}
	// A CT that carries this id already (its state directory is gone: /run
	// is cleared at boot, the CT is not) is refused, not duplicated, and
	// never destroyed here: it may hold data.
	if dup, err := b.carrying(ctx, guests, c.ID, false); err != nil {
		return err
	} else if len(dup) > 0 {
		return &errdefs.Error{Cat: errdefs.ErrAlreadyExists,
			Msg: fmt.Sprintf("container %q already exists as CT %d on node %s (this host has no state for it: lost, or another host's)",
				c.ID, dup[0].vmid(), dup[0].Node),
			Hint: fmt.Sprintf("`proxcage delete --force %s` removes that CT (it is found by its tags), or pick another id", c.ID)}
	}
	var volid string
	var fresh bool
	if ociImage {
		volid, fresh, err = b.tr.ensureFile(ctx, node, OCITemplateName(opts.Image.Digest, opts.Image.ArchiveDigest), opts.Image.WriteOCIArchive)
	} else {
		volid, fresh, err = b.tr.ensureTemplate(ctx, node, c.Rootfs)
	}
	if err != nil {
		return err
	}
	p := private{Template: volid, FreshTemplate: fresh, PidFile: opts.PidFile, Node: node, Volumes: vols}

	avoid := map[int]bool{}
	requested, hasRequest := c.Spec.Annotations[AnnotationVMID]
	for attempt := 1; ; attempt++ {
		if attempt > 1 && b.vmids != nil {
			// A VMID of the range was lost to a race: look again.
			if guests, err = b.tr.guests(ctx); err != nil {
				return err
			}
		}
		var vmid int
		if hasRequest {
			if vmid, err = b.requestedVMID(guests, requested); err != nil {
				return err
			}
		} else if vmid, err = b.nextFreeVMID(ctx, guests, avoid); err != nil {
			return err
		}
		p.VMID = vmid
		// Record the VMID before the create: a crash from here on still
		// leaves the record that `delete --force` needs.
		if err := savePrivate(c, p); err != nil {
			return err
		}
		if keeper != "" {
			base := uint32(0)
			if planUnprivileged(plan) {
				base = unprivilegedRoot
			}
			if err := prepareKeeper(keeper, helper, plan.Keeper, opts.ConsoleSocket != "", base, keeperConfig{VMID: vmid, LxcInfo: b.tr.local(node).tools.lxcInfo}); err != nil {
				return errdefs.Wrap(errdefs.ErrInternal, err, "make the keeper directory %s", keeper)
			}
		}
		err = b.tr.create(ctx, node, vmid, volid, plan)
		if err == nil {
			if keeper == "" {
				return nil
			}
			return b.startKeeper(ctx, c, &p, keeper, opts.ConsoleSocket)
		}
		if keeper != "" {
			_ = os.RemoveAll(keeper)
		}
		if errdefs.Category(err) == errdefs.ErrAlreadyExists && !hasRequest && attempt < createAttempts {
			// Another creator took this VMID between nextid and create.
			b.log.Debug("VMID taken, picking another", "vmid", vmid)
			avoid[vmid] = true
			continue
		}
		var pending *createPending
		if errors.As(err, &pending) {
			// PVE runs our create still: the CT is ours; the rollback's
			// delete waits for the task, then destroys it.
			p.CreateTask = pending.upid
			_ = savePrivate(c, p)
			return err
		}
		// Whatever failed, find out whether a CT of ours is left and
		// remove it. The VMID stays recorded only when that cannot be
		// settled, for the rollback's (or a later `delete --force`'s) try.
		if b.settle(ctx, c.ID, node, vmid) {
			p.VMID = 0
			_ = savePrivate(c, p)
		}
		return err
	}
}

// dropTemplate removes the template a failed create put on node's storage.
// Best effort: what is left is a cached template, which `proxcage
// templates prune` removes. (A create of the same image at the same moment
// may find it gone: pct create then fails, an API create uploads it again.)
func (b *Backend) dropTemplate(ctx context.Context, node, volid string) {
	_, name, _ := strings.Cut(volid, ":vztmpl/")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	if err := b.tr.removeTemplate(ctx, storedTemplate{Node: node, Volid: volid, Name: name}); err != nil {
		b.log.Warn("a failed create left its template; `proxcage templates prune` removes it", "template", volid, "err", err)
	}
}

// startKeeper starts the keeper of a CT just made and names it in the pid
// file; when that fails the CT is destroyed again.
func (b *Backend) startKeeper(ctx context.Context, c *backend.Container, p *private, dir, consoleSocket string) error {
	cmd, start, err := spawnKeeper(dir, consoleSocket)
	if err == nil {
		b.keepers[c.ID] = cmd
		pid := cmd.Process.Pid
		p.Keeper, p.KeeperStart, p.KeeperDir = pid, start, dir
		if err = savePrivate(c, *p); err == nil && p.PidFile != "" {
			err = atomicfile.WritePidFile(p.PidFile, pid)
			if err != nil {
				err = errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
			}
		}
	} else if errdefs.Category(err) != errdefs.ErrInvalidArgument {
		err = errdefs.Wrap(errdefs.ErrInternal, err, "start the keeper")
	}
	if err != nil {
		if b.settle(ctx, c.ID, p.Node, p.VMID) {
			p.VMID = 0
		}
		endKeeper(*p, dir, unix.SIGKILL)
		p.Keeper, p.KeeperDir = 0, ""
		_ = savePrivate(c, *p)
	}
	return err
}

// Wait implements backend.Attacher for a foreground run: the keeper this
// process started ends with the CT's process and its status; meanwhile the
// signals a terminal or a supervisor sends proxcage go to the CT's process.
func (b *Backend) Wait(ctx context.Context, c *backend.Container) (int, error) {
	cmd, ok := b.keepers[c.ID]
	if !ok {
		return -1, errdefs.New(errdefs.ErrFailedPrecondition, "container %q was not started by this process", c.ID)
	}
	sigs, ok := b.sigs[c.ID]
	if !ok {
		sigs = make(chan os.Signal, 8)
		signal.Notify(sigs, forwarded...)
	}
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if cmd.ProcessState == nil {
				return -1, errdefs.Wrap(errdefs.ErrInternal, err, "wait for the keeper of %s", c.ID)
			}
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		case s := <-sigs:
			if err := b.Kill(ctx, c, s.(unix.Signal), false); err != nil {
				b.log.Debug("forward a signal to the CT", "id", c.ID, "signal", s, "err", err)
			}
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
}

// forwarded are the signals a foreground run passes to the CT's process.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT}

// mustExecutable is the running proxcage binary, where its helpers are.
func mustExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return "proxcage"
	}
	return exe
}

// ociIDOf reads the OCI id from a CT's description ("" when not ours).
func (b *Backend) ociIDOf(ctx context.Context, node string, vmid int) (string, error) {
	cfg, err := b.tr.config(ctx, node, vmid)
	if err != nil {
		return "", err
	}
	id, _ := OCIIDFromDescription(cfg["description"])
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

// Start implements backend.Backend: start the CT, then the init's host pid
// goes to the pid file given at create.
func (b *Backend) Start(ctx context.Context, c *backend.Container) error {
	p, err := b.vmidOf(c)
	if err != nil {
		return err
	}
	if p.Started || p.Killed {
		return errdefs.New(errdefs.ErrFailedPrecondition, "cannot start a container that has already been started or killed (CT %d)", p.VMID)
	}
	if err := b.follow(ctx, c, &p, func() error { return b.tr.start(ctx, p.Node, p.VMID) }); err != nil {
		return b.explain(err)
	}
	p.Started = true
	if err := savePrivate(c, p); err != nil {
		return err
	}
	if p.PidFile != "" && p.Keeper == 0 {
		h, err := b.onNode(p, "--pid-file")
		if err != nil {
			return err
		}
		pid, err := h.initPid(ctx, p.VMID)
		if err != nil {
			return err
		}
		if err := atomicfile.WritePidFile(p.PidFile, pid); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	return nil
}

// Annotations `state` adds for a pve container.
const (
	AnnotationStateVMID = "org.proxcage.pve.vmid"
	AnnotationStateNode = "org.proxcage.pve.node"
)

// State implements backend.Backend. Over the API from another host the
// pid is 0 (PVE does not report it) and the node is in the annotations.
func (b *Backend) State(ctx context.Context, c *backend.Container) (backend.Status, error) {
	p, err := b.vmidOf(c)
	if err != nil {
		return backend.Status{}, err
	}
	ann := map[string]string{AnnotationStateVMID: strconv.Itoa(p.VMID)}
	var st string
	err = b.follow(ctx, c, &p, func() (err error) { st, err = b.tr.status(ctx, p.Node, p.VMID); return err })
	if err != nil {
		return backend.Status{}, err
	}
	if p.Node != "" {
		ann[AnnotationStateNode] = p.Node
	}
	out := backend.Status{Annotations: ann, Node: p.Node}
	switch {
	case st == "running":
		out.Status = "running"
		if h := b.tr.local(p.Node); h != nil {
			pid, err := h.initPid(ctx, p.VMID)
			if err != nil {
				// Stopped between the two calls.
				out.Status = "stopped"
			}
			out.Pid = pid
			if pid > 0 {
				ann[backend.AnnotationInitPid] = strconv.Itoa(pid)
			}
		}
		if keeperAlive(p) && out.Status == "running" {
			// What the pid file names and the engine waits for.
			out.Pid = p.Keeper
		}
	case !p.Started && !p.Killed:
		out.Status = "created"
		if keeperAlive(p) {
			out.Pid = p.Keeper
		}
	default:
		out.Status = "stopped"
	}
	return out, nil
}

// Kill implements backend.Backend. On the CT's node the signal goes to the
// CT's init from the host (nodeHost.signal). From elsewhere only two
// signals can be sent, over the API: TERM becomes a shutdown, KILL a stop.
func (b *Backend) Kill(ctx context.Context, c *backend.Container, sig unix.Signal, all bool) error {
	p, err := b.vmidOf(c)
	if err != nil {
		return err
	}
	if !p.Started && !p.Killed {
		var st string
		err := b.follow(ctx, c, &p, func() (err error) { st, err = b.tr.status(ctx, p.Node, p.VMID); return err })
		if err != nil {
			return err
		}
		if st != "running" {
			// OCI lets kill reach a created container. A PVE CT has no
			// init before start, so a signal that would end one ends the
			// container: it becomes stopped without running.
			if terminates(sig) {
				p.Killed = true
				if err := savePrivate(c, p); err != nil {
					return err
				}
				// The engine waits on the keeper: it ends as the
				// process would have.
				if keeperAlive(p) {
					_ = lxctools.Signal(p.Keeper, sig)
				}
				return nil
			}
			return nil
		}
	}
	notRunning := &errdefs.Error{Cat: errdefs.ErrFailedPrecondition, Msg: "container not running",
		Hint: fmt.Sprintf("CT %d is stopped; remove it with `proxcage delete %s`", p.VMID, c.ID)}
	h := b.tr.local(p.Node)
	if h == nil {
		var err error
		switch sig {
		case unix.SIGTERM:
			err = b.follow(ctx, c, &p, func() error { return b.tr.shutdown(ctx, p.Node, p.VMID) })
		case unix.SIGKILL:
			err = b.follow(ctx, c, &p, func() error { return b.tr.stop(ctx, p.Node, p.VMID) })
		default:
			return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  fmt.Sprintf("signal %s cannot reach CT %d on node %s over the PVE API", unix.SignalName(sig), p.VMID, p.Node),
				Hint: "the API can only shut down (SIGTERM) or stop (SIGKILL) a CT; run proxcage on " + p.Node + " for other signals"}
		}
		if errdefs.Category(err) == errdefs.ErrFailedPrecondition {
			return notRunning
		}
		return err
	}
	if err := h.signal(ctx, p.VMID, sig, all); err != nil {
		if errdefs.Category(err) == errdefs.ErrFailedPrecondition {
			return notRunning
		}
		return err
	}
	return nil
}

// Pids implements backend.Lister.
func (b *Backend) Pids(ctx context.Context, c *backend.Container) ([]int, error) {
	p, err := b.vmidOf(c)
	if err != nil {
		return nil, err
	}
	h, err := b.onNode(p, "ps")
	if err != nil {
		return nil, err
	}
	return h.pids(ctx, p.VMID)
}

// Exec implements backend.Backend with lxc-attach on the CT's node.
func (b *Backend) Exec(ctx context.Context, c *backend.Container, proc *specs.Process, opts backend.ExecOpts) (int, error) {
	p, err := b.vmidOf(c)
	if err != nil {
		return -1, err
	}
	h, err := b.onNode(p, "exec")
	if err != nil {
		return -1, err
	}
	if st, err := b.tr.status(ctx, p.Node, p.VMID); err != nil {
		return -1, err
	} else if st != "running" {
		// A CT has no init before start: unlike runc, nothing to exec in.
		if !p.Started && !p.Killed {
			return -1, &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
				Msg:  fmt.Sprintf("cannot exec in a created container that was never started (CT %d has no processes yet)", p.VMID),
				Hint: fmt.Sprintf("start it first: `proxcage start %s`", c.ID)}
		}
		return -1, backend.ExecStopped(c.ID, fmt.Sprintf(" (CT %d)", p.VMID))
	}
	return h.exec(ctx, p.VMID, proc, opts)
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
