package pve

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// Whose CT sits at a VMID. proxcage only ever destroys a CT whose
// description carries the container's own id: a record's VMID may by now
// hold another CT (removed outside proxcage, the VMID reused), and a
// create that failed uncertainly leaves a CT nobody can name yet.
type ownership int

const (
	gone     ownership = iota // no CT at that VMID
	ours                      // description says this container
	theirs                    // another CT (another id, or not proxcage's)
	creating                  // under its create lock, no description yet
)

func (o ownership) String() string {
	return [...]string{"gone", "ours", "theirs", "creating"}[o]
}

// inspect reads the CT at node/vmid and says whose it is. A CT that is
// not on node is looked up cluster-wide: one of ours that HA or a
// migration moved is followed, and *node is updated.
func (b *Backend) inspect(ctx context.Context, id string, node *string, vmid int) (ownership, error) {
	cfg, err := b.tr.config(ctx, *node, vmid)
	if errdefs.Category(err) == errdefs.ErrNotFound {
		moved, merr := b.findMoved(ctx, *node, vmid)
		if merr != nil || moved == "" {
			return gone, merr
		}
		*node = moved
		cfg, err = b.tr.config(ctx, moved, vmid)
		if errdefs.Category(err) == errdefs.ErrNotFound {
			return gone, nil
		}
	}
	if err != nil {
		return gone, err
	}
	if owner, ok := OCIIDFromDescription(cfg["description"]); ok {
		if owner == id {
			return ours, nil
		}
		return theirs, nil
	}
	if cfg["lock"] == "create" {
		return creating, nil
	}
	return theirs, nil
}

// findMoved returns the node that now holds CT vmid when it is not node
// ("" when no node holds it). A transport that reaches only its own node
// (pct) cannot follow: a CT elsewhere is an error that says where.
func (b *Backend) findMoved(ctx context.Context, node string, vmid int) (string, error) {
	guests, err := b.tr.guests(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range guests {
		if g.vmid() != vmid || g.Type != "lxc" {
			continue
		}
		if !b.tr.reachesAllNodes() {
			return "", &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
				Msg:  fmt.Sprintf("CT %d is on node %s now (migrated?), not on this node", vmid, g.Node),
				Hint: "run proxcage on " + g.Node + ", or use [pve] transport = \"api\" which follows CTs across the cluster"}
		}
		if g.Node != node {
			b.log.Info("CT moved to another node", "vmid", vmid, "from", node, "to", g.Node)
			return g.Node, nil
		}
	}
	return "", nil
}

// follow runs op on the container's CT; when PVE says the CT is not on
// the recorded node, it finds where the CT went, records that, and runs op
// once more. A transport that reaches only its own node has nowhere to
// look.
func (b *Backend) follow(ctx context.Context, c *backend.Container, p *private, op func() error) error {
	err := op()
	if errdefs.Category(err) != errdefs.ErrNotFound || !b.tr.reachesAllNodes() {
		return err
	}
	moved, merr := b.findMoved(ctx, p.Node, p.VMID)
	if merr != nil || moved == "" {
		return err
	}
	p.Node = moved
	if serr := savePrivate(c, *p); serr != nil {
		return serr
	}
	return op()
}

// settle finds out, after a create that failed, whether a CT of ours is
// left at vmid and removes it. It waits (up to [pve] timeout) for a create
// lock to go, as only then does the CT say whose it is. It reports whether
// nothing of ours is left.
func (b *Backend) settle(ctx context.Context, id, node string, vmid int) bool {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(b.timeout)
	for {
		own, err := b.inspect(ctx, id, &node, vmid)
		switch {
		case err != nil:
			b.log.Debug("rollback: cannot tell whose CT is at the VMID", "vmid", vmid, "err", err)
			return false
		case own == gone || own == theirs:
			return true
		case own == ours:
			if err := b.destroy(ctx, id, node, vmid); err != nil {
				b.log.Debug("rollback: destroy half-created CT failed", "vmid", vmid, "err", err)
				return false
			}
			return true
		}
		if time.Now().After(deadline) {
			b.log.Debug("rollback: CT still under its create lock", "vmid", vmid)
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// destroy purges CT vmid, stopping it if it runs, after checking that it
// is this container's. After an uncertain failure (a gateway 5xx, a
// dropped connection) it looks again before a second try: the first may
// have worked and the VMID be someone else's already.
func (b *Backend) destroy(ctx context.Context, id, node string, vmid int) error {
	for attempt := 1; ; attempt++ {
		err := b.tr.destroy(ctx, node, vmid, true)
		if err != nil && strings.Contains(err.Error(), "CT is locked (create)") && b.tr.clearsStaleLocks() {
			// Ours (checked) and still locked after the retries: the lock
			// outlived a pct create that was killed (we hold the
			// container's lock, so no proxcage create of it still runs).
			b.log.Info("clearing the create lock of a CT whose create died", "vmid", vmid)
			if uerr := b.tr.unlock(ctx, node, vmid); uerr != nil {
				return errdefs.WithHint(err, errdefs.Hint(uerr))
			}
			err = b.tr.destroy(ctx, node, vmid, true)
		}
		if err == nil || errdefs.Category(err) == errdefs.ErrNotFound {
			return nil
		}
		if !uncertain(err) || attempt >= 3 {
			return err
		}
		own, ierr := b.inspect(ctx, id, &node, vmid)
		if ierr != nil {
			return err
		}
		if own != ours {
			return nil
		}
		b.log.Debug("destroying again: the CT is still there", "vmid", vmid, "reason", err.Error())
	}
}
