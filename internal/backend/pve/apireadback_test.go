package pve

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/test/pvesim"
)

// Issue 14, point 12: after an ambiguous answer to POST /nodes/N/lxc the
// backend reads back the CT and the node's task list, then retries,
// adopts or gives up with what to run.

// ctNames reports whether the sim's CT at vmid names container id.
func ctNames(t *testing.T, f *apiFixture, node string, vmid int, id string) bool {
	t.Helper()
	cfg, err := f.backend().tr.config(context.Background(), node, vmid)
	if err != nil {
		return false
	}
	got, _ := OCIIDFromDescription(cfg["description"])
	return got == id
}

func TestAPICreateReadBack(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		fault  func(*pvesim.Server)
		opts   pvesim.Options
		posts  int
		lookup bool // the task list was read
	}{
		// The node did nothing: post again.
		{name: "503 before acting", fault: func(s *pvesim.Server) { s.FailNext(1, 503, "/lxc$") }, posts: 2, lookup: true},
		{name: "dropped before acting", fault: func(s *pvesim.Server) { s.DropNext(1, "/lxc$") }, posts: 2, lookup: true},
		// The node created it: adopt, no second post.
		{name: "dropped after acting", fault: func(s *pvesim.Server) { s.DropNextAfter(1, "/lxc$") }, posts: 1, lookup: true},
		// Still running when read back: its task is found and waited for.
		{name: "502 after acting, task running", fault: func(s *pvesim.Server) { s.FailNextAfter(1, 502, "/lxc$") },
			opts: pvesim.Options{TaskDurations: map[string]time.Duration{"vzcreate": 400 * time.Millisecond}}, posts: 1, lookup: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newAPIFixture(t, c.opts)
			f.cfg.Node = "pve1"
			b := f.backend()
			ct := f.container("rb", nil)
			// Warm the template, so that only the create's calls count.
			if err := b.Create(ctx, f.container("warm", nil), backend.CreateOpts{}); err != nil {
				t.Fatal(err)
			}
			c.fault(f.sim)
			f.sim.ResetCalls()
			if err := b.Create(ctx, ct, backend.CreateOpts{}); err != nil {
				t.Fatalf("create: %v", err)
			}
			calls := f.sim.Calls()
			if calls["POST /nodes/{node}/lxc"] != c.posts {
				t.Errorf("%d posts, want %d (%v)", calls["POST /nodes/{node}/lxc"], c.posts, calls)
			}
			if c.lookup && calls["GET /nodes/{node}/tasks"] == 0 {
				t.Errorf("the task list was not read: %v", calls)
			}
			p := privateOf(t, ct)
			if !ctNames(t, f, "pve1", p.VMID, "rb") {
				t.Fatalf("CT %d is not the container's", p.VMID)
			}
			if cts := simCTs(t, f); len(cts) != 2 {
				t.Fatalf("CTs %v, want warm and rb only", cts)
			}
			if err := b.Delete(ctx, ct, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Point 8: another node creates the VMID proxcage picked at the same
// moment; pmxcfs refuses our config ("File exists"), and proxcage picks
// another VMID instead of failing.
func TestAPICreateLosesAVMIDRaceAcrossNodes(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, pvesim.Options{Nodes: []string{"pve1", "pve2"}})
	f.cfg.Node = "pve1"
	b := f.backend()
	f.sim.RaceNextCreate("pve2")
	c := f.container("race", nil)
	if err := b.Create(ctx, c, backend.CreateOpts{}); err != nil {
		t.Fatalf("create after a cross-node VMID race: %v", err)
	}
	p := privateOf(t, c)
	if p.VMID == 100 || !ctNames(t, f, "pve1", p.VMID, "race") {
		t.Fatalf("VMID %d: want another than the racer's 100", p.VMID)
	}
	if cts := simCTs(t, f); len(cts) != 2 || cts[0] != "100@pve2 stopped" {
		t.Fatalf("CTs %v", cts)
	}
}

// Failures inside the create task that PVE cleaned up after: posted again.
func TestAPICreateTaskFailuresRetried(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, pvesim.Options{})
	f.cfg.Node = "pve1"
	b := f.backend()
	f.sim.CfsLockTimeoutNext(1)
	f.sim.ResetCalls()
	c := f.container("cfs", nil)
	if err := b.Create(ctx, c, backend.CreateOpts{}); err != nil {
		t.Fatalf("create after a cfs-lock timeout: %v", err)
	}
	if n := f.sim.Calls()["POST /nodes/{node}/lxc"]; n != 2 {
		t.Errorf("%d posts, want 2", n)
	}

	// The template goes while the create task runs: uploaded again.
	f2 := newAPIFixture(t, pvesim.Options{TaskDurations: map[string]time.Duration{"vzcreate": 300 * time.Millisecond}})
	f2.cfg.Node = "pve1"
	b2 := f2.backend()
	done := make(chan error, 1)
	go func() { done <- b2.Create(ctx, f2.container("tpl", nil), backend.CreateOpts{}) }()
	for f2.sim.Calls()["POST /nodes/{node}/lxc"] == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	var vols []struct {
		Volid string `json:"volid"`
	}
	if err := b2.tr.(*apiTransport).c.call(ctx, "list", 0, http.MethodGet, "/nodes/pve1/storage/local/content", url.Values{"content": {"vztmpl"}}, &vols); err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, v := range vols {
		if strings.Contains(v.Volid, ":vztmpl/proxcage-") {
			if err := b2.tr.(*apiTransport).removeTemplate(ctx, storedTemplate{Node: "pve1", Volid: v.Volid}); err != nil {
				t.Fatal(err)
			}
			removed++
		}
	}
	if removed != 1 {
		t.Fatalf("templates %v", vols)
	}
	if err := <-done; err != nil {
		t.Fatalf("create after the template went: %v", err)
	}
	if n := f2.sim.Calls()["POST /nodes/{node}/storage/{storage}/upload"]; n != 2 {
		t.Errorf("%d uploads, want 2", n)
	}
}

// Neither the post nor the read-back answers: unavailable, saying what to
// run on the node, and nothing claimed.
func TestAPICreateUnknownSaysWhatToRun(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{})
	f.cfg.Node = "pve1"
	f.sim.DropNext(-1, "/lxc$|/lxc/\\d+/config$|/tasks$")
	err := f.backend().Create(context.Background(), f.container("dark", nil), backend.CreateOpts{})
	wantLine(t, "unknown", err, errdefs.ErrUnavailable, []string{"create CT 100 on node pve1", "may have happened"},
		[]string{"pvesh get /nodes/pve1/tasks --vmid 100 --typefilter vzcreate --source all", "pct config 100", "delete --force"})
	if !errors.Is(err, errCreateUncertain) {
		t.Errorf("not errCreateUncertain: %v", err)
	}
}

// Issue 14, point 11: devN over an API token is refused by PVE
// (check_ct_modify_config_perm) and said so in one line with the way out.
func TestAPIDevicesOverTokenRefused(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{})
	c := f.container("dev", func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229})
	})
	err := f.backend().Create(context.Background(), c, backend.CreateOpts{})
	wantLine(t, "devN over a token", err, errdefs.ErrPermissionDenied,
		[]string{"403 Permission check failed (configuring device passthrough is only allowed for root@pam)"},
		[]string{"device passthrough (devN", "API token never is root@pam", "ticket as root@pam", "pct transport"})
	if errdefs.ExitCode(err) != 7 {
		t.Errorf("exit %d", errdefs.ExitCode(err))
	}
	if cts := simCTs(t, f); len(cts) != 0 {
		t.Fatalf("CTs left: %v", cts)
	}
	// A root@pam ticket may.
	f.cfg.TokenID, f.cfg.TokenSecretFile = "", ""
	f.cfg.User, f.cfg.PasswordFile = "root@pam", secretFile(t, "rootpw", 0o600)
	if err := f.backend().Create(context.Background(), c, backend.CreateOpts{}); err != nil {
		t.Fatalf("devN as root@pam: %v", err)
	}
}

// Point 8 over the API: the texts reach the operator as one line with a
// hint naming the [pve] key.
func TestAPICreateStorageAndQuorumTexts(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, pvesim.Options{Nodes: []string{"pve1", "pve2"}, NoStorage: map[string][]string{"pve2": {"local-lvm"}}})
	f.cfg.Node = "pve1"
	// create is Create, then the runtime's rollback of a failure.
	create := func(id string) error {
		c := f.container(id, nil)
		err := f.backend().Create(ctx, c, backend.CreateOpts{})
		if err != nil {
			c.RollBack, c.DeleteVolumes = true, true
			if derr := f.backend().Delete(ctx, c, true); derr != nil {
				t.Fatalf("rollback of %s: %v", id, derr)
			}
		}
		return err
	}
	f.sim.SetNoQuorum(true)
	err := create("q")
	wantLine(t, "no quorum", err, errdefs.ErrUnavailable, []string{"cluster not ready - no quorum?"}, []string{"pvecm status"})
	f.sim.SetNoQuorum(false)

	f.sim.SetStorageDisabled("local-lvm", true)
	err = create("d")
	wantLine(t, "disabled", err, errdefs.ErrInvalidArgument, []string{"storage 'local-lvm' is disabled"},
		[]string{`[pve] rootfs_storage = "local-lvm"`, "pvesm set local-lvm --disable 0"})
	f.sim.SetStorageDisabled("local-lvm", false)

	f.cfg.Node = "pve2"
	err = create("n")
	wantLine(t, "other nodes", err, errdefs.ErrInvalidArgument, []string{"storage 'local-lvm' is not available on node 'pve2'"},
		[]string{`[pve] rootfs_storage = "local-lvm"`, "limited to other nodes"})

	f.cfg.Node, f.cfg.RootfsStorage = "pve1", "local"
	err = create("r")
	wantLine(t, "no rootdir", err, errdefs.ErrInvalidArgument, []string{"storage 'local' does not support container directories"},
		[]string{`[pve] rootfs_storage = "local"`, "content rootdir"})
	if cts := simCTs(t, f); len(cts) != 0 {
		t.Fatalf("CTs left: %v", cts)
	}
	// Each create uploaded its template, and each rollback removed it.
	for _, v := range f.sim.Stored() {
		if strings.Contains(v, ":vztmpl/proxcage") {
			t.Fatalf("a failed create left its template: %s", v)
		}
	}
	if n := f.sim.Calls()["POST /nodes/{node}/storage/{storage}/upload"]; n < 4 {
		t.Fatalf("%d uploads, want one per failed create (4): the template was not removed after a failure", n)
	}
	if strings.Contains(errdefs.OneLine(err), "\n") {
		t.Fatal("not one line")
	}
}

// The read-back finds another creator's CT under its create lock at our
// VMID and no task of ours: the VMID is taken (the backend then picks
// another), not "may have happened".
func TestAPICreateReadBackSeesAnotherCreator(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, pvesim.Options{TaskDurations: map[string]time.Duration{"vzcreate": 3 * time.Second},
		Tokens: map[string]string{simToken: simSecret, "other@pve!x": "othersecret"}})
	theirs, err := newAPIClient(config.PVE{URL: f.sim.URL(), Fingerprint: f.sim.Fingerprint(), TokenID: "other@pve!x",
		TokenSecretFile: secretFile(t, "othersecret", 0o600), Timeout: "10s"}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	var upid string
	if err := theirs.call(ctx, "theirs", 100, http.MethodPost, "/nodes/pve1/lxc",
		url.Values{"vmid": {"100"}, "ostemplate": {simTmpl}, "rootfs": {"local-lvm:1"}}, &upid); err != nil {
		t.Fatal(err)
	}
	f.sim.DropNext(1, "/lxc$") // ours: lost before it acted
	tr := f.backend().tr.(*apiTransport)
	plan := &Plan{Options: []Option{{Key: "description", Value: descriptionPrefix + "mine"}, {Key: "rootfs", Value: "local-lvm:1"}}}
	err = tr.create(ctx, "pve1", 100, simTmpl, plan)
	wantLine(t, "their CT", err, errdefs.ErrAlreadyExists, []string{"VMID 100 on node pve1 was taken by another create at the same time"}, []string{"org.proxcage.vmid"})
	if n := f.sim.Calls()["GET /nodes/{node}/tasks"]; n == 0 {
		t.Errorf("the task list was not read")
	}
}

// Our create's answer is lost while PVE is still between
// create_and_lock_config and fork_worker: the read-back sees a CT under
// its create lock and no task of ours yet. It looks again until the task
// shows, then waits for it and adopts the CT. (Before, it took the CT for
// another creator's, picked another VMID and made a second CT: the first,
// ours, was left behind carrying the container's id.)
func TestAPICreateReadBackWaitsForALateTask(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, pvesim.Options{TaskDurations: map[string]time.Duration{"vzcreate": 3 * time.Second}})
	f.cfg.Node = "pve1"
	b := f.backend()
	if err := b.Create(ctx, f.container("warm", nil), backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	f.sim.SetFaults(func(fl *pvesim.Faults) { fl.TaskUnlistedFor = 2 * time.Second })
	f.sim.DropNextAfter(1, "/lxc$")
	f.sim.ResetCalls()
	c := f.container("late", nil)
	if err := b.Create(ctx, c, backend.CreateOpts{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if n := f.sim.Calls()["POST /nodes/{node}/lxc"]; n != 1 {
		t.Errorf("%d create posts, want 1 (the lost one was ours)", n)
	}
	if cts := simCTs(t, f); len(cts) != 2 {
		t.Fatalf("CTs %v, want warm and late only", cts)
	}
	if p := privateOf(t, c); !ctNames(t, f, "pve1", p.VMID, "late") {
		t.Fatalf("CT %d is not the container's", p.VMID)
	}
}
