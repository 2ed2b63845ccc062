package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// VMIDs: PVE's range, and how new ones are found. /cluster/nextid reserves
// nothing, so two creators can get the same id; create retries on
// "already exists" (see backend.go). Collision checks always use the
// cluster-wide resource list (CTs and VMs of every node), never the local
// `pct list` the predecessor used.
const (
	minVMID = 100
	maxVMID = 999999999
)

// vmidRange is an optional [first, last] limit from the config.
type vmidRange struct{ first, last int }

func parseVMIDRange(s string) (*vmidRange, error) {
	if s == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  fmt.Sprintf("[pve] vmid_range %q: ", s) + fmt.Sprintf(format, args...),
			Hint: fmt.Sprintf("write FIRST-LAST, two VMIDs within %d-%d with FIRST <= LAST, e.g. \"10000-19999\"", minVMID, maxVMID)}
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, bad("no '-' between FIRST and LAST")
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil:
		return nil, bad("FIRST %q is not a number", strings.TrimSpace(a))
	case err2 != nil:
		return nil, bad("LAST %q is not a number", strings.TrimSpace(b))
	case first < minVMID || first > maxVMID:
		return nil, bad("FIRST %d is out of range: VMIDs are %d-%d", first, minVMID, maxVMID)
	case last < minVMID || last > maxVMID:
		return nil, bad("LAST %d is out of range: VMIDs are %d-%d", last, minVMID, maxVMID)
	case first > last:
		return nil, bad("FIRST %d is greater than LAST %d (swap them: \"%d-%d\")", first, last, last, first)
	}
	return &vmidRange{first, last}, nil
}

// resource is a row of /cluster/resources --type vm.
type resource struct {
	ID     string      `json:"id"`   // "lxc/100" or "qemu/100"
	Type   string      `json:"type"` // lxc | qemu
	Node   string      `json:"node"`
	Status string      `json:"status"`
	VMID   json.Number `json:"vmid"`
	Name   string      `json:"name"`
	Lock   string      `json:"lock"`
	Tags   string      `json:"tags"`
}

func (r resource) vmid() int { n, _ := strconv.Atoi(r.VMID.String()); return n }

// hasTag compares as PVE does by default: tags are not case-sensitive.
func (r resource) hasTag(tag string) bool {
	for _, t := range r.tags() {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

func (r resource) tags() []string {
	return splitList(r.Tags)
}

// hasIDTag reports whether r carries any container's IDTag (CTs made
// before IDTag existed carry only Tag).
func (r resource) hasIDTag() bool {
	for _, t := range r.tags() {
		if len(t) > len(idTagPrefix) && strings.EqualFold(t[:len(idTagPrefix)], idTagPrefix) {
			return true
		}
	}
	return false
}

// nextFreeVMID asks the cluster for a free VMID, within the configured
// range when there is one (then guests, the cluster's resource list, is
// where it looks). avoid holds VMIDs that just lost a race.
func (b *Backend) nextFreeVMID(ctx context.Context, guests []resource, avoid map[int]bool) (int, error) {
	if b.vmids == nil {
		return b.tr.nextID(ctx, guests, avoid)
	}
	used := map[int]bool{}
	for _, g := range guests {
		used[g.vmid()] = true
	}
	for c := b.vmids.first; c <= b.vmids.last; c++ {
		if !used[c] && !avoid[c] {
			return c, nil
		}
	}
	return 0, &errdefs.Error{Cat: errdefs.ErrUnavailable,
		Msg:  fmt.Sprintf("no free VMID in [pve] vmid_range %d-%d", b.vmids.first, b.vmids.last),
		Hint: "widen vmid_range, or remove unused CTs"}
}

// parseNextID reads nextid's answer: a JSON string ("100"), or a bare
// number from older pvesh output formats.
func parseNextID(out string) (int, error) {
	out = strings.TrimSpace(out)
	var s string
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		s = out
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < minVMID || n > maxVMID {
		return 0, errdefs.New(errdefs.ErrInternal, "pvesh /cluster/nextid answered %q, not a VMID", out)
	}
	return n, nil
}

// requestedVMID validates the org.proxcage.vmid annotation against guests,
// the whole cluster's CTs and VMs. (A CT of this same id was refused
// before: see Create.)
func (b *Backend) requestedVMID(guests []resource, v string) (int, error) {
	n, perr := strconv.Atoi(v)
	if perr != nil || n < minVMID || n > maxVMID {
		return 0, errdefs.New(errdefs.ErrInvalidArgument, "annotation %s=%q: want an integer in %d..%d", AnnotationVMID, v, minVMID, maxVMID)
	}
	for _, g := range guests {
		if g.vmid() != n {
			continue
		}
		kind := map[string]string{"lxc": "CT", "qemu": "VM"}[g.Type]
		return 0, &errdefs.Error{Cat: errdefs.ErrAlreadyExists,
			Msg:  fmt.Sprintf("VMID %d is taken by %s %q on node %s", n, kind, g.Name, g.Node),
			Hint: "drop the " + AnnotationVMID + " annotation to let proxcage pick a free VMID, or choose another"}
	}
	return n, nil
}

// carrier is a CT that carries a container's id. unread: its config could
// not be read from here (a CT of another node, for a transport that reaches
// only its own): only its tag says so.
type carrier struct {
	resource
	unread bool
}

// carrying returns the CTs of guests that carry container id: its IDTag
// and, read from the CT's config, its description (which alone tells apart
// ids that differ only in case). legacy also reads every proxcage CT
// without an IDTag (made before IDTags), at one config read each.
func (b *Backend) carrying(ctx context.Context, guests []resource, id string, legacy bool) ([]carrier, error) {
	var out []carrier
	var unreadable error
	for _, g := range guests {
		if g.Type != "lxc" || !g.hasTag(Tag) {
			continue
		}
		if !g.hasTag(IDTag(id)) && (!legacy || g.hasIDTag()) {
			continue
		}
		owner, err := b.ociIDOf(ctx, g.Node, g.vmid())
		if errdefs.Category(err) == errdefs.ErrNotFound {
			if !b.tr.reachesAllNodes() && g.hasTag(IDTag(id)) {
				// Only this node's configs can be read: a CT of another
				// node that carries the id tag counts (refusing a create
				// is the safe side of not knowing).
				out = append(out, carrier{g, true})
			}
			continue // else gone since the listing
		}
		if err != nil {
			unreadable = err
			continue
		}
		if owner == id {
			out = append(out, carrier{resource: g})
		}
	}
	if len(out) == 0 && unreadable != nil {
		// Not finding it is no answer if a candidate could not be read.
		return nil, unreadable
	}
	return out, nil
}
