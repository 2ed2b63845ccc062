package pve

import (
	"errors"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// Every error text listed in PROXMOX.md, with the category, exit code,
// retry flag and a piece of the hint it must get.
func TestClassifyEveryKnownText(t *testing.T) {
	cases := []struct {
		text  string
		cat   error
		code  int
		retry bool
		hint  string
	}{
		{"CT 100 already exists on node 'pve'", errdefs.ErrAlreadyExists, 4, false, "taken by a CT on node pve"},
		{"VM 100 already exists on node 'pve2'", errdefs.ErrAlreadyExists, 4, false, "taken by a VM on node pve2"},
		{"unable to create CT 100 - storage 'fast' does not exist", errdefs.ErrInvalidArgument, 2, false, "[pve] rootfs_storage"},
		{"unable to restore CT 100 - something odd", errdefs.ErrFailedPrecondition, 5, false, ""},
		{"unable to create CT 100 - something new", errdefs.ErrFailedPrecondition, 5, false, ""},
		{"Configuration file 'nodes/pve/lxc/100.conf' does not exist", errdefs.ErrNotFound, 3, false, "delete --force"},
		{"CT 100 not running", errdefs.ErrFailedPrecondition, 5, false, ""},
		{"CT 100 already running", errdefs.ErrFailedPrecondition, 5, false, ""},
		{"container '100' not running!", errdefs.ErrFailedPrecondition, 5, false, ""},
		{"unable to get PID for CT 100 (not running?)", errdefs.ErrFailedPrecondition, 5, false, ""},
		{"unable to destroy CT 100 - container is running", errdefs.ErrFailedPrecondition, 5, false, "delete --force"},
		{"unable to remove CT 100 - used in HA resources and purge parameter not set.", errdefs.ErrFailedPrecondition, 5, false, "ha-manager remove ct:100"},
		{"CT is locked (backup)", errdefs.ErrUnavailable, 6, true, "'backup' operation"},
		{"CT is locked (create)", errdefs.ErrUnavailable, 6, true, "pct unlock 100"},
		{"CT is locked (mounted)", errdefs.ErrUnavailable, 6, true, "'mounted'"},
		{"CT is locked (migrate)", errdefs.ErrUnavailable, 6, true, "'migrate'"},
		{"CT is locked (snapshot)", errdefs.ErrUnavailable, 6, true, "'snapshot'"},
		{"CT is locked (disk)", errdefs.ErrUnavailable, 6, true, "'disk'"},
		{"trying to acquire lock...\ncan't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout", errdefs.ErrUnavailable, 6, true, "config lock"},
		{"can't overwrite running container", errdefs.ErrFailedPrecondition, 5, false, "stop the CT"},
		{"Permission check failed (/vms/100, VM.Allocate)", errdefs.ErrPermissionDenied, 7, false, "privilege VM.Allocate on /vms/100"},
		{"Permission check failed (mount point type bind is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "root@pam only"},
		{"file does not look like a template archive: /var/lib/vz/template/cache/x.tar.zst", errdefs.ErrInvalidArgument, 2, false, "templates prune"},
		{"unrecognized compression format: x.tar.lz", errdefs.ErrInvalidArgument, 2, false, "templates prune"},
		{"less than 10 members in archive '/var/lib/vz/template/cache/x.tar.zst'", errdefs.ErrInvalidArgument, 2, false, "templates prune"},
		{"storage 'x' does not exist", errdefs.ErrInvalidArgument, 2, false, "storage 'x' does not exist on this node"},
		{"content type 'rootdir' is not available or configured on storage 'local'", errdefs.ErrInvalidArgument, 2, false, "pvesm status --content rootdir"},
		{"Only root can pass arbitrary filesystem paths.", errdefs.ErrPermissionDenied, 7, false, "root@pam"},
		{"Permission check failed (mount point type bind is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "root@pam"},
		{"Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "LXC features other than nesting"},
		// Issue 14, point 8: texts the real PVE prints that had no rule.
		{"CT is locked (snapshot-delete)", errdefs.ErrUnavailable, 6, true, "'snapshot-delete' operation"},
		{"CT is locked (suspended)", errdefs.ErrUnavailable, 6, true, "'suspended' operation"},
		{"unable to create CT 100 - close (rename) atomic file '/etc/pve/nodes/pve2/lxc/100.conf' failed: File exists", errdefs.ErrAlreadyExists, 4, false, "VMID 100 was taken at the same moment"},
		{"unable to create CT 100 - cfs-lock 'storage-nfs' error: got lock request timeout", errdefs.ErrUnavailable, 6, true, "cluster lock 'storage-nfs'"},
		{"500 cluster not ready - no quorum?", errdefs.ErrUnavailable, 6, false, "pvecm status"},
		{"cfs-lock 'file-user_cfg' error: no quorum!", errdefs.ErrUnavailable, 6, false, "no quorum"},
		{"storage 'fast' is disabled", errdefs.ErrInvalidArgument, 2, false, "pvesm set fast --disable 0"},
		{"storage 'fast' is not available on node 'pve2'", errdefs.ErrInvalidArgument, 2, false, "limited to other nodes than pve2"},
		{"400 Parameter verification failed.\nstorage: storage 'local' does not support container directories", errdefs.ErrInvalidArgument, 2, false, `[pve] rootfs_storage = "local"`},
		{"unable to create CT 100 - volume 'local:vztmpl/x.tar.zst' does not exist", errdefs.ErrNotFound, 3, false, "uploads it again"},
		{"Permission check failed (configuring device passthrough is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "device passthrough (devN"},
		{"Permission check failed (mount point type device is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "device mount points"},
		{"Permission check failed (changing feature flags for privileged container is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "privileged CT"},
		{"Permission check failed (changing the hookscript is only allowed for root@pam)", errdefs.ErrPermissionDenied, 7, false, "ticket as root@pam"},
		{"Permission check failed (/storage/local, Datastore.AllocateSpace|Datastore.Audit)", errdefs.ErrPermissionDenied, 7, false, "privilege Datastore.AllocateSpace|Datastore.Audit on /storage/local"},
		// The role named holds the privilege (AccessControl.pm create_roles):
		// PVEVMAdmin has no Sys.Audit, which GET /nodes/N/apt/versions needs.
		{"Permission check failed (/nodes/pve1, Sys.Audit)", errdefs.ErrPermissionDenied, 7, false, "`pveum acl modify /nodes/pve1 --roles PVEAuditor --tokens TOKENID`"},
		{"Permission check failed (/vms/100, VM.Allocate)", errdefs.ErrPermissionDenied, 7, false, "--roles PVEVMAdmin"},
		{"Permission check failed (/storage/local, Datastore.AllocateTemplate)", errdefs.ErrPermissionDenied, 7, false, "--roles PVEDatastoreAdmin"},
		{"Permission check failed (/nodes/pve1, Sys.Modify)", errdefs.ErrPermissionDenied, 7, false, "--roles Administrator"},
		{"Permission check failed (user != root@pam)", errdefs.ErrPermissionDenied, 7, false, "pveum acl modify"},
		{"400 Parameter verification failed.\nvmid: VM 100 already exists", errdefs.ErrAlreadyExists, 4, false, "VMID 100 is taken"},
		{"lvm name 'vztmpl/x.tar.zst' contains illegal characters", errdefs.ErrInvalidArgument, 2, false, "[pve] template_storage"},
		{"Quotas are not supported by unprivileged containers.", errdefs.ErrInvalidArgument, 2, false, "quota"},
		{"net0: MTU size '9000' is bigger than bridge MTU '1500'", errdefs.ErrInvalidArgument, 2, false, "at most 1500"},
		{"bridge 'vmbr9' does not exist", errdefs.ErrInvalidArgument, 2, false, "[pve] bridge"},
		{"'mknod' feature requested, but kernel too old (found 5.4, required >= 5.3)", errdefs.ErrFailedPrecondition, 5, false, "mknod"},
		{"400 Parameter verification failed.\nmemory: value must have a minimum value of 16", errdefs.ErrInvalidArgument, 2, false, "out of range"},
		{"500 got no worker upid", errdefs.ErrUnavailable, 6, true, "retry"},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			te := classify("pct create", 100, 255, c.text)
			err := te.asError()
			if !errors.Is(err, c.cat) {
				t.Errorf("category %v, want %v", errdefs.Category(err), c.cat)
			}
			if got := errdefs.ExitCode(err); got != c.code {
				t.Errorf("exit code %d, want %d", got, c.code)
			}
			if te.Retry != c.retry {
				t.Errorf("retry %v, want %v", te.Retry, c.retry)
			}
			if h := errdefs.Hint(err); !strings.Contains(h, c.hint) {
				t.Errorf("hint %q lacks %q", h, c.hint)
			}
			// pct's own words are kept, on one line, with the step and CT.
			msg := err.Error()
			if !strings.HasPrefix(msg, "pct create (CT 100) failed (exit 255): ") || strings.Contains(msg, "\n") {
				t.Errorf("message %q", msg)
			}
			first := strings.Split(c.text, "\n")[0]
			if !strings.Contains(msg, strings.TrimSpace(first)) {
				t.Errorf("message %q lost pct's words %q", msg, first)
			}
		})
	}
}

func TestClassifyUnknownTextKeepsWords(t *testing.T) {
	te := classify("pct start", 101, 255, "something PVE never said before\n")
	err := te.asError()
	if !errors.Is(err, errdefs.ErrInternal) || errdefs.ExitCode(err) != 1 || te.Retry {
		t.Fatalf("unknown text: cat %v retry %v", errdefs.Category(err), te.Retry)
	}
	if err.Error() != "pct start (CT 101) failed (exit 255): something PVE never said before" {
		t.Fatalf("message %q", err.Error())
	}
	if errdefs.Hint(err) != "" {
		t.Fatalf("unexpected hint %q", errdefs.Hint(err))
	}
}

// Texts no PVE prints get no rule of their own (issue 14, point 8): a bare
// "CT N already exists" (nextid says "VM N" for either kind) and a content
// check for vztmpl (only rootdir's exists, in LXC.pm alloc_disk).
func TestClassifyNoRuleForTextsPVENeverPrints(t *testing.T) {
	for _, text := range []string{
		"CT 100 already exists",
		"content type 'vztmpl' is not available or configured on storage 'local'",
	} {
		if te := classify("pct create", 100, 255, text); te.Cat != errdefs.ErrInternal || te.Hint != "" {
			t.Errorf("%q: category %v, hint %q", text, te.Cat, te.Hint)
		}
	}
}
