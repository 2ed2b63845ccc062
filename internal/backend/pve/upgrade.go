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
// state. Steps, each recorded before it runs: scratch, stop, snapshot,
// swap, start, commit; an undo records its own: unswapped, then the
// scratch CT and the snapshot are cleared as they go.
type upgradeJournal struct {
	Step       string   `json:"step"`
	ScratchID  string   `json:"scratchId"`
	Scratch    *private `json:"scratch,omitempty"`
	Snapshot   string   `json:"snapshot,omitempty"` // its name, recorded before it is taken
	Snapped    bool     `json:"snapped,omitempty"`  // PVE said it was taken
	OldConf    string   `json:"oldConf,omitempty"`  // the CT's config before the swap
	TmpConf    string   `json:"tmpConf,omitempty"`  // the scratch CT's, before the swap
	WasRunning bool     `json:"wasRunning"`
	Started    bool     `json:"started"` // the container's Started before
}

// UpgradeSnapshotPrefix names the snapshots upgrades take
// (proxcage-upgrade-UNIXTIME: unique, so a leftover never blocks the next).
const UpgradeSnapshotPrefix = "proxcage-upgrade-"

// Upgrade implements backend.Upgrader.
func (b *Backend) Upgrade(ctx context.Context, c *backend.Container, next backend.UpgradeTarget) error {
	pt := b.tr.upgradeOps()
	if err := pt.unsupported(next); err != nil {
		return err
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
			Hint: fmt.Sprintf("`proxcage upgrade --resume %s` finishes it (back to the old image, or the clean-up of one that had passed), or `proxcage delete --force --volumes %s` removes both CTs", c.ID, c.ID)}
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
	j := &upgradeJournal{Step: "scratch", ScratchID: c.ID + ".upgrade", WasRunning: st == "running", Started: p.Started}
	p.Upgrade = j
	if err := persist(c, p); err != nil {
		return err
	}
	err = b.upgrade(ctx, pt, c, &p, j, next)
	if err == nil {
		return nil
	}
	if rerr := b.undoUpgrade(ctx, pt, c, &p, j, false); rerr != nil {
		return errdefs.Wrap(errdefs.Category(err), err, "failed, and putting CT %d back failed too (%s); `proxcage upgrade --resume %s` tries again", p.VMID, errdefs.OneLine(rerr), c.ID)
	}
	return errdefs.Wrap(errdefs.Category(err), err, "failed, CT %d is back on its old image", p.VMID)
}

// persist saves p now: savePrivate, which calls the runtime's Persist.
func persist(c *backend.Container, p private) error { return savePrivate(c, p) }

func (b *Backend) upgrade(ctx context.Context, pt upgradeOps, c *backend.Container, p *private, j *upgradeJournal, next backend.UpgradeTarget) error {
	save := func(step string) error {
		j.Step = step
		p.Upgrade = j
		return persist(c, *p)
	}
	// 1. The scratch CT: the new image as a stopped CT without NIC or
	// volumes, made as any other (template, VMID, ownership, rollback),
	// on the CT's node.
	if err := b.scratch(ctx, c, j, next); err != nil {
		return errdefs.Context(err, "make the new image's CT", "")
	}
	if err := save("stop"); err != nil {
		return err
	}
	// 2. Stop the CT (pct shutdown --forceStop after the grace): the
	// snapshot then holds what the old process wrote last.
	if j.WasRunning {
		if err := pt.shutdown(ctx, p.Node, p.VMID, next.Stop); err != nil {
			if st, serr := b.tr.status(ctx, p.Node, p.VMID); serr != nil || st != "stopped" {
				return errdefs.Context(err, "stop", "")
			}
		}
	}
	// 3. A snapshot, where every volume's storage can take one; its
	// name is recorded first, so an undo after a crash finds it.
	j.Snapshot = fmt.Sprintf("%s%d", UpgradeSnapshotPrefix, time.Now().Unix())
	if err := save("snapshot"); err != nil {
		return err
	}
	snapErr := pt.snapshot(ctx, p.Node, p.VMID, j.Snapshot, "proxcage upgrade to "+next.Image.Name+" "+next.Image.Digest)
	switch {
	case snapErr == nil:
		j.Snapped = true
	case strings.Contains(snapErr.Error(), "snapshot feature is not available"):
		j.Snapshot = ""
		b.log.Warn("no snapshot: a volume's storage (or a bind mount) has none; on failure the config is put back, the data of the volumes is not", "id", c.ID, "vmid", p.VMID)
	default:
		return errdefs.Context(snapErr, "snapshot", "")
	}
	if err := save("swap"); err != nil {
		return err
	}
	// 4. The swap: one read-check-write under both config locks.
	oldConf, tmpConf, err := pt.swap(ctx, p.Node, p.VMID, j.Scratch.VMID, func(target, scratch string) (string, string, error) {
		j.OldConf, j.TmpConf = target, scratch
		// Recorded before the write: an undo then knows both old texts.
		if err := persist(c, *p); err != nil {
			return "", "", err
		}
		nt, ns, err := swapImage(target, scratch)
		if err != nil {
			return "", "", errdefs.New(errdefs.ErrFailedPrecondition, "swap the rootfs of CT %d: %v", p.VMID, err)
		}
		return nt, ns, nil
	})
	if err != nil {
		return err
	}
	j.OldConf, j.TmpConf = oldConf, tmpConf
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
	p.Upgraded = true
	if err := save("commit"); err != nil {
		return err
	}
	// 6. Commit: what the upgrade no longer needs goes; a failure here
	// leaves the journal at commit for --resume.
	if err := b.commitUpgrade(ctx, pt, c, p, j); err != nil {
		b.log.Warn("the upgrade stands, its clean-up did not finish: `proxcage upgrade --resume "+c.ID+"` finishes it", "err", errdefs.OneLine(err))
		return nil
	}
	p.Upgrade = nil
	return persist(c, *p)
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

// scratchCT is the scratch CT as a container of the backend, for its
// ownership check and destroy; nil when none was made.
func (j *upgradeJournal) scratchCT() *backend.Container {
	if j.Scratch == nil || j.Scratch.VMID == 0 {
		return nil
	}
	sc := &backend.Container{ID: j.ScratchID}
	if err := savePrivate(sc, *j.Scratch); err != nil {
		return nil
	}
	return sc
}

// scratchOurs reports whether the scratch CT's VMID still holds the
// scratch CT (not gone, not another's since: a VMID is reused).
func (b *Backend) scratchOurs(ctx context.Context, p *private, j *upgradeJournal) (bool, error) {
	if j.Scratch == nil || j.Scratch.VMID == 0 {
		return false, nil
	}
	node := p.Node
	own, err := b.inspect(ctx, j.ScratchID, &node, j.Scratch.VMID)
	// A crash during the scratch CT's create leaves its task running
	// (PVE's worker goes on without its client over the API) and the CT
	// under its create lock, not saying whose it is yet: wait for that,
	// as a failed create's rollback does (settle). Taken for not ours,
	// the scratch CT was forgotten and left behind once its create ended.
	for deadline := time.Now().Add(b.timeout); err == nil && own == creating && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		own, err = b.inspect(ctx, j.ScratchID, &node, j.Scratch.VMID)
	}
	if err == nil && own == creating {
		return false, &errdefs.Error{Cat: errdefs.ErrUnavailable,
			Msg:  fmt.Sprintf("the scratch CT %d is still under its create lock after %s", j.Scratch.VMID, b.timeout),
			Hint: fmt.Sprintf("wait for its create task to end, then run the command again; if none runs (PVE UI, Tasks), `pct unlock %d` on its node first", j.Scratch.VMID)}
	}
	return own == ours, err
}

// dropScratchTemplate removes the new image's template when the
// upgrade's scratch CT put it on the storage (private.FreshTemplate): an
// upgrade that does not stand leaves none, as a failed create leaves
// none (Delete with RollBack). Before, the scratch CT's Delete kept it.
func (b *Backend) dropScratchTemplate(ctx context.Context, j *upgradeJournal) {
	if j.Scratch != nil && j.Scratch.FreshTemplate && j.Scratch.Template != "" {
		b.dropTemplate(ctx, j.Scratch.Node, j.Scratch.Template)
	}
}

// commitUpgrade removes what the upgrade no longer needs, each part
// recorded as done: the snapshot, then the scratch CT (its config names
// the old rootfs now), then the old rootfs, unless anything still names
// it.
func (b *Backend) commitUpgrade(ctx context.Context, pt upgradeOps, c *backend.Container, p *private, j *upgradeJournal) error {
	oldRootfs := rootfsVolume(confValue(j.OldConf, "rootfs"))
	if j.Snapped {
		// Its removal makes the old rootfs unusedN of the CT
		// (AbstractConfig.pm snapshot_delete).
		if err := pt.delsnapshot(ctx, p.Node, p.VMID, j.Snapshot); err != nil && !strings.Contains(err.Error(), "does not exist") {
			return errdefs.Context(err, "remove the upgrade's snapshot", "")
		}
		j.Snapped, j.Snapshot = false, ""
		if err := persist(c, *p); err != nil {
			return err
		}
	}
	if sc := j.scratchCT(); sc != nil {
		// Delete checks that the VMID still holds the scratch CT.
		if err := b.Delete(ctx, sc, true); err != nil {
			return errdefs.Context(err, "remove the scratch CT", "")
		}
		j.Scratch = nil
		if err := persist(c, *p); err != nil {
			return err
		}
	}
	if oldRootfs != "" && !b.volumeNamed(ctx, pt, p, oldRootfs) {
		b.freeUnused(ctx, pt, p.Node, p.VMID, oldRootfs)
	}
	return nil
}

// volumeNamed reports whether vol is still named by the CT's config
// (any section but as unusedN) or by a guest that owns its name.
func (b *Backend) volumeNamed(ctx context.Context, pt upgradeOps, p *private, vol string) bool {
	conf, err := pt.readOne(ctx, p.Node, p.VMID)
	if err != nil {
		return true // unsure: keep it
	}
	for _, l := range strings.Split(conf, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(k, "unused") {
			continue
		}
		if rootfsVolume(v) == vol {
			return true
		}
	}
	return false
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
// step the journal names, and removes the scratch CT and the snapshot,
// recording each part as done (a failure, then --resume, goes on from
// there). The scratch CT's VMID is touched only while it holds the
// scratch CT. teardown (delete of a container with an unfinished
// upgrade): no rollback, no start; both CTs are about to go.
func (b *Backend) undoUpgrade(ctx context.Context, pt upgradeOps, c *backend.Container, p *private, j *upgradeJournal, teardown bool) error {
	ctx = context.WithoutCancel(ctx)
	save := func(step string) error {
		if step != "" {
			j.Step = step
		}
		p.Upgrade = j
		return persist(c, *p)
	}
	scratchOurs, err := b.scratchOurs(ctx, p, j)
	if err != nil {
		return errdefs.Context(err, "look at the scratch CT", "")
	}
	swapped := j.Step == "start" || j.Step == "commit" || j.Step == "swap" && j.OldConf != ""
	if swapped {
		if st, err := b.tr.status(ctx, p.Node, p.VMID); err == nil && st == "running" {
			if err := b.tr.stop(ctx, p.Node, p.VMID); err != nil {
				return errdefs.Context(err, "stop", "")
			}
		}
		newRootfs := rootfsVolume(confValue(j.TmpConf, "rootfs"))
		// The data of the volumes back only when the new image ran.
		rollback := j.Snapped && !teardown && (j.Step == "start" || j.Step == "commit")
		if rollback {
			// Config and volume data as at the snapshot; the new rootfs,
			// not in it, becomes unusedN (Config.pm
			// __snapshot_rollback_get_unused): the key goes, the volume
			// stays for the scratch CT's destroy.
			if err := pt.rollback(ctx, p.Node, p.VMID, j.Snapshot); err != nil {
				return errdefs.Context(err, "rollback", "")
			}
			b.dropUnused(ctx, pt, p.Node, p.VMID, newRootfs)
		}
		// The configs as they were: the scratch CT's rootfs is its own
		// again, so its destroy frees the new rootfs and never the CT's
		// (PVE frees by name, and the CT's rootfs may carry the scratch
		// VMID's name from an earlier upgrade).
		_, _, err := pt.swap(ctx, p.Node, p.VMID, vmidIf(scratchOurs, j), func(target, scratch string) (string, string, error) {
			nt := j.OldConf
			if rollback {
				nt = target // the rollback's: the CT as it was
			}
			return nt, j.TmpConf, nil
		})
		if err != nil {
			return err
		}
		if err := save("unswapped"); err != nil {
			return err
		}
	}
	if scratchOurs {
		if err := b.Delete(ctx, j.scratchCT(), true); err != nil {
			return errdefs.Context(err, "remove the scratch CT", "")
		}
	}
	b.dropScratchTemplate(ctx, j)
	j.Scratch = nil
	if err := save(""); err != nil {
		return err
	}
	if j.Snapshot != "" && !teardown {
		if err := pt.delsnapshot(ctx, p.Node, p.VMID, j.Snapshot); err != nil && !strings.Contains(err.Error(), "does not exist") {
			return errdefs.Context(err, "remove the upgrade's snapshot", "")
		}
	}
	j.Snapshot, j.Snapped = "", false
	if err := save(""); err != nil {
		return err
	}
	p.Started = j.Started
	if j.WasRunning && !teardown {
		if st, err := b.tr.status(ctx, p.Node, p.VMID); err == nil && st != "running" {
			if err := b.tr.start(ctx, p.Node, p.VMID); err != nil {
				return errdefs.Context(err, "start the CT again", "")
			}
		}
	}
	p.Upgrade = nil
	return persist(c, *p)
}

// vmidIf is the scratch CT's VMID when it is still the scratch CT's,
// else 0 (swap then leaves that VMID's config alone).
func vmidIf(ok bool, j *upgradeJournal) int {
	if ok {
		return j.Scratch.VMID
	}
	return 0
}

// ResumeUpgrade implements backend.Upgrader: an upgrade a crash left is
// finished, forward when the new image had passed its check (only the
// clean-up was left), else backward (the CT as it was before).
func (b *Backend) ResumeUpgrade(ctx context.Context, c *backend.Container) (found, forward bool, err error) {
	p, err := loadPrivate(c)
	if err != nil || p.Upgrade == nil {
		return false, false, err
	}
	pt := b.tr.upgradeOps()
	j := p.Upgrade
	if j.Step == "commit" {
		if err := b.commitUpgrade(ctx, pt, c, &p, j); err != nil {
			return true, true, err
		}
		p.Upgrade = nil
		return true, true, persist(c, p)
	}
	return true, false, b.undoUpgrade(ctx, pt, c, &p, j, false)
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

// swapPair reads the config files of CT a and CT b (b 0: a only) under
// both config locks (lower VMID first, so two upgrades cannot deadlock),
// lets fn make their new texts, and writes each that changed through a
// temp file renamed over it (PVE's file_set_contents): the scratch CT's
// first, so that no crash in between leaves both naming one rootfs with
// the CT's written already. A lock line in either (vzdump's backup lock,
// a migration) refuses the write.
func (f ctFiles) swapPair(ctx context.Context, a, b int, fn func(ca, cb string) (string, string, error)) (string, string, error) {
	fail := func(err error) error {
		var e *errdefs.Error
		if errors.As(err, &e) {
			return err
		}
		te := classify("edit the CT configs of an upgrade", a, -1, err.Error())
		return te.asError()
	}
	vmids := []int{a}
	if b != 0 {
		vmids = append(vmids, b)
		if b < a {
			vmids = []int{b, a}
		}
	}
	var unlocks []func()
	defer func() {
		for _, u := range unlocks {
			u()
		}
	}()
	for _, v := range vmids {
		unlock, err := f.lock(ctx, v)
		if err != nil {
			return "", "", fail(err)
		}
		unlocks = append(unlocks, unlock)
	}
	path := func(v int) string { return filepath.Join(f.configDir, strconv.Itoa(v)+".conf") }
	read := func(v int) (string, error) {
		if v == 0 {
			return "", nil
		}
		data, err := os.ReadFile(path(v))
		if errors.Is(err, os.ErrNotExist) {
			return "", errdefs.New(errdefs.ErrNotFound, "the config of CT %d is missing: %v", v, err)
		}
		return string(data), err
	}
	ca, err := read(a)
	if err != nil {
		return "", "", fail(err)
	}
	cb, err := read(b)
	if err != nil {
		return "", "", fail(err)
	}
	na, nb, err := fn(ca, cb)
	if err != nil {
		return ca, cb, err
	}
	for _, w := range []struct {
		vmid     int
		old, new string
	}{{b, cb, nb}, {a, ca, na}} {
		if w.vmid == 0 || w.new == w.old {
			continue
		}
		if err := atomicfile.Write(path(w.vmid), []byte(w.new), atomicfile.Options{Perm: 0o640}); err != nil {
			return ca, cb, fail(err)
		}
	}
	return ca, cb, nil
}

// upgradeOps are the steps of an upgrade that differ between the
// transports. Configs are read and written as pct's config file text
// (the API's config rendered so, see apiUpgrade), so swapImage serves
// both.
type upgradeOps interface {
	// unsupported says what of next this transport's upgrade cannot do
	// (nil: all of it), before anything changes.
	unsupported(next backend.UpgradeTarget) error
	snapshot(ctx context.Context, node string, vmid int, name, description string) error
	rollback(ctx context.Context, node string, vmid int, name string) error
	delsnapshot(ctx context.Context, node string, vmid int, name string) error
	shutdown(ctx context.Context, node string, vmid int, grace time.Duration) error
	// swap reads the configs of CT a and CT b (b 0: a only), lets fn
	// make their new texts from them and writes those, as one step under
	// both config locks (pct) or against the digests read (API); it
	// returns what it read.
	swap(ctx context.Context, node string, a, b int, fn func(ca, cb string) (string, string, error)) (string, string, error)
	// readOne is CT vmid's whole config (pct: every section).
	readOne(ctx context.Context, node string, vmid int) (string, error)
	deleteKey(ctx context.Context, node string, vmid int, key string) error
	free(ctx context.Context, node, volid string) error
}

func (t *pctTransport) upgradeOps() upgradeOps { return pctUpgrade{t} }

// pctUpgrade: pct's snapshot commands, the node's config files under
// pct's config locks (raw lxc.* lines included).
type pctUpgrade struct{ t *pctTransport }

// unsupported: on the node, pct writes the raw lines and exec reaches the
// CT, so every upgrade is one pct can do.
func (pctUpgrade) unsupported(backend.UpgradeTarget) error { return nil }

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

func (u pctUpgrade) swap(ctx context.Context, _ string, a, b int, fn func(ca, cb string) (string, string, error)) (string, string, error) {
	return u.t.files.swapPair(ctx, a, b, fn)
}

func (u pctUpgrade) readOne(ctx context.Context, _ string, vmid int) (string, error) {
	var out string
	_, _, err := u.t.files.swapPair(ctx, vmid, 0, func(ca, _ string) (string, string, error) { out = ca; return ca, "", nil })
	return out, err
}

func (u pctUpgrade) deleteKey(ctx context.Context, _ string, vmid int, key string) error {
	return u.t.pct(ctx, vmid, "set", strconv.Itoa(vmid), "--delete", key)
}

func (u pctUpgrade) free(ctx context.Context, _ string, volid string) error {
	_, err := u.t.tools.run(ctx, 0, u.t.tools.pvesm, "free", volid)
	return err
}
