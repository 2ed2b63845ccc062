package pve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/vztmpl"
)

// transport is how the lifecycle reaches PVE: the pct CLI on a node
// (pctTransport, below) or the REST API from anywhere (apiTransport, in
// apitransport.go). Each method is one PVE operation with its own retries
// and error classification, or says what the transport can do; the
// lifecycle (VMID choice, rollback, OCI states) lives once, in backend.go,
// and never asks which transport it has.
type transport interface {
	// name is the [pve] transport value, for messages.
	name() string
	// version is the pve-manager release of the node that answers.
	version(ctx context.Context) (Version, error)
	// versions are node's pve-manager and pve-container versions ("" for
	// pct: this node), in one call.
	versions(ctx context.Context, node string) (manager, container Version, err error)
	// place picks the node for a new CT ("" means this node, for pct).
	// guests is the cluster's CTs and VMs when placing listed them (nil
	// when it did not: then call guests).
	place(ctx context.Context) (node string, guests []resource, err error)
	// local returns the node-local operations on node's CTs when proxcage
	// runs on node (pct: always), nil otherwise.
	local(node string) *nodeHost
	// reachesAllNodes reports whether the CTs of every node can be read
	// and acted on, so a CT that HA or a migration moved is followed (the
	// API). guests lists the whole cluster either way, but pct reads and
	// changes only this node's CTs.
	reachesAllNodes() bool
	// setsRawLines reports whether a plan's raw lxc.* lines (Plan.Raw: a
	// tmpfs mount, the keeper's mount) reach the CT's config: pct writes
	// the file on the node; the API has no parameter for them.
	setsRawLines() bool
	// upgradeOps are this transport's steps of an upgrade (upgrade.go).
	upgradeOps() upgradeOps
	// ensureTemplate makes rootfs a vztmpl on node's template storage
	// (built once per digest, reused) and returns its volid; fresh: this
	// call put it there (a failed create removes it again).
	ensureTemplate(ctx context.Context, node, rootfs string) (volid string, fresh bool, err error)
	// ensureFile makes a template file named name (written by write only
	// when missing) available on node's template storage; returns its
	// volid and whether this call put it there.
	ensureFile(ctx context.Context, node, name string, write func(io.Writer) error) (volid string, fresh bool, err error)
	// guests lists every CT and VM of the cluster.
	guests(ctx context.Context) ([]resource, error)
	// nextID is the VMID /cluster/nextid offers, skipping avoid (VMIDs
	// that just lost a race); guests is the cluster's list as just read.
	nextID(ctx context.Context, guests []resource, avoid map[int]bool) (int, error)
	// create makes the CT. A create that outlives [pve] timeout while
	// PVE still runs it fails with *createPending, holding its task.
	create(ctx context.Context, node string, vmid int, volid string, plan *Plan) error
	// waitCreate waits for the task of a pending create to end.
	waitCreate(ctx context.Context, vmid int, upid string) error
	start(ctx context.Context, node string, vmid int) error
	stop(ctx context.Context, node string, vmid int) error
	// shutdown asks the CT's init to end (a clean shutdown, like SIGTERM).
	shutdown(ctx context.Context, node string, vmid int) error
	// destroy removes the CT with purge; force stops it first if running.
	destroy(ctx context.Context, node string, vmid int, force bool) error
	// clearsStaleLocks reports whether unlock works here: `pct unlock` is
	// a command of the CT's node, with no API call behind it.
	clearsStaleLocks() bool
	// unlock clears a stale config lock.
	unlock(ctx context.Context, node string, vmid int) error
	status(ctx context.Context, node string, vmid int) (string, error)
	// config returns the CT's config, values as strings.
	config(ctx context.Context, node string, vmid int) (map[string]string, error)
	// templates lists proxcage's templates on the template storage (of
	// every node that has it, over the API); removeTemplate deletes one.
	templates(ctx context.Context) ([]storedTemplate, error)
	removeTemplate(ctx context.Context, t storedTemplate) error
	// pruneScratch removes from this host's scratch space the templates
	// drop selects (the api transport's local cache) and temp files a dead
	// writer left (both transports).
	pruneScratch(ctx context.Context, drop func(string) bool) ([]string, error)
	// doctor checks what the transport needs (doctor.go), reading the
	// version through version, the backend's cached read.
	doctor(ctx context.Context, version func(context.Context) (Version, error)) []backend.Check
}

// pctTransport drives the local node's pct, pvesh and pvesm. Every CT it
// sees is on this node, so node arguments are ignored.
type pctTransport struct {
	tools tools
	cfg   config.PVE
	vmids *vmidRange // for doctor
	host  *nodeHost  // this node's: every CT pct reaches is here
	files ctFiles    // pct's config files and locks, for the env
	node  nodeFiles  // facts the node's files state (nodefiles.go)
	dir   string     // templateDir, once asked
}

func (t *pctTransport) name() string { return "pct" }

func (t *pctTransport) local(string) *nodeHost { return t.host }

func (t *pctTransport) reachesAllNodes() bool { return false }

func (t *pctTransport) setsRawLines() bool { return true }

func (t *pctTransport) clearsStaleLocks() bool { return true }

var (
	versionRE   = regexp.MustCompile(`pve-manager/(\d+)\.(\d+)(?:\.(\d+))?`)
	bareVersion = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)
)

func (t *pctTransport) version(ctx context.Context) (Version, error) {
	out, err := t.tools.run(ctx, 0, t.tools.pveversion)
	if err != nil {
		return Version{}, err
	}
	return parseVersion(out, "pveversion")
}

// versions reads pve-manager's and pve-container's versions from
// `pveversion -v` (one "package: version ..." line per package).
func (t *pctTransport) versions(ctx context.Context, _ string) (Version, Version, error) {
	if m, c, ok, err := t.node.versions(); err != nil || ok {
		return m, c, err
	}
	out, err := t.tools.run(ctx, 0, t.tools.pveversion, "-v")
	if err != nil {
		return Version{}, Version{}, err
	}
	return parsePveversionV(out)
}

func parsePveversionV(out string) (Version, Version, error) {
	var vs [2]Version
	for i, pkg := range []string{"pve-manager", "pve-container"} {
		m := regexp.MustCompile(`(?m)^` + pkg + `: (\d+)\.(\d+)(?:\.(\d+))?`).FindStringSubmatch(out)
		if m == nil {
			return Version{}, Version{}, errdefs.New(errdefs.ErrInternal, "pveversion -v lists no %s: is this a Proxmox VE node?", pkg)
		}
		vs[i] = versionOf(m)
	}
	return vs[0], vs[1], nil
}

// parseVersion reads "pve-manager/9.1.1/..." or "9.1.1".
func parseVersion(s, from string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		m = bareVersion.FindStringSubmatch(strings.TrimSpace(s))
	}
	if m == nil {
		return Version{}, errdefs.New(errdefs.ErrInternal, "%s printed %q: no pve-manager version", from, strings.TrimSpace(s))
	}
	return versionOf(m), nil
}

func versionOf(m []string) Version {
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if len(m) > 3 && m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v
}

func (t *pctTransport) place(context.Context) (string, []resource, error) { return "", nil, nil }

// templateDir is where the template storage keeps vztmpl files: from
// storage.cfg when it says, else from pvesm.
func (t *pctTransport) templateDir(ctx context.Context) (string, error) {
	if t.dir != "" {
		return t.dir, nil
	}
	dir, ok, err := t.node.templateDir(t.cfg.TemplateStorage)
	if err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "read the node's storage.cfg")
	}
	if !ok {
		out, err := t.tools.run(ctx, 0, t.tools.pvesm, "path", t.cfg.TemplateStorage+":vztmpl/proxcage-probe.tar.zst")
		if err != nil {
			return "", err
		}
		dir = filepath.Dir(strings.TrimSpace(out))
	}
	// A dir storage creates template/cache/ on first download; do the same.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "template directory of storage %s", t.cfg.TemplateStorage)
	}
	t.dir = dir
	return dir, nil
}

func (t *pctTransport) templates(ctx context.Context) ([]storedTemplate, error) {
	dir, err := t.templateDir(ctx)
	if err != nil {
		return nil, err
	}
	return listDir(dir, t.cfg.TemplateStorage)
}

func (t *pctTransport) removeTemplate(ctx context.Context, st storedTemplate) error {
	dir, err := t.templateDir(ctx)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, st.Name)); err != nil && !os.IsNotExist(err) {
		return errdefs.Wrap(errdefs.ErrInternal, err, "remove %s", st.Volid)
	}
	return nil
}

// pruneScratch: templates are written straight into the storage's
// directory, where only dead writers' temp files are left to remove.
func (t *pctTransport) pruneScratch(ctx context.Context, _ func(string) bool) ([]string, error) {
	dir, err := t.templateDir(ctx)
	if err != nil {
		return nil, err
	}
	return pruneDir(dir, nil)
}

func (t *pctTransport) ensureTemplate(ctx context.Context, _ string, rootfs string) (string, bool, error) {
	dir, err := t.templateDir(ctx)
	if err != nil {
		return "", false, err
	}
	path, digest, cached, err := vztmpl.Ensure(ctx, rootfs, dir)
	if err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "build template from %s", rootfs)
	}
	t.tools.log.Debug("template", "path", path, "digest", digest, "cached", cached)
	return t.cfg.TemplateStorage + ":vztmpl/" + filepath.Base(path), !cached, nil
}

func (t *pctTransport) ensureFile(ctx context.Context, _ string, name string, write func(io.Writer) error) (string, bool, error) {
	dir, err := t.templateDir(ctx)
	if err != nil {
		return "", false, err
	}
	wrote, err := writeOnce(filepath.Join(dir, name), write)
	if err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "write template %s", name)
	}
	return t.cfg.TemplateStorage + ":vztmpl/" + name, wrote, nil
}

// writeOnce writes path unless it exists, through a temp file renamed into
// place (durable, and not over another writer's), so a template is never
// seen half-written; wrote says whether this call made it. What a killed
// writer left goes first (pruneDir).
func writeOnce(path string, write func(io.Writer) error) (wrote bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	if _, err := pruneDir(filepath.Dir(path), nil); err != nil {
		return false, err
	}
	err = atomicfile.WriteFrom(path, atomicfile.Options{Perm: 0o644, Durable: true, NoReplace: true}, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if errors.Is(err, fs.ErrExist) {
		return false, nil // another writer of the same name (a digest) won
	}
	return err == nil, err
}

func (t *pctTransport) guests(ctx context.Context) ([]resource, error) {
	out, err := t.tools.run(ctx, 0, t.tools.pvesh, "get", "/cluster/resources", "--type", "vm", "--output-format", "json")
	if err != nil {
		return nil, err
	}
	var rows []resource
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "parse pvesh /cluster/resources output")
	}
	return rows, nil
}

// nextID computes /cluster/nextid from guests: pvesh runs as root, so
// /cluster/resources listed the whole vmlist that nextid reads
// (nodefiles.go lowestFreeVMID), and the range is datacenter.cfg's.
func (t *pctTransport) nextID(_ context.Context, guests []resource, avoid map[int]bool) (int, error) {
	lower, upper, err := t.node.nextIDRange()
	if err != nil {
		return 0, err
	}
	return lowestFreeVMID(guests, lower, upper, avoid)
}

// nextIDAnswer: nextid?vmid=N fails with "already exists" when N is taken.
func nextIDAnswer(err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if errdefs.Category(err) == errdefs.ErrAlreadyExists {
		return false, nil
	}
	return false, err
}

// pct runs one pct subcommand on vmid, retrying transient failures.
func (t *pctTransport) pct(ctx context.Context, vmid int, args ...string) error {
	return retryTransient(ctx, t.tools.log, 4, func() error {
		_, err := t.tools.run(ctx, vmid, t.tools.pct, args...)
		return err
	})
}

// create runs pct create without the env, which an argv cannot carry
// (env.go), then writes the env into the CT's config under pct's lock. A
// failure of the second step is the create's: the lifecycle removes the CT.
func (t *pctTransport) create(ctx context.Context, _ string, vmid int, volid string, plan *Plan) error {
	raw := plan.Raw
	var set []Option
	if plan.Keeper != nil || plan.ResetEntrypoint {
		// An OCI image's own entrypoint replaces the one asked for at
		// create (Create.pm restore_oci_archive): ours is set after.
		for _, o := range plan.Options {
			if o.Key == "entrypoint" {
				set = append(set, o)
			}
		}
	}
	plan, vars := withoutEnv(plan)
	if err := t.pct(ctx, vmid, append([]string{"create", strconv.Itoa(vmid), volid}, plan.Args()...)...); err != nil {
		return err
	}
	if len(vars) == 0 && len(raw) == 0 && len(set) == 0 {
		return nil
	}
	return retryTransient(ctx, t.tools.log, 4, func() error { return t.files.setLines(ctx, vmid, vars, raw, set) })
}

// waitCreate: pct create runs in the foreground, so no create of it is
// ever pending.
func (t *pctTransport) waitCreate(context.Context, int, string) error { return nil }

func (t *pctTransport) start(ctx context.Context, _ string, vmid int) error {
	return t.pct(ctx, vmid, "start", strconv.Itoa(vmid))
}

func (t *pctTransport) stop(ctx context.Context, _ string, vmid int) error {
	return t.pct(ctx, vmid, "stop", strconv.Itoa(vmid))
}

func (t *pctTransport) shutdown(ctx context.Context, _ string, vmid int) error {
	return t.pct(ctx, vmid, "shutdown", strconv.Itoa(vmid))
}

func (t *pctTransport) destroy(ctx context.Context, _ string, vmid int, force bool) error {
	args := []string{"destroy", strconv.Itoa(vmid), "--purge", "1"}
	if force {
		args = append(args, "--force", "1")
	}
	return t.pct(ctx, vmid, args...)
}

func (t *pctTransport) unlock(ctx context.Context, _ string, vmid int) error {
	_, err := t.tools.run(ctx, vmid, t.tools.pct, "unlock", strconv.Itoa(vmid))
	return err
}

func (t *pctTransport) status(ctx context.Context, _ string, vmid int) (string, error) {
	if st, ok, err := t.ctStatus(ctx, vmid); ok {
		return st, err
	}
	out, err := t.tools.run(ctx, vmid, t.tools.pct, "status", strconv.Itoa(vmid))
	if err != nil {
		return "", err
	}
	st := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "status:"))
	if st != "running" && st != "stopped" {
		return "", errdefs.New(errdefs.ErrInternal, "pct status %d printed %q", vmid, strings.TrimSpace(out))
	}
	return st, nil
}

func (t *pctTransport) config(ctx context.Context, _ string, vmid int) (map[string]string, error) {
	if cfg, ok, err := t.ctConfig(vmid); ok {
		return cfg, err
	}
	out, err := t.tools.run(ctx, vmid, t.tools.pct, "config", strconv.Itoa(vmid))
	if err != nil {
		return nil, err
	}
	cfg := parseConfig(out)
	// pct config prints the description %XX-escaped.
	if d, err := urlUnescape(cfg["description"]); err == nil {
		cfg["description"] = d
	}
	return cfg, nil
}
