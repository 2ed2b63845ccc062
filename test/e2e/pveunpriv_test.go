package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/proxcage/proxcage/test/subids"
)

// needUnprivileged prepares the host for the double's unprivileged CTs as a
// PVE node is: root's subordinate ids (root:100000:65536 in /etc/subuid and
// /etc/subgid, taken back once no test needs them), and a state dir the
// mapped root (host uid 100000) can walk to (go test's temp dirs are 0700;
// /var/lib/lxc is 0755).
func needUnprivileged(t *testing.T, state string) {
	t.Helper()
	release, err := subids.Acquire(t.Name())
	if err != nil {
		t.Fatalf("subordinate ids for unprivileged CTs: %v", err)
	}
	t.Cleanup(release)
	for dir := state; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// unprivilegedShift is where PVE's default id map puts an unprivileged
// CT's id 0 on the host (pve-container src/PVE/LXC.pm parse_id_maps).
const unprivilegedShift = 100000
