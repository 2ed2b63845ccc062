package pve

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// errorRule classifies one kind of pct/pvesh failure. The table is data:
// adding a newly seen PVE message is one row (and one test case).
type errorRule struct {
	re    *regexp.Regexp
	cat   error
	retry bool // transient: the caller may retry with backoff
	// hint may use $1.. from re and {vmid}.
	hint string
	// hintFn, when set, builds the hint from re's submatches instead.
	hintFn func(m []string) string
	// storage is the submatch naming a storage that does not exist: the
	// backend knows which [pve] key names it (Backend.explain).
	storage int
}

func rule(pattern string, cat error, retry bool, hint string) errorRule {
	return errorRule{re: regexp.MustCompile(pattern), cat: cat, retry: retry, hint: hint}
}

// contentKey is the [pve] key whose storage must allow content.
var contentKey = map[string]string{"rootdir": "rootfs_storage", "vztmpl": "template_storage"}

// contentHint: the storage named by key lacks content.
func contentHint(key, storage, content string) string {
	return fmt.Sprintf("[pve] %s = %q: that storage does not allow content %s; set %s to a storage listed by `pvesm status --content %s`, or add %s to the storage's content (Datacenter > Storage)",
		key, storage, content, key, content, content)
}

// missingStorageHint: the storage named by keys does not exist.
func missingStorageHint(keys []string, storage string) string {
	content := make([]string, len(keys))
	for i, k := range keys {
		content[i] = map[string]string{"rootfs_storage": "rootdir", "template_storage": "vztmpl"}[k]
	}
	return fmt.Sprintf("[pve] %s = %q: no such storage on this node; set it to one listed by `pvesm status --content %s`",
		strings.Join(keys, " and "), storage, strings.Join(content, ","))
}

// bridgeHint is the one hint for a missing bridge, over pct and the API.
func bridgeHint(bridge string) string {
	return fmt.Sprintf("bridge %q does not exist on the node: set [pve] bridge (or bridge= in the bundle annotation org.proxcage.net0) to one the node has; "+
		"`pvesh get /nodes/NODE/network --type any_bridge` lists them", bridge)
}

// nodeHint: a node name the cluster does not know.
const nodeHint = "set [pve] node to a node of the cluster (`pvesh get /nodes` lists them), or to \"auto\""

// errorRules are tried in order; the first match wins, so specific texts
// come before the generic "unable to create CT" wrapper.
var errorRules = []errorRule{
	rule(`(CT|VM) (\d+) already exists on node '([^']+)'`, errdefs.ErrAlreadyExists, false,
		"VMID $2 is taken by a $1 on node $3; drop the org.proxcage.vmid annotation to let proxcage pick a free one, or choose another"),
	rule(`(?:VM|CT) (\d+) already exists`, errdefs.ErrAlreadyExists, false,
		"VMID $1 is taken; drop the org.proxcage.vmid annotation to let proxcage pick a free one, or choose another"),
	rule(`Configuration file '[^']*' does not exist`, errdefs.ErrNotFound, false,
		"the CT is gone (removed outside proxcage?); `proxcage delete --force ID` removes what is left"),
	rule(`unable to destroy CT \d+ - container is running`, errdefs.ErrFailedPrecondition, false,
		"stop it first, or use `proxcage delete --force`"),
	rule(`unable to remove CT (\d+) - used in HA resources`, errdefs.ErrFailedPrecondition, false,
		"remove it from HA first: ha-manager remove ct:$1"),
	rule(`CT \d+ already running`, errdefs.ErrFailedPrecondition, false, ""),
	rule(`can't overwrite running container`, errdefs.ErrFailedPrecondition, false,
		"stop the CT before changing it"),
	rule(`(?:CT \d+ not running|container '\d+' not running!|unable to get PID for CT \d+ \(not running\?\))`, errdefs.ErrFailedPrecondition, false, ""),
	rule(`CT is locked \((\w+)\)`, errdefs.ErrUnavailable, true,
		"a '$1' operation holds the CT lock; wait for it to finish, or `pct unlock {vmid}` if it is stale"),
	rule(`can't lock file '[^']*' - got timeout`, errdefs.ErrUnavailable, true,
		"another operation holds the CT config lock; retry later"),
	rule(`got no worker upid`, errdefs.ErrUnavailable, true, "pvedaemon is overloaded or restarting; retry"),
	rule(`(?:file does not look like a template archive|unrecognized compression format|less than 10 members in archive)`, errdefs.ErrInvalidArgument, false,
		"the template is not a usable CT archive; `proxcage templates prune` and retry to rebuild it"),
	{re: regexp.MustCompile(`storage '([^']+)' does not exist`), cat: errdefs.ErrInvalidArgument, storage: 1,
		hint: "storage '$1' does not exist on this node: set [pve] rootfs_storage or template_storage, whichever names it, to one listed by `pvesm status`"},
	{re: regexp.MustCompile(`content type '(\w+)' is not available or configured on storage '([^']+)'`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string {
			if key := contentKey[m[1]]; key != "" {
				return contentHint(key, m[2], m[1])
			}
			return fmt.Sprintf("storage '%s' does not allow content %s: pick one from `pvesm status --content %s`", m[2], m[1], m[1])
		}},
	{re: regexp.MustCompile(`hostname lookup '([^']+)' failed`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string { return fmt.Sprintf("PVE does not know a node %q: ", m[1]) + nodeHint }},
	rule(`Only root can pass arbitrary filesystem paths`, errdefs.ErrPermissionDenied, false,
		"bind mounts (mpN with a host path) are root@pam only: run proxcage as root on the PVE node (pct transport), or drop the bind mount"),
	rule(`(?:only allowed for root@pam|Permission check failed \(mount point type bind)`, errdefs.ErrPermissionDenied, false,
		"this option is root@pam only: run proxcage as root on the PVE node (pct transport)"),
	rule(`Permission check failed \(([^,]+), ([^)]+)\)`, errdefs.ErrPermissionDenied, false,
		"the user or API token lacks the privilege $2 on $1: grant it, e.g. `pveum acl modify $1 --roles PVEVMAdmin --tokens TOKENID` (tokens with privilege separation need their own ACL)"),
	rule(`Permission check failed`, errdefs.ErrPermissionDenied, false,
		"the user or API token lacks a privilege for this call: grant it with `pveum acl modify`"),
	rule(`Quotas are not supported by unprivileged containers`, errdefs.ErrInvalidArgument, false,
		"drop quota=1 from the mount options"),
	rule(`MTU size '(\d+)' is bigger than bridge MTU '(\d+)'`, errdefs.ErrInvalidArgument, false,
		"use an MTU of at most $2, or raise the bridge's MTU"),
	{re: regexp.MustCompile(`bridge '([^']+)' does not exist`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string { return bridgeHint(m[1]) }},
	rule(`'mknod' feature requested, but kernel too old`, errdefs.ErrFailedPrecondition, false,
		"drop mknod=1 from the features, or upgrade the node's kernel"),
	rule(`Parameter verification failed`, errdefs.ErrInvalidArgument, false,
		"a CT option is out of range or malformed (see the parameter named above)"),
	rule(`unable to (?:create|restore) CT \d+`, errdefs.ErrFailedPrecondition, false, ""),
}

// toolError is a failed PVE tool call, classified.
type toolError struct {
	Step   string // e.g. "pct create"
	VMID   int
	Code   int    // exit status, -1 when the tool did not exit (timeout, not found)
	Stderr string // the tool's own words
	Cat    error
	Retry  bool
	Hint   string
	// MissingStorage is a storage PVE says does not exist.
	MissingStorage string
}

func (e *toolError) Error() string {
	words := oneLine(e.Stderr)
	if words == "" {
		words = "no error text"
	}
	ct := ""
	if e.VMID > 0 {
		ct = fmt.Sprintf(" (CT %d)", e.VMID)
	}
	if e.Code >= 0 {
		return fmt.Sprintf("%s%s failed (exit %d): %s", e.Step, ct, e.Code, words)
	}
	return fmt.Sprintf("%s%s failed: %s", e.Step, ct, words)
}

// Unwrap exposes the category to errors.Is.
func (e *toolError) Unwrap() error { return e.Cat }

// classify turns a failed call into a categorised error with a hint. Text
// that matches no rule keeps pct's words under the internal category.
func classify(step string, vmid, code int, stderr string) *toolError {
	e := &toolError{Step: step, VMID: vmid, Code: code, Stderr: stderr, Cat: errdefs.ErrInternal}
	for _, r := range errorRules {
		m := r.re.FindStringSubmatchIndex(stderr)
		if m == nil {
			continue
		}
		e.Cat, e.Retry = r.cat, r.retry
		if r.hint != "" {
			h := string(r.re.ExpandString(nil, r.hint, stderr, m))
			e.Hint = strings.ReplaceAll(h, "{vmid}", fmt.Sprint(vmid))
		}
		if r.hintFn != nil || r.storage > 0 {
			sub := r.re.FindStringSubmatch(stderr)
			if r.hintFn != nil {
				e.Hint = r.hintFn(sub)
			}
			if r.storage > 0 {
				e.MissingStorage = sub[r.storage]
			}
		}
		break
	}
	return e
}

// asError wraps a toolError so errdefs.Hint finds its hint.
func (e *toolError) asError() error {
	if e.Hint == "" {
		return e
	}
	return errdefs.WithHint(e, e.Hint)
}

// oneLine folds a tool's multi-line stderr: PVE prints "trying to acquire
// lock..." progress and per-parameter lines; all of it is kept.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
