package pve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// The upgrade of an image CT (docs/upgrade-design.md, from the PVE
// source): PVE can neither recreate a CT from an image in place (no
// create onto an existing VMID) nor reassign a rootfs (move_volume:
// "Cannot move to/from 'rootfs'"), but it runs a CT on whatever volume
// its config's rootfs names. So the new image becomes a scratch CT on a
// VMID of its own, and its rootfs and image lines move into the CT's
// config while the CT is stopped; everything else of the CT (VMID,
// NICs and MACs, mount points and their data, hostname, tags,
// description, resources) stays as it was. A snapshot of the CT, where
// its storage can make one, covers the data volumes; the old config is
// kept in the journal, so a failure puts back exactly what was. Each
// step is recorded in the container's state before it runs, so a crash
// leaves what `upgrade --resume` (or `delete --force`) needs.

// upgradeJournal is an upgrade in flight, in the container's private
// state.
type upgradeJournal struct {
	Step       string   `json:"step"` // scratch, snapshot, stopped, swapped, started
	ScratchID  string   `json:"scratchId"`
	Scratch    *private `json:"scratch,omitempty"`
	Snapshot   string   `json:"snapshot,omitempty"` // "" when the storage has none
	OldConf    string   `json:"oldConf,omitempty"`  // the CT's config file before the swap
	TmpConf    string   `json:"tmpConf,omitempty"`  // the scratch CT's, before the swap
	WasRunning bool     `json:"wasRunning"`
}

// UpgradeSnapshot is the name of the snapshot an upgrade takes.
const UpgradeSnapshot = "proxcage-upgrade"

// Upgrade implements backend.Upgrader.
func (b *Backend) Upgrade(ctx context.Context, c *backend.Container, next backend.UpgradeTarget) error {
	pt, err := b.upgradeOps()
	if err != nil {
		return err
	}
	if _, api := pt.(*apiUpgrade); api {
		if len(next.InitChanged) > 0 {
			return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg: fmt.Sprintf("upgrade over the API: the new image changes %s, which PVE keeps in raw lxc.init.*/lxc.signal.halt lines of the CT config, and the API cannot write those (its config schema has no lxc key)",
					strings.Join(next.InitChanged, ", ")),
				Hint: "run `proxcage upgrade` on the CT's node with [pve] transport = \"pct\", or keep them as they were (-u, -w)"}
		}
		if next.Check != nil && next.ExecCheck {
			return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  "upgrade over the API: a health check runs in the CT (exec), which the API cannot reach",
				Hint: "run `proxcage upgrade` on the CT's node (transport \"pct\"), or drop --health-cmd (the CT must then still run after its start)"}
		}
	}
	p, err := loadPrivate(c)
	if err != nil {
		return err
	}
	if p.VMID == 0 {
		return errdefs.New(errdefs.ErrFailedPrecondition, "container %q has no CT", c.ID)
	}
	if p.Upgrade != nil {
		return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
			Msg:  fmt.Sprintf("an upgrade of %s (CT %d) did not finish (at step %s)", c.ID, p.VMID, p.Upgrade.Step),
			Hint: fmt.Sprintf("`proxcage upgrade --resume %s` puts the CT back as it was before it, or `proxcage delete --force --volumes %s` removes both CTs", c.ID, c.ID)}
	}
	if p.KeeperDir != "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "container %q is driven by an engine (it has a keeper): upgrade it through the engine (a new container)", c.ID)
	}
	own, err := b.inspect(ctx, c.ID, &p.Node, p.VMID)
	if err != nil {
		return err
	}
	if own != ours {
		return errdefs.New(errdefs.ErrFailedPrecondition, "CT %d is not container %q's (any more): not upgraded", p.VMID, c.ID)
	}
	st, err := b.tr.status(ctx, p.Node, p.VMID)
	if err != nil {
		return err
	}
	j := &upgradeJournal{Step: "scratch", ScratchID: c.ID + ".upgrade", WasRunning: st == "running"}
	save := func() error {
		p.Upgrade = j
		return persist(c, p)
	}
	if err := save(); err != nil {
		return err
	}
	err = b.upgrade(ctx, pt, c, &p, j, next)
	if err == nil {
		p.Upgrade = nil
		return persist(c, p)
	}
	if rerr := b.undoUpgrade(ctx, pt, c, &p, j); rerr != nil {
		return errdefs.WithHint(err, fmt.Sprintf("and putting CT %d back failed (%s): `proxcage upgrade --resume %s` tries again", p.VMID, errdefs.OneLine(rerr), c.ID))
	}
	return errdefs.Wrap(errdefs.Category(err), err, "failed, CT %d runs its old image again", p.VMID)
}

// persist saves p now: the runtime's Persist when there is one.
func persist(c *backend.Container, p private) error {
	if err := savePrivate(c, p); err != nil {
		return err
	}
	if c.Persist != nil {
		return c.Persist()
	}
	return nil
}

func (b *Backend) upgrade(ctx context.Context, pt upgradeOps, c *backend.Container, p *private, j *upgradeJournal, next backend.UpgradeTarget) error {
	save := func(step string) error {
		j.Step = step
		p.Upgrade = j
		return persist(c, *p)
	}
	// 1. The scratch CT: the new image as a stopped CT without NIC or
	// volumes, made as any other (template, VMID, ownership, rollback).
	if err := b.scratch(ctx, c, j, next); err != nil {
		return errdefs.Context(err, "make the new image's CT", "")
	}
	if err := save("snapshot"); err != nil {
		return err
	}
	// 2. A snapshot of the CT, where every volume's storage can.
	snapErr := pt.snapshot(ctx, p.Node, p.VMID, UpgradeSnapshot, "proxcage upgrade to "+next.Image.Name+" "+next.Image.Digest)
	switch {
	case snapErr == nil:
		j.Snapshot = UpgradeSnapshot
	case strings.Contains(snapErr.Error(), "snapshot feature is not available"):
		b.log.Warn("no snapshot: a volume's storage (or a bind mount) has none; the config is restored on failure, the data of the volumes is not", "id", c.ID, "vmid", p.VMID)
	default:
		return errdefs.Context(snapErr, "snapshot", "")
	}
	if err := save("stop"); err != nil {
		return err
	}
	// 3. Stop the CT, as `pct shutdown --forceStop` after the grace.
	if j.WasRunning {
		if err := pt.shutdown(ctx, p.Node, p.VMID, next.Stop); err != nil {
			if st, serr := b.tr.status(ctx, p.Node, p.VMID); serr != nil || st != "stopped" {
				return errdefs.Context(err, "stop", "")
			}
		}
	}
	// 4. Swap, under both config locks.
	oldConf, tmpConf, err := pt.read(ctx, p.Node, p.VMID, j.Scratch.VMID)
	if err != nil {
		return err
	}
	j.OldConf, j.TmpConf = oldConf, tmpConf
	if err := save("swap"); err != nil {
		return err
	}
	newT, newS, err := swapImage(oldConf, tmpConf)
	if err != nil {
		return errdefs.New(errdefs.ErrFailedPrecondition, "swap the rootfs of CT %d: %v", p.VMID, err)
	}
	if err := pt.write(ctx, p.Node, p.VMID, j.Scratch.VMID, oldConf, tmpConf, newT, newS); err != nil {
		return err
	}
	if err := save("start"); err != nil {
		return err
	}
	// 5. Start, and the caller's health check.
	if err := b.tr.start(ctx, p.Node, p.VMID); err != nil {
		return errdefs.Context(err, "start on the new image", "")
	}
	p.Started = true
	if next.Check != nil {
		if err := next.Check(ctx); err != nil {
			return err
		}
	}
	if err := save("commit"); err != nil {
		return err
	}
	// 6. Commit: the scratch CT goes (its rootfs is now the old one,
	// which it does not own: PVE leaves it), then the snapshot, and the
	// old rootfs, which the snapshot's removal makes unusedN.
	b.commitUpgrade(ctx, pt, c, p, j)
	return nil
}

// scratch makes the scratch CT through the backend's own create.
func (b *Backend) scratch(ctx context.Context, c *backend.Container, j *upgradeJournal, next backend.UpgradeTarget) error {
	dir, err := os.MkdirTemp("", "proxcage-upgrade-")
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "scratch state")
	}
	defer func() { _ = os.RemoveAll(dir) }()
	sc := &backend.Container{ID: j.ScratchID, Rootfs: next.Rootfs, Spec: next.Spec, StateDir: dir}
	sc.Persist = func() error {
		var sp private
		if _, err := backend.LoadPrivate(sc, &sp); err != nil {
			return err
		}
		j.Scratch = &sp
		pp, err := loadPrivate(c)
		if err != nil {
			return err
		}
		pp.Upgrade = j
		return persist(c, pp)
	}
	node := ""
	if p, err := loadPrivate(c); err == nil {
		node = p.Node
	}
	err = b.createOn(ctx, sc, backend.CreateOpts{Image: next.Image}, node)
	var sp private
	_, _ = backend.LoadPrivate(sc, &sp)
	j.Scratch = &sp
	return err
}

// commitUpgrade removes what the upgrade no longer needs; a failure
// here leaves the upgrade standing (logged: `templates`/pct show it).
func (b *Backend) commitUpgrade(ctx context.Context, pt upgradeOps, c *backend.Container, p *private, j *upgradeJournal) {
	oldRootfs := rootfsVolume(confValue(j.OldConf, "rootfs"))
	// The snapshot first: it holds the old rootfs, which its removal
	// makes unusedN of the CT (AbstractConfig.pm snapshot_delete).
	if j.Snapshot != "" {
		if err := pt.delsnapshot(ctx, p.Node, p.VMID, j.Snapshot); err != nil {
			b.log.Warn("remove the upgrade's snapshot", "vmid", p.VMID, "err", errdefs.OneLine(err))
		}
	}
	// The scratch CT's config names the old rootfs now: its destroy
	// frees it if the name is the scratch VMID's (an earlier upgrade's
	// scratch CT had that VMID), else leaves it to freeUnused.
	if j.Scratch != nil && j.Scratch.VMID != 0 {
		if err := b.tr.destroy(ctx, p.Node, j.Scratch.VMID, true); err != nil {
			b.log.Warn("remove the upgrade's scratch CT", "vmid", j.Scratch.VMID, "err", errdefs.OneLine(err))
		}
	}
	if ownsVolume(j.Scratch.VMID, oldRootfs) {
		b.dropUnused(ctx, pt, p.Node, p.VMID, oldRootfs)
	} else {
		b.freeUnused(ctx, pt, p.Node, p.VMID, oldRootfs)
	}
	p.Rootfs = rootfsVolume(confValue(j.TmpConf, "rootfs"))
}

// dropUnused removes CT vmid's unusedN key of vol; PVE frees vol with
// it only when the CT owns it (pve-container LXC.pm
// delete_mountpoint_volume, "isn't the owner!").
func (b *Backend) dropUnused(ctx context.Context, pt upgradeOps, node string, vmid int, vol string) (dropped bool) {
	conf, err := b.tr.config(ctx, node, vmid)
	if err != nil {
		return false
	}
	for k, v := range conf {
		if strings.HasPrefix(k, "unused") && rootfsVolume(v) == vol {
			if err := pt.deleteKey(ctx, node, vmid, k); err != nil {
				b.log.Warn("drop the unused volume", "volume", vol, "err", errdefs.OneLine(err))
				continue
			}
			dropped = true
		}
	}
	return dropped
}

// freeUnused frees vol, which CT vmid no longer runs on: its unusedN key
// goes, and the volume itself where PVE left it.
func (b *Backend) freeUnused(ctx context.Context, pt upgradeOps, node string, vmid int, vol string) {
	if vol == "" {
		return
	}
	if b.dropUnused(ctx, pt, node, vmid, vol) && ownsVolume(vmid, vol) {
		return // PVE freed it with the key
	}
	if err := pt.free(ctx, node, vol); err != nil {
		b.log.Warn("free the volume", "volume", vol, "err", errdefs.OneLine(err))
	}
}

// undoUpgrade puts the CT back as it was before the upgrade, from any
// step the journal names, and removes the scratch CT and the snapshot.
func (b *Backend) undoUpgrade(ctx context.Context, pt upgradeOps, c *backend.Container, p *private, j *upgradeJournal) error {
	ctx = context.WithoutCancel(ctx)
	swapped := j.Step == "swap" || j.Step == "start" || j.Step == "commit"
	newRootfs := rootfsVolume(confValue(j.TmpConf, "rootfs"))
	if swapped {
		if st, err := b.tr.status(ctx, p.Node, p.VMID); err == nil && st == "running" {
			if err := b.tr.stop(ctx, p.Node, p.VMID); err != nil {
				return errdefs.Context(err, "stop", "")
			}
		}
		if j.Snapshot != "" {
			// The config and every volume as they were; the new rootfs,
			// not in the snapshot, becomes unusedN (pve-container
			// Config.pm __snapshot_rollback_get_unused): the key goes,
			// the volume stays for the scratch CT's destroy below.
			if err := pt.rollback(ctx, p.Node, p.VMID, j.Snapshot); err != nil {
				return errdefs.Context(err, "rollback", "")
			}
			b.dropUnused(ctx, pt, p.Node, p.VMID, newRootfs)
		}
		// Both configs as they were: the scratch CT's rootfs is its own
		// again, so its destroy frees the new rootfs and never the
		// CT's (which may carry the scratch VMID's name from an earlier
		// upgrade: PVE frees by name).
		curT, curS, err := pt.read(ctx, p.Node, p.VMID, j.Scratch.VMID)
		if err != nil {
			return err
		}
		if j.Snapshot != "" {
			j.OldConf = curT // the rollback's: the CT as it was
		}
		if err := pt.write(ctx, p.Node, p.VMID, j.Scratch.VMID, curT, curS, j.OldConf, j.TmpConf); err != nil {
			return err
		}
		j.Step = "stop"
	}
	if j.Scratch != nil && j.Scratch.VMID != 0 {
		sc := &backend.Container{ID: j.ScratchID}
		if err := savePrivate(sc, *j.Scratch); err == nil {
			if err := b.Delete(ctx, sc, true); err != nil {
				return errdefs.Context(err, "remove the scratch CT", "")
			}
		}
	}
	if j.Snapshot != "" || j.Step == "snapshot" {
		// Also when a crash came between the snapshot and its record.
		if err := pt.delsnapshot(ctx, p.Node, p.VMID, UpgradeSnapshot); err != nil && !strings.Contains(err.Error(), "does not exist") {
			b.log.Warn("remove the upgrade's snapshot", "vmid", p.VMID, "err", errdefs.OneLine(err))
		}
	}
	if j.WasRunning {
		if st, err := b.tr.status(ctx, p.Node, p.VMID); err == nil && st != "running" {
			if err := b.tr.start(ctx, p.Node, p.VMID); err != nil {
				return errdefs.Context(err, "start the CT again", "")
			}
		}
	}
	p.Upgrade = nil
	return persist(c, *p)
}

// ResumeUpgrade implements backend.Upgrader: an upgrade a crash left is
// finished backwards (the CT as it was before), whatever step it was at.
func (b *Backend) ResumeUpgrade(ctx context.Context, c *backend.Container) (bool, error) {
	p, err := loadPrivate(c)
	if err != nil || p.Upgrade == nil {
		return false, err
	}
	pt, err := b.upgradeOps()
	if err != nil {
		return true, err
	}
	if p.Upgrade.Step == "commit" {
		// Started and healthy: only the clean-up was left.
		b.commitUpgrade(ctx, pt, c, &p, p.Upgrade)
		p.Upgrade = nil
		return true, persist(c, p)
	}
	return true, b.undoUpgrade(ctx, pt, c, &p, p.Upgrade)
}

// confValue is key's value in the main section of a config file.
func confValue(conf, key string) string {
	head, _ := mainSection(conf)
	for _, l := range head {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// readPair reads two CT config files under both config locks (lower
// VMID first, so two upgrades cannot deadlock).
func (f ctFiles) readPair(ctx context.Context, a, b int) (string, string, error) {
	var out [2]string
	err := f.withPair(ctx, a, b, func(pa, pb string) error {
		for i, p := range []string{pa, pb} {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[i] = string(data)
		}
		return nil
	})
	return out[0], out[1], err
}

// writePair writes two CT config files under both config locks, each
// through a temp file renamed over it (PVE's file_set_contents).
func (f ctFiles) writePair(ctx context.Context, a, b int, ca, cb string) error {
	return f.withPair(ctx, a, b, func(pa, pb string) error {
		for _, w := range []struct{ path, data string }{{pa, ca}, {pb, cb}} {
			if err := atomicfile.Write(w.path, []byte(w.data), atomicfile.Options{Perm: 0o640}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f ctFiles) withPair(ctx context.Context, a, b int, fn func(pa, pb string) error) error {
	first, second := a, b
	if b < a {
		first, second = b, a
	}
	fail := func(err error) error {
		te := classify("edit the CT configs of an upgrade", a, -1, err.Error())
		return te.asError()
	}
	u1, err := f.lock(ctx, first)
	if err != nil {
		return fail(err)
	}
	defer u1()
	u2, err := f.lock(ctx, second)
	if err != nil {
		return fail(err)
	}
	defer u2()
	path := func(v int) string { return filepath.Join(f.configDir, strconv.Itoa(v)+".conf") }
	if err := fn(path(a), path(b)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.New(errdefs.ErrNotFound, "a CT config of the upgrade is missing: %v", err)
		}
		return fail(err)
	}
	return nil
}

// upgradeOps are the steps of an upgrade that differ between the
// transports. Configs are read and written as pct's config file text
// (the API's config rendered so, see apiUpgrade), so swapImage serves
// both.
type upgradeOps interface {
	snapshot(ctx context.Context, node string, vmid int, name, description string) error
	rollback(ctx context.Context, node string, vmid int, name string) error
	delsnapshot(ctx context.Context, node string, vmid int, name string) error
	shutdown(ctx context.Context, node string, vmid int, grace time.Duration) error
	// read returns the configs of CT a and CT b; write changes them from
	// (oldA, oldB) to (newA, newB).
	read(ctx context.Context, node string, a, b int) (string, string, error)
	write(ctx context.Context, node string, a, b int, oldA, oldB, newA, newB string) error
	deleteKey(ctx context.Context, node string, vmid int, key string) error
	free(ctx context.Context, node, volid string) error
}

func (b *Backend) upgradeOps() (upgradeOps, error) {
	switch t := b.tr.(type) {
	case *pctTransport:
		return pctUpgrade{t}, nil
	case *apiTransport:
		return &apiUpgrade{t}, nil
	}
	return nil, errdefs.New(errdefs.ErrInternal, "upgrade: transport %s", b.tr.name())
}

// pctUpgrade: pct's snapshot commands, the node's config files under
// pct's config locks (raw lxc.* lines included).
type pctUpgrade struct{ t *pctTransport }

func (u pctUpgrade) snapshot(ctx context.Context, _ string, vmid int, name, desc string) error {
	return u.t.pct(ctx, vmid, "snapshot", strconv.Itoa(vmid), name, "--description", desc)
}

func (u pctUpgrade) rollback(ctx context.Context, _ string, vmid int, name string) error {
	return u.t.pct(ctx, vmid, "rollback", strconv.Itoa(vmid), name)
}

func (u pctUpgrade) delsnapshot(ctx context.Context, _ string, vmid int, name string) error {
	return u.t.pct(ctx, vmid, "delsnapshot", strconv.Itoa(vmid), name)
}

func (u pctUpgrade) shutdown(ctx context.Context, _ string, vmid int, grace time.Duration) error {
	secs := int(grace / time.Second)
	if secs < 1 {
		secs = 1
	}
	return u.t.pct(ctx, vmid, "shutdown", strconv.Itoa(vmid), "--timeout", strconv.Itoa(secs), "--forceStop", "1")
}

func (u pctUpgrade) read(ctx context.Context, _ string, a, b int) (string, string, error) {
	return u.t.files.readPair(ctx, a, b)
}

func (u pctUpgrade) write(ctx context.Context, _ string, a, b int, _, _, newA, newB string) error {
	return u.t.files.writePair(ctx, a, b, newA, newB)
}

func (u pctUpgrade) deleteKey(ctx context.Context, _ string, vmid int, key string) error {
	return u.t.pct(ctx, vmid, "set", strconv.Itoa(vmid), "--delete", key)
}

func (u pctUpgrade) free(ctx context.Context, _ string, volid string) error {
	_, err := u.t.tools.run(ctx, 0, u.t.tools.pvesm, "free", volid)
	return err
}
