package pve

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// Removing a container: its CT (only one whose description names it), an
// unfinished upgrade undone first, and a CT found by its tags when the
// state is gone.

// Delete implements backend.Backend: destroy with purge; with force a
// running CT is stopped by PVE first, and PVE's own refusal says when a
// CT still runs. Only a CT whose description names this container is
// destroyed; one that is gone (or whose VMID another CT took since) is
// not an error.
func (b *Backend) Delete(ctx context.Context, c *backend.Container, force bool) error {
	p, err := loadPrivate(c)
	if err != nil {
		return err
	}
	if len(p.Volumes) > 0 && !c.DeleteVolumes && p.VMID != 0 {
		names := make([]string, len(p.Volumes))
		for i, v := range p.Volumes {
			names[i] = v.Name + " at " + v.Path
		}
		return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
			Msg:  fmt.Sprintf("CT %d holds the volumes %s, and PVE frees a CT's volumes with it", p.VMID, strings.Join(names, ", ")),
			Hint: fmt.Sprintf("`proxcage delete --volumes %s` removes the CT and its data; to keep the data, move the volume to another CT first (pct move-volume) or back it up (vzdump)", c.ID)}
	}
	if p.Upgrade != nil {
		// A crashed upgrade: both CTs back as they were first, so that
		// the destroy below frees what the CT owns.
		if err := b.undoUpgrade(ctx, b.tr.upgradeOps(), c, &p, p.Upgrade, true); err != nil {
			return errdefs.Context(err, "undo the unfinished upgrade", "")
		}
	}
	// An upgraded CT's rootfs carries the scratch CT's VMID in its name,
	// so PVE's destroy leaves it ("isn't the owner"): read from the CT's
	// own config (not the state, which /run loses) while the CT is ours,
	// and freed once the destroy took the CT.
	// Only for an upgraded CT: the extra read is not every delete's.
	var foreignRootfs string
	if p.VMID != 0 && p.Upgraded {
		if conf, err := b.tr.config(ctx, p.Node, p.VMID); err == nil {
			owner, ok := OCIIDFromDescription(conf["description"])
			if v := rootfsVolume(conf["rootfs"]); ok && owner == c.ID && v != "" && !ownsVolume(p.VMID, v) && !strings.HasPrefix(v, "/") {
				foreignRootfs = v
			}
		}
	}
	if err := b.delete(ctx, c, p, force); err != nil {
		return err
	}
	if foreignRootfs != "" {
		if st, err := b.tr.status(ctx, p.Node, p.VMID); err == nil {
			b.log.Warn("the CT is still there: its rootfs is not freed", "vmid", p.VMID, "status", st)
		} else if err := b.tr.upgradeOps().free(ctx, p.Node, foreignRootfs); err != nil {
			b.log.Warn("free the rootfs an upgrade made", "volume", foreignRootfs, "err", errdefs.OneLine(err))
		}
	}
	if p.KeeperDir != "" {
		// The CT is gone: its keeper ends (or, never started, is ended).
		endKeeper(p, p.KeeperDir, unix.SIGKILL)
	}
	if c.RollBack && p.FreshTemplate {
		// A failed create or run changes nothing: the template it stored
		// goes too. (A delete keeps it, a cache for the next create.)
		b.dropTemplate(ctx, p.Node, p.Template)
	}
	return nil
}

func (b *Backend) delete(ctx context.Context, c *backend.Container, p private, force bool) error {
	if p.VMID == 0 {
		// Create records the VMID before it asks PVE for a CT, and clears
		// it only once no CT of ours is left: nothing to remove. (A CT
		// whose record is gone altogether is found by ReclaimByID.)
		if force && p.Template == "" {
			// It died before its template was recorded, perhaps while
			// writing it: the dead writer's temp file goes too.
			if rm, err := b.tr.pruneScratch(ctx, nil); err != nil {
				b.log.Debug("remove dead writers' temp files", "err", err)
			} else if len(rm) > 0 {
				b.log.Info("removed temp files of a template write that died", "files", rm)
			}
		}
		return nil
	}
	node := p.Node
	own, err := b.inspect(ctx, c.ID, &node, p.VMID)
	if err != nil {
		return err
	}
	if own == creating && p.CreateTask != "" {
		// Our create that outlived the timeout: wait for it to end.
		if err := b.tr.waitCreate(ctx, p.VMID, p.CreateTask); err != nil {
			var tr *taskRunning
			if errors.As(err, &tr) {
				return err
			}
		}
		if own, err = b.inspect(ctx, c.ID, &node, p.VMID); err != nil {
			return err
		}
	}
	if node != p.Node {
		p.Node = node
		_ = savePrivate(c, p)
	}
	switch own {
	case gone:
		return nil
	case theirs:
		b.log.Warn("the CT at the recorded VMID is not this container's any more (removed outside proxcage, VMID reused): left alone", "id", c.ID, "vmid", p.VMID)
		return nil
	case creating:
		return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
			Msg:  fmt.Sprintf("CT %d on %s is under the lock of a create that did not finish, and nothing says whose it is yet", p.VMID, cmpOr(node, "this node")),
			Hint: fmt.Sprintf("wait and retry; if no create task runs (PVE UI, Tasks), check it with `pct config %d` and remove it by hand (`pct unlock %d && pct destroy %d`)", p.VMID, p.VMID, p.VMID)}
	}
	if !force {
		err := b.tr.destroy(ctx, node, p.VMID, false)
		switch errdefs.Category(err) {
		case errdefs.ErrNotFound:
			return nil
		case errdefs.ErrFailedPrecondition:
			if strings.Contains(err.Error(), "running") {
				return backend.NotStopped(c.ID, fmt.Sprintf("running (CT %d)", p.VMID))
			}
		}
		return err
	}
	return b.destroy(ctx, c.ID, node, p.VMID)
}

// ReclaimByID implements backend.Reclaimer: the CT's tag and description
// identify it cluster-wide even when the state directory is gone. A
// transport that does not reach every node (pct) removes only the CTs of
// its own.
func (b *Backend) ReclaimByID(ctx context.Context, id string) (bool, error) {
	guests, err := b.tr.guests(ctx)
	if err != nil {
		return false, err
	}
	// CTs older than IDTags are read too: this is where they are cleaned.
	cts, err := b.carrying(ctx, guests, id, true)
	if err != nil {
		return false, err
	}
	for i, g := range cts {
		if g.unread {
			return i > 0, &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
				Msg:  fmt.Sprintf("CT %d on node %s carries the tag of container %q, and %s cannot reach it from this node", g.vmid(), g.Node, id, b.tr.name()),
				Hint: "run `proxcage delete --force " + id + "` on " + g.Node + ", or use [pve] transport = \"api\""}
		}
		if err := b.destroy(ctx, id, g.Node, g.vmid()); err != nil {
			return i > 0, err
		}
	}
	return len(cts) > 0, nil
}
