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
}

func rule(pattern string, cat error, retry bool, hint string) errorRule {
	return errorRule{re: regexp.MustCompile(pattern), cat: cat, retry: retry, hint: hint}
}

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
	rule(`storage '([^']+)' does not exist`, errdefs.ErrInvalidArgument, false,
		"storage '$1' does not exist on this node: set [pve] rootfs_storage / template_storage in the proxcage config to one listed by `pvesm status`"),
	rule(`content type '(\w+)' is not available or configured on storage '([^']+)'`, errdefs.ErrInvalidArgument, false,
		"storage '$2' does not allow content '$1': pick one from `pvesm status --content $1` for [pve] rootfs_storage (rootdir) or template_storage (vztmpl)"),
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
	rule(`bridge '([^']+)' does not exist`, errdefs.ErrInvalidArgument, false,
		"bridge '$1' does not exist on this node: set [pve] bridge (or the net annotation) to one listed by `ip -br link show type bridge`"),
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
