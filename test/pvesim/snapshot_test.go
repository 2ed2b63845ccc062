package pvesim

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func startTaskUPID(t *testing.T, s *Server, method, path string, form url.Values) string {
	t.Helper()
	return mustOK(t, api(t, s, method, path, form, token)).(string)
}

func snapList(t *testing.T, s *Server, vmid string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range mustOK(t, api(t, s, "GET", "/nodes/pve1/lxc/"+vmid+"/snapshot", nil, token)).([]any) {
		row := r.(map[string]any)
		out[row["name"].(string)] = row
	}
	return out
}

// TestSnapshotCreateRollbackDelete walks one CT through snapshot, list,
// rollback (start=1) and delsnapshot, checking the config PVE's
// AbstractConfig.pm leaves at each step.
func TestSnapshotCreateRollbackDelete(t *testing.T) {
	clock := NewFakeClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	s := start(t, Options{Now: clock.Now, Templates: []string{debTpl},
		TaskDurations: map[string]time.Duration{"vzsnapshot": 200 * time.Millisecond}})
	f := createForm("100")
	f.Set("description", "owner: proxcage")
	f.Set("mp0", "local-lvm:1,mp=/data")
	f.Set("start", "1")
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc", f); exit != "OK" {
		t.Fatal(exit)
	}
	// Reserved names and the name format: refused before any task.
	if a := api(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"vzdump"}}, token); a.status != "500 unable to use snapshot name 'vzdump' (reserved name)" {
		t.Errorf("vzdump: %q", a.status)
	}
	if a := api(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"current"}}, token); a.status != "500 unable to use snapshot name 'current' (reserved name)" {
		t.Errorf("current: %q", a.status)
	}
	a := api(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"x"}}, token)
	if errs, _ := a.body["errors"].(map[string]any); a.code != 400 || errs["snapname"] != "invalid format - invalid configuration ID 'x'" {
		t.Errorf("one-letter name: %q %v", a.status, a.body)
	}
	// s1: lock: snapshot and snapstate: prepare while the task runs.
	upid := startTaskUPID(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"S1"}, "description": {"first"}})
	if !strings.Contains(upid, ":vzsnapshot:100:root@pam!ci:") {
		t.Errorf("upid %q", upid)
	}
	if got := config(t, s, "100", nil)["lock"]; got != "snapshot" {
		t.Errorf("lock while snapshotting: %v", got)
	}
	if got := snapList(t, s, "100")["S1"]["snapstate"]; got != "prepare" {
		t.Errorf("snapstate while snapshotting: %v", got)
	}
	if a := api(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", nil, token); a.status != "500 CT is locked (snapshot)" {
		t.Errorf("stop while snapshotting: %q", a.status)
	}
	if exit := waitTask(t, s, "pve1", upid); exit != "OK" {
		t.Fatalf("snapshot: %s", exit)
	}
	list := snapList(t, s, "100")
	snaptime := float64(clock.Now().Unix())
	if want := map[string]any{"name": "S1", "snaptime": snaptime, "description": "first"}; !reflect.DeepEqual(list["S1"], want) {
		t.Errorf("S1 in list: %v", list["S1"])
	}
	cur := list["current"]
	if cur["parent"] != "S1" || cur["running"] != float64(1) || cur["description"] != "You are here!" || cur["digest"] == nil {
		t.Errorf("current in list: %v", cur)
	}
	sc := mustOK(t, api(t, s, "GET", "/nodes/pve1/lxc/100/snapshot/S1/config", nil, token)).(map[string]any)
	if sc["description"] != "first" || sc["snaptime"] != snaptime || sc["rootfs"] != "local-lvm:vm-100-disk-0,size=8G" ||
		sc["mp0"] != "local-lvm:vm-100-disk-1,mp=/data,size=1G" || sc["hostname"] != "web" || sc["memory"] != float64(1024) {
		t.Errorf("S1 config: %v", sc)
	}
	for _, k := range []string{"parent", "lock", "snapstate", "digest"} {
		if _, ok := sc[k]; ok {
			t.Errorf("S1 config has %s: %v", k, sc)
		}
	}
	if got := config(t, s, "100", url.Values{"snapshot": {"S1"}}); got["hostname"] != "web" || got["digest"] == nil {
		t.Errorf("config snapshot=S1: %v", got)
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"S1"}}); exit != "snapshot name 'S1' already used" {
		t.Errorf("S1 again: %q", exit)
	}
	// Changes, a new mp1 hot-plugged, then s2.
	put(t, s, "100", url.Values{"hostname": {"renamed"}, "memory": {"2048"}, "description": {"owner: proxcage v2"}, "mp1": {"local-lvm:1,mp=/extra"}})
	clock.Advance(time.Minute)
	exit, log := runTask(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"s2"}})
	if exit != "OK" {
		t.Fatal(exit)
	}
	wantLines(t, "s2", log, `  Logical volume "snap_vm-100-disk-0_s2" created.`, `  Logical volume "snap_vm-100-disk-2_s2" created.`)
	if got := snapList(t, s, "100")["s2"]; got["parent"] != "S1" || got["description"] != "" {
		t.Errorf("s2: %v", got)
	}
	// Rollback to S1 with start: stopped, config of S1, the current
	// description kept, mp1's volume unused0, parent S1; a vzstart task.
	exit, _ = runTask(t, s, "POST", "/nodes/pve1/lxc/100/snapshot/S1/rollback", url.Values{"start": {"1"}})
	if exit != "OK" {
		t.Fatal(exit)
	}
	cfg := config(t, s, "100", nil)
	want := map[string]any{"hostname": "web", "memory": float64(1024), "description": "owner: proxcage v2",
		"unused0": "local-lvm:vm-100-disk-2", "parent": "S1", "mp0": "local-lvm:vm-100-disk-1,mp=/data,size=1G"}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("after rollback %s = %v, want %v", k, cfg[k], v)
		}
	}
	if _, ok := cfg["mp1"]; ok {
		t.Errorf("mp1 after rollback: %v", cfg)
	}
	rows := mustOK(t, api(t, s, "GET", "/nodes/pve1/tasks", url.Values{"typefilter": {"vzstart"}, "source": {"all"}}, token)).([]any)
	if len(rows) != 1 {
		t.Fatalf("vzstart tasks after rollback start=1: %v", rows)
	}
	if exit := waitTask(t, s, "pve1", rows[0].(map[string]any)["upid"].(string)); exit != "OK" {
		t.Fatalf("vzstart: %s", exit)
	}
	if st := mustOK(t, api(t, s, "GET", "/nodes/pve1/lxc/100/status/current", nil, token)).(map[string]any)["status"]; st != "running" {
		t.Errorf("status after rollback start=1: %v", st)
	}
	// unused0 is s2's volume: delete=unused0 drops the key but cannot free
	// it (in use by a snapshot); delsnapshot s2 makes it unusedN again: N
	// = 2, as snapshot_delete adds all of s2's volumes (rootfs unused0,
	// mp0 unused1, mp1 unused2) and write_pct_config drops the two the
	// config uses.
	put(t, s, "100", url.Values{"delete": {"unused0"}})
	if got := volumes(t, s, "local-lvm"); !reflect.DeepEqual(got, []string{"local-lvm:vm-100-disk-0", "local-lvm:vm-100-disk-1", "local-lvm:vm-100-disk-2"}) {
		t.Fatalf("volumes: %v", got)
	}
	exit, log = runTask(t, s, "DELETE", "/nodes/pve1/lxc/100/snapshot/s2", nil)
	if exit != "OK" {
		t.Fatal(exit)
	}
	wantLines(t, "delsnapshot", log, `  Logical volume "snap_vm-100-disk-0_s2" successfully removed.`, `  Logical volume "snap_vm-100-disk-2_s2" successfully removed.`)
	cfg = config(t, s, "100", nil)
	if cfg["unused2"] != "local-lvm:vm-100-disk-2" || len(keysWith(cfg, "unused")) != 1 || cfg["parent"] != "S1" {
		t.Errorf("after delsnapshot s2: %v", cfg)
	}
	if _, ok := snapList(t, s, "100")["s2"]; ok {
		t.Errorf("s2 still listed")
	}
	for _, c := range []struct{ method, path, want string }{
		{"DELETE", "/nodes/pve1/lxc/100/snapshot/nosuch", "snapshot 'nosuch' does not exist"},
		{"POST", "/nodes/pve1/lxc/100/snapshot/nosuch/rollback", "snapshot 'nosuch' does not exist"},
		{"POST", "/nodes/pve1/lxc/999/snapshot", "Configuration file 'nodes/pve1/lxc/999.conf' does not exist"},
	} {
		form := url.Values{}
		if c.method == "POST" && strings.HasSuffix(c.path, "/snapshot") {
			form.Set("snapname", "s3")
		}
		if exit, _ := runTask(t, s, c.method, c.path, form); exit != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, exit, c.want)
		}
	}
	if a := api(t, s, "GET", "/nodes/pve1/lxc/100/snapshot/nosuch/config", nil, token); a.status != "500 snapshot 'nosuch' does not exist" {
		t.Errorf("config of nosuch: %q", a.status)
	}
	// Description of a snapshot; the last snapshot deleted: parent goes.
	put2 := api(t, s, "PUT", "/nodes/pve1/lxc/100/snapshot/S1/config", url.Values{"description": {"kept"}}, token)
	mustOK(t, put2)
	if got := snapList(t, s, "100")["S1"]["description"]; got != "kept" {
		t.Errorf("S1 description: %v", got)
	}
	if exit, _ := runTask(t, s, "DELETE", "/nodes/pve1/lxc/100/snapshot/S1", url.Values{"force": {"1"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if _, ok := config(t, s, "100", nil)["parent"]; ok {
		t.Errorf("parent after the last delsnapshot")
	}
	// Destroy: the snapshots of the freed volumes go first (none left).
	if exit, _ := runTask(t, s, "DELETE", "/nodes/pve1/lxc/100", url.Values{"force": {"1"}}); exit != "OK" {
		t.Fatal(exit)
	}
}

// TestSnapshotFeatureAndStorages: has_feature by storage type and mount
// type, the zfspool most-recent rule, the rollback lock, templates, and a
// failed volume step's cleanup.
func TestSnapshotFeatureAndStorages(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl},
		Storages:      []StorageSpec{{ID: "tank", Type: "zfspool", Content: "images,rootdir"}, {ID: "ctdir", Type: "dir", Content: "rootdir,vztmpl"}},
		TaskDurations: map[string]time.Duration{"vzrollback": 200 * time.Millisecond}})
	root := rootTicket(t, s)
	mk := func(vmid, rootfs, mp0 string) {
		t.Helper()
		f := createForm(vmid)
		f.Set("rootfs", rootfs)
		if mp0 != "" {
			f.Set("mp0", mp0)
		}
		upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", f, root)).(string)
		if exit := waitTask(t, s, "pve1", upid); exit != "OK" {
			t.Fatalf("create %s: %s", vmid, exit)
		}
	}
	mk("100", "ctdir:4", "")
	mk("101", "local-lvm:4", "/srv/data,mp=/data")
	mk("102", "tank:4", "")
	mk("103", "local-lvm:4", "ctdir:1,mp=/data")
	for _, id := range []string{"100", "101", "103"} {
		if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/"+id+"/snapshot", url.Values{"snapname": {"s1"}}); exit != "snapshot feature is not available" {
			t.Errorf("CT %s: %q", id, exit)
		}
		if l := snapList(t, s, id); len(l) != 1 {
			t.Errorf("CT %s: a refused snapshot left %v", id, l)
		}
		if got := config(t, s, id, nil)["lock"]; got != nil {
			t.Errorf("CT %s: lock %v", id, got)
		}
	}
	for _, name := range []string{"s1", "s2"} {
		if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot", url.Values{"snapname": {name}}); exit != "OK" {
			t.Fatalf("zfs %s: %s", name, exit)
		}
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot/s1/rollback", nil); exit != "can't rollback, 's1' is not most recent snapshot on 'tank:vm-102-disk-0'" {
		t.Errorf("zfs rollback s1: %q", exit)
	}
	// While a rollback runs: lock: rollback, and it refuses the rest.
	upid := startTaskUPID(t, s, "POST", "/nodes/pve1/lxc/102/snapshot/s2/rollback", nil)
	if got := config(t, s, "102", nil)["lock"]; got != "rollback" {
		t.Errorf("lock during rollback: %v", got)
	}
	if a := api(t, s, "POST", "/nodes/pve1/lxc/102/status/start", nil, token); a.status != "500 CT is locked (rollback)" {
		t.Errorf("start during rollback: %q", a.status)
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot", url.Values{"snapname": {"s3"}}); exit != "CT is locked (rollback)" {
		t.Errorf("snapshot during rollback: %q", exit)
	}
	if exit := waitTask(t, s, "pve1", upid); exit != "OK" {
		t.Fatalf("rollback s2: %s", exit)
	}
	if exit, _ := runTask(t, s, "DELETE", "/nodes/pve1/lxc/102/snapshot/s2", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot/s1/rollback", nil); exit != "OK" {
		t.Errorf("zfs rollback s1 once most recent: %q", exit)
	}
	// A failed volume step: "snapshot create failed: starting cleanup",
	// section and lock gone.
	s.FailNextTask("vzsnapshot", "zfs error: out of space")
	exit, log := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot", url.Values{"snapname": {"s4"}})
	if exit != "zfs error: out of space" {
		t.Errorf("failed snapshot: %q", exit)
	}
	wantLines(t, "failed snapshot", log, "snapshot create failed: starting cleanup")
	if _, ok := snapList(t, s, "102")["s4"]; ok {
		t.Errorf("s4 left after the cleanup")
	}
	if got := config(t, s, "102", nil)["lock"]; got != nil {
		t.Errorf("lock after the cleanup: %v", got)
	}
	// A template can take no snapshot and roll back to none.
	put(t, s, "102", url.Values{"template": {"1"}})
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot", url.Values{"snapname": {"s5"}}); exit != "you can't take a snapshot if it's a template" {
		t.Errorf("template snapshot: %q", exit)
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/102/snapshot/s1/rollback", nil); exit != "you can't rollback if vm is a template" {
		t.Errorf("template rollback: %q", exit)
	}
}

// TestStoredShowsLocksAndSnapshots: Stored lists what a CT's config file
// holds besides its keys (Config.pm write_pct_config: `lock:` in the main
// section, a `[NAME]` section per snapshot) and each volume's snapshots,
// so that a test can assert none is left.
func TestStoredShowsLocksAndSnapshots(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl},
		TaskDurations: map[string]time.Duration{"vzsnapshot": 200 * time.Millisecond, "vzcreate": 200 * time.Millisecond}})
	stored := func(prefix string) []string {
		var out []string
		for _, l := range s.Stored() {
			if strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		return out
	}
	has := func(what string, want bool, lines ...string) {
		t.Helper()
		all := s.Stored()
		for _, l := range lines {
			found := false
			for _, g := range all {
				found = found || g == l
			}
			if found != want {
				t.Errorf("%s: %q stored %v, want %v:\n%s", what, l, found, want, strings.Join(all, "\n"))
			}
		}
	}
	upid := startTaskUPID(t, s, "POST", "/nodes/pve1/lxc", createForm("100"))
	if got := stored("100 "); !reflect.DeepEqual(got, []string{"100 lock: create"}) {
		t.Errorf("while the create runs: %q", got)
	}
	if exit := waitTask(t, s, "pve1", upid); exit != "OK" {
		t.Fatal(exit)
	}
	has("after the create", false, "100 lock: create")
	has("after the create", true, "100 hostname: web", "pve1 local-lvm:vm-100-disk-0")

	upid = startTaskUPID(t, s, "POST", "/nodes/pve1/lxc/100/snapshot", url.Values{"snapname": {"s1"}, "description": {"before"}})
	has("while the snapshot runs", true, "100 lock: snapshot", "100 snapshot s1", "100 [s1] snapstate: prepare", "100 [s1] hostname: web")
	if exit := waitTask(t, s, "pve1", upid); exit != "OK" {
		t.Fatal(exit)
	}
	has("after the snapshot", false, "100 lock: snapshot", "100 [s1] snapstate: prepare")
	has("after the snapshot", true, "100 snapshot s1", "100 [s1] description: before", "100 parent: s1",
		"pve1 local-lvm:vm-100-disk-0 snapshot s1")

	if exit, _ := runTask(t, s, "DELETE", "/nodes/pve1/lxc/100/snapshot/s1", nil); exit != "OK" {
		t.Fatal(exit)
	}
	for _, l := range s.Stored() {
		if strings.Contains(l, "s1") || strings.Contains(l, "lock:") {
			t.Errorf("after delsnapshot: %q", l)
		}
	}
}
