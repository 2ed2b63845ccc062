package pve

import (
	"context"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/test/pvesim"
)

// A token without Sys.Audit on /nodes (given PVEVMAdmin and
// PVEDatastoreUser, say) cannot read a node's package versions
// (pve-manager API2/APT.pm versions) nor its bridges (API2/Network.pm
// index), which a create needs: it is refused in one line that names the
// privilege, the path and a role that holds it, before anything is made;
// doctor says the same. (PVEVMAdmin, which the hint used to name for every
// privilege, has no Sys.Audit.)
func TestAPITokenWithoutSysAudit(t *testing.T) {
	ctx := context.Background()
	for _, node := range []string{"pve1", "auto"} {
		t.Run("node "+node, func(t *testing.T) {
			f := newAPIFixture(t, pvesim.Options{NoSysAudit: true})
			f.cfg.Node = node
			c := f.container("audit", nil)
			err := f.backend().Create(ctx, c, backend.CreateOpts{})
			// "auto": either node (equally free, placement picks at random).
			picked := "pve1"
			if strings.Contains(errdefs.OneLine(err), "/nodes/pve2") {
				picked = "pve2"
			}
			wantLine(t, "create", err, errdefs.ErrPermissionDenied, []string{"Permission check failed (/nodes/" + picked + ", Sys.Audit)"},
				[]string{"`pveum acl modify /nodes/" + picked + " --roles PVEAuditor --tokens TOKENID`"})
			if node == "pve1" && picked != "pve1" {
				t.Fatalf("node pve1 configured, the versions read on %s", picked)
			}
			if cts := simCTs(t, f); len(cts) != 0 {
				t.Fatalf("CTs made: %v", cts)
			}
			for _, v := range f.sim.Stored() {
				if strings.Contains(v, ":vztmpl/proxcage") {
					t.Fatalf("a template was uploaded: %s", v)
				}
			}
			var failed *backend.Check
			checks := f.backend().Doctor(ctx)
			for i := range checks {
				if !checks[i].OK && !checks[i].Warn {
					failed = &checks[i]
					break
				}
			}
			if failed == nil || !strings.Contains(failed.Detail, "Sys.Audit") || !strings.Contains(failed.Hint, "PVEAuditor") {
				t.Fatalf("doctor: %+v", checks)
			}
		})
	}
}
