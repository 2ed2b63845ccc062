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
	// storage is the submatch naming a storage PVE refuses: the backend
	// knows which [pve] key names it (Backend.explain). storageWhy says
	// why when it is not "does not exist".
	storage    int
	storageWhy string
}

func rule(pattern string, cat error, retry bool, hint string) errorRule {
	return errorRule{re: regexp.MustCompile(pattern), cat: cat, retry: retry, hint: hint}
}

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

// quorumHint: PVE refuses every change while the node's cluster has no
// quorum (pve-cluster Cluster.pm check_cfs_quorum, cfs_lock).
const quorumHint = "the node's cluster has no quorum, and PVE refuses every change until a majority of the nodes is back: " +
	"`pvecm status` on the node shows it; retry once the cluster is quorate"

// rootOnlyWhat names, for the operator, what check_ct_modify_config_perm
// (pve-container src/PVE/LXC.pm) refuses to anyone but root@pam.
var rootOnlyWhat = []struct{ prefix, what string }{
	{"mount point type bind", "bind mounts (mpN with a host path)"},
	{"mount point type device", "device mount points (mpN with a /dev path)"},
	{"configuring device passthrough", "device passthrough (devN, from the bundle's linux.devices)"},
	{"changing feature flags for privileged container", "feature flags of a privileged CT"},
	{"changing feature flags (except nesting)", "LXC features other than nesting (keyctl, fuse, mknod, mount=...)"},
	{"changing the hookscript", "a hookscript"},
}

// rootOnlyHint: what is refused, and the two ways that are root@pam. An
// API token never is, not even one of root@pam.
func rootOnlyHint(m []string) string {
	what := m[1]
	for _, w := range rootOnlyWhat {
		if strings.HasPrefix(m[1], w.prefix) {
			what = w.what
			break
		}
	}
	return what + " are root@pam only, and an API token never is root@pam (not even root@pam's own): " +
		"log in with a ticket as root@pam ([pve] user = \"root@pam\" with password_file) or run proxcage as root on the node (the pct transport), or drop it from the bundle"
}

// privilegeRoles maps a privilege to the smallest built-in role holding
// it (pve-access-control AccessControl.pm $privgroups and create_roles:
// PVE<Cat>Admin has a category's admin, user and audit privileges,
// PVE<Cat>User its user and audit ones, PVEAuditor every audit one).
var privilegeRoles = map[string]string{
	"Sys.Audit": "PVEAuditor", "VM.Audit": "PVEAuditor", "Datastore.Audit": "PVEAuditor",
	"Sys.Console": "PVESysAdmin", "Sys.Syslog": "PVESysAdmin",
	"Datastore.AllocateSpace": "PVEDatastoreUser",
	"Datastore.Allocate":      "PVEDatastoreAdmin", "Datastore.AllocateTemplate": "PVEDatastoreAdmin",
	"SDN.Use": "PVESDNUser",
}

// privilegeHint names the privilege, the ACL path and a role that holds
// it: RPCEnvironment.pm check_perm's "PATH, PRIV" (or "PRIV1|PRIV2",
// any of them).
func privilegeHint(m []string) string {
	path, priv := m[1], strings.Split(m[2], "|")[0]
	role, ok := privilegeRoles[priv]
	switch {
	case ok:
	case strings.HasPrefix(priv, "VM."):
		role = "PVEVMAdmin"
	case strings.HasPrefix(priv, "Sys.") && priv != "Sys.Console" && priv != "Sys.Syslog":
		// Sys.Modify, Sys.PowerMgmt, ...: in no role below Administrator.
		role = "Administrator"
	default:
		role = "PVEAdmin"
	}
	return fmt.Sprintf("the user or API token lacks the privilege %s on %s: grant it, e.g. `pveum acl modify %s --roles %s --tokens TOKENID` (a token with privilege separation needs its own ACL; the role %s holds %s)",
		m[2], path, path, role, role, priv)
}

// errorRules are tried in order; the first match wins, so specific texts
// come before the generic "unable to create CT" wrapper. Every text is one
// the real PVE prints (the comment names where).
var errorRules = []errorRule{
	// pve-cluster Cluster.pm check_vmid_unused.
	rule(`(CT|VM) (\d+) already exists on node '([^']+)'`, errdefs.ErrAlreadyExists, false,
		"VMID $2 is taken by a $1 on node $3; drop the org.proxcage.vmid annotation to let proxcage pick a free one, or choose another"),
	// pve-manager API2/Cluster.pm nextid: "VM" for either kind.
	rule(`VM (\d+) already exists`, errdefs.ErrAlreadyExists, false,
		"VMID $1 is taken; drop the org.proxcage.vmid annotation to let proxcage pick a free one, or choose another"),
	// pmxcfs (pve-cluster src/pmxcfs/memdb.c memdb_rename) refuses a
	// second guest config for a VMID with EEXIST; pve-common File.pm
	// file_set_contents words it. Two nodes created the same VMID at once.
	rule(`close \(rename\) atomic file '/etc/pve/nodes/([^/']+)/(?:lxc|qemu-server)/(\d+)\.conf' failed: File exists`, errdefs.ErrAlreadyExists, false,
		"VMID $2 was taken at the same moment by a guest created on another node (pmxcfs refused a second config); drop the org.proxcage.vmid annotation to let proxcage pick a free one, or choose another"),
	// guest-common AbstractConfig.pm load_config.
	rule(`Configuration file '[^']*' does not exist`, errdefs.ErrNotFound, false,
		"the CT is gone (removed outside proxcage?); `proxcage delete --force ID` removes what is left"),
	// API2/LXC.pm destroy_vm.
	rule(`unable to destroy CT \d+ - container is running`, errdefs.ErrFailedPrecondition, false,
		"stop it first, or use `proxcage delete --force`"),
	rule(`unable to remove CT (\d+) - used in HA resources`, errdefs.ErrFailedPrecondition, false,
		"remove it from HA first: ha-manager remove ct:$1"),
	// API2/LXC/Status.pm vm_start.
	rule(`CT \d+ already running`, errdefs.ErrFailedPrecondition, false, ""),
	// API2/LXC.pm create_vm (restore --force).
	rule(`can't overwrite running container`, errdefs.ErrFailedPrecondition, false,
		"stop the CT before changing it"),
	// API2/LXC/Status.pm, CLI/pct.pm, LXC.pm find_lxc_pid.
	rule(`(?:CT \d+ not running|container '\d+' not running!|unable to get PID for CT \d+ \(not running\?\))`, errdefs.ErrFailedPrecondition, false, ""),
	// AbstractConfig.pm check_lock: lock names have dashes
	// (snapshot-delete, suspended, ...).
	rule(`CT is locked \(([\w-]+)\)`, errdefs.ErrUnavailable, true,
		"a '$1' operation holds the CT lock; wait for it to finish, or `pct unlock {vmid}` if it is stale"),
	// pve-common Tools.pm lock_file_full.
	rule(`can't lock file '[^']*' - got timeout`, errdefs.ErrUnavailable, true,
		"another operation holds the CT config lock; retry later"),
	// pve-cluster Cluster.pm cfs_lock: a cluster-wide lock (a shared
	// storage's, for example) held elsewhere; the locked code did not run.
	rule(`cfs-lock '([^']+)' error: got lock request timeout`, errdefs.ErrUnavailable, true,
		"another node holds the cluster lock '$1' (pmxcfs) for longer than PVE waits; retry"),
	{re: regexp.MustCompile(`cfs-lock '[^']+' error: (?:no quorum!|pve cluster filesystem not online)|cluster not ready - no quorum\?`),
		cat: errdefs.ErrUnavailable, hint: quorumHint},
	// pve-common RESTEnvironment.pm fork_worker.
	rule(`got no worker upid`, errdefs.ErrUnavailable, true, "pvedaemon is overloaded or restarting; retry"),
	// LXC/Create.pm.
	rule(`(?:file does not look like a template archive|unrecognized compression format|less than 10 members in archive)`, errdefs.ErrInvalidArgument, false,
		"the template is not a usable CT archive; `proxcage templates prune` and retry to rebuild it"),
	// pve-storage Plugin.pm activate_volume, inside the create task: the
	// template went between proxcage's upload check and the create.
	rule(`volume '([^':]+):vztmpl/([^']+)' does not exist`, errdefs.ErrNotFound, false,
		"the template $2 is gone from storage $1 on the node (removed by hand or by `proxcage templates prune` elsewhere?); retry: proxcage uploads it again"),
	// pve-storage Storage.pm storage_config, storage_check_enabled,
	// storage_check_node.
	{re: regexp.MustCompile(`storage '([^']+)' does not exist`), cat: errdefs.ErrInvalidArgument, storage: 1,
		hint: "storage '$1' does not exist on this node: set [pve] rootfs_storage or template_storage, whichever names it, to one listed by `pvesm status`"},
	{re: regexp.MustCompile(`storage '([^']+)' is disabled`), cat: errdefs.ErrInvalidArgument, storage: 1, storageWhy: whyDisabled,
		hint: "storage '$1' is disabled in the cluster's storage config: enable it (`pvesm set $1 --disable 0`) or set [pve] rootfs_storage or template_storage, whichever names it, to another"},
	{re: regexp.MustCompile(`storage '([^']+)' is not available on node '([^']+)'`), cat: errdefs.ErrInvalidArgument, storage: 1, storageWhy: whyOtherNodes,
		hint: "storage '$1' is limited to other nodes than $2 (Datacenter > Storage > Nodes): add $2 there, or set [pve] node or the storage key that names it to a pair `pvesm status` on that node lists"},
	// API2/LXC.pm create_vm: a 400 on the "storage" parameter.
	{re: regexp.MustCompile(`storage '([^']+)' does not support container directories`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string { return contentHint("rootfs_storage", m[1], "rootdir") }},
	// LXC.pm alloc_disk (a mount point added later, not a create).
	{re: regexp.MustCompile(`content type 'rootdir' is not available or configured on storage '([^']+)'`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string { return contentHint("rootfs_storage", m[1], "rootdir") }},
	// pve-storage Plugin.pm parse_lvm_name, ZFSPoolPlugin.pm parse_volname:
	// a template path on a storage of volumes (pvesm path).
	rule(`(?:lvm name '|unable to parse zfs volume name ')vztmpl/`, errdefs.ErrInvalidArgument, false,
		"[pve] template_storage names a storage of LVM or ZFS volumes, which cannot hold template files: set it to a directory storage that `pvesm status --content vztmpl` lists"),
	// pve-common Network.pm get_ip_from_hostname.
	{re: regexp.MustCompile(`hostname lookup '([^']+)' failed`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string { return fmt.Sprintf("PVE does not know a node %q: ", m[1]) + nodeHint }},
	// pve-storage Storage.pm check_volume_access: a path, not a volume id.
	rule(`Only root can pass arbitrary filesystem paths`, errdefs.ErrPermissionDenied, false,
		"a host path instead of a storage volume is root@pam only: run proxcage as root on the PVE node (pct transport)"),
	// LXC.pm check_ct_modify_config_perm, worded by pve-common
	// Exception.pm raise_perm_exc (HTTP 403).
	{re: regexp.MustCompile(`Permission check failed \((.*) is only allowed for root@pam\)`), cat: errdefs.ErrPermissionDenied, hintFn: rootOnlyHint},
	// pve-access-control RPCEnvironment.pm check / check_any: "PATH, PRIV"
	// or "PATH, PRIV1|PRIV2".
	{re: regexp.MustCompile(`Permission check failed \(([^,()]+), ([^)]+)\)`), cat: errdefs.ErrPermissionDenied, hintFn: privilegeHint},
	rule(`Permission check failed`, errdefs.ErrPermissionDenied, false,
		"the user or API token lacks a privilege for this call: grant it with `pveum acl modify`"),
	// API2/LXC/Status.pm vm_start.
	rule(`Quotas are not supported by unprivileged containers`, errdefs.ErrInvalidArgument, false,
		"drop quota=1 from the mount options"),
	// LXC.pm, LXC/Config.pm.
	rule(`MTU size '(\d+)' is bigger than bridge MTU '(\d+)'`, errdefs.ErrInvalidArgument, false,
		"use an MTU of at most $2, or raise the bridge's MTU"),
	// pve-common Network.pm read_bridge_mtu.
	{re: regexp.MustCompile(`bridge '([^']+)' does not exist`), cat: errdefs.ErrInvalidArgument,
		hintFn: func(m []string) string { return bridgeHint(m[1]) }},
	// LXC.pm.
	rule(`'mknod' feature requested, but kernel too old`, errdefs.ErrFailedPrecondition, false,
		"drop mknod=1 from the features, or upgrade the node's kernel"),
	// pve-common JSONSchema / Exception.pm raise_param_exc.
	rule(`Parameter verification failed`, errdefs.ErrInvalidArgument, false,
		"a CT option is out of range or malformed (see the parameter named above)"),
	// API2/LXC.pm create_vm's $emsg.
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
	// MissingStorage is a storage PVE refuses: it does not exist, or with
	// StorageWhy, it is disabled or limited to other nodes.
	MissingStorage string
	StorageWhy     string
	// noAnswer: an API call that got no answer from PVE (api.go noAnswer).
	noAnswer bool
}

// StorageKeyHint is the hint once the backend knows which [pve] keys name
// the refused storage.
func (e *toolError) StorageKeyHint(keys []string) string {
	k, sid := strings.Join(keys, " and "), e.MissingStorage
	switch e.StorageWhy {
	case whyDisabled:
		return fmt.Sprintf("[pve] %s = %q: that storage is disabled in the cluster's storage config; enable it (`pvesm set %s --disable 0`) or set %s to one `pvesm status` lists as active",
			k, sid, sid, k)
	case whyOtherNodes:
		return fmt.Sprintf("[pve] %s = %q: that storage is limited to other nodes (its nodes list, Datacenter > Storage); add this node to it, or set %s to one `pvesm status` on the node lists",
			k, sid, k)
	}
	return missingStorageHint(keys, sid)
}

// Why a storage is refused, besides not existing.
const (
	whyDisabled   = "disabled"
	whyOtherNodes = "other nodes"
)

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
				e.MissingStorage, e.StorageWhy = sub[r.storage], r.storageWhy
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
