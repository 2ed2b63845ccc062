package pvesim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 14, points 8 and 11: the texts, statuses and stages of the real
// create_vm (pve-container 6.1.10 src/PVE/API2/LXC.pm) and
// check_ct_modify_config_perm (src/PVE/LXC.pm).

// rootTicket logs in as root@pam and returns an auth func for writes.
func rootTicket(t *testing.T, s *Server) func(*http.Request) {
	t.Helper()
	d := mustOK(t, api(t, s, "POST", "/access/ticket", url.Values{"username": {"root@pam"}, "password": {"secret"}}, nil)).(map[string]any)
	tk, csrf := d["ticket"].(string), d["CSRFPreventionToken"].(string)
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: tk})
		r.Header.Set("CSRFPreventionToken", csrf)
	}
}

func TestRootOnlyOptionsForTokens(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})
	for _, c := range []struct{ key, value, what string }{
		{"dev0", "/dev/fuse", "configuring device passthrough is only allowed for root@pam"},
		{"mp0", "/srv/data,mp=/data", "mount point type bind is only allowed for root@pam"},
		{"mp0", "/dev/sdb1,mp=/data", "mount point type device is only allowed for root@pam"},
		{"mp0", "mp=/data,volume=/srv/data", "mount point type bind is only allowed for root@pam"},
		{"features", "keyctl=1", "changing feature flags (except nesting) is only allowed for root@pam"},
		{"hookscript", "local:snippets/hook.pl", "changing the hookscript is only allowed for root@pam"},
	} {
		f := createForm("100")
		f.Set(c.key, c.value)
		if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.code != 403 || a.status != "403 Permission check failed ("+c.what+")" {
			t.Errorf("%s=%s as a token: %q", c.key, c.value, a.status)
		}
	}
	// A privileged CT: any feature, nesting too, is root@pam's.
	f := createForm("100")
	f.Set("unprivileged", "0")
	f.Set("features", "nesting=1")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.status != "403 Permission check failed (changing feature flags for privileged container is only allowed for root@pam)" {
		t.Errorf("privileged features: %q", a.status)
	}
	if g := s.Guests(); len(g) != 0 {
		t.Fatalf("a refused create left %v", g)
	}
	// The same config change through PUT: refused too.
	mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token))
	time.Sleep(50 * time.Millisecond)
	if a := api(t, s, "PUT", "/nodes/pve1/lxc/100/config", url.Values{"dev0": {"/dev/fuse"}}, token); a.status != "403 Permission check failed (configuring device passthrough is only allowed for root@pam)" {
		t.Errorf("PUT dev0 as a token: %q", a.status)
	}
	// root@pam with a ticket may.
	root := rootTicket(t, s)
	f = createForm("101")
	f.Set("dev0", "/dev/fuse")
	f.Set("features", "keyctl=1")
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", f, root)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "OK" {
		t.Fatalf("root@pam create: %q", ex)
	}
}

func TestCreateStorageChecks(t *testing.T) {
	s := start(t, Options{Nodes: []string{"pve1", "pve2"}, Templates: []string{debTpl},
		NoStorage: map[string][]string{"pve2": {"local-lvm"}}})
	// A storage without rootdir content: a 400 on "storage", no CT.
	f := createForm("100")
	f.Set("rootfs", "local:8")
	a := api(t, s, "POST", "/nodes/pve1/lxc", f, token)
	errs, _ := a.body["errors"].(map[string]any)
	if a.status != "400 Parameter verification failed." || errs["storage"] != "storage 'local' does not support container directories" {
		t.Errorf("no rootdir: %q %v", a.status, a.body)
	}
	// Without rootfs: the "storage" parameter, default local.
	f.Del("rootfs")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.code != 400 {
		t.Errorf("default storage local: %q", a.status)
	}
	// A storage of other nodes only.
	if a := api(t, s, "POST", "/nodes/pve2/lxc", createForm("100"), token); a.status != "500 storage 'local-lvm' is not available on node 'pve2'" {
		t.Errorf("storage of other nodes: %q", a.status)
	}
	f = createForm("100")
	f.Set("rootfs", "fast:8")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.status != "500 storage 'fast' does not exist" {
		t.Errorf("unknown storage: %q", a.status)
	}
	s.SetStorageDisabled("local-lvm", true)
	if a := api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token); a.status != "500 storage 'local-lvm' is disabled" {
		t.Errorf("disabled storage: %q", a.status)
	}
	s.SetStorageDisabled("local-lvm", false)
	// The template's storage disabled: found inside the task
	// (restore_archive's storage_check_enabled).
	s.SetStorageDisabled("local", true)
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "unable to create CT 100 - storage 'local' is disabled" {
		t.Errorf("template storage disabled: %q", ex)
	}
	s.SetStorageDisabled("local", false)
	if g := s.Guests(); len(g) != 0 {
		t.Fatalf("CTs left: %v", g)
	}
}

func TestCreateClusterFaults(t *testing.T) {
	s := start(t, Options{Nodes: []string{"pve1", "pve2"}, Templates: []string{debTpl}})
	s.SetNoQuorum(true)
	if a := api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token); a.status != "500 cluster not ready - no quorum?" {
		t.Errorf("no quorum: %q", a.status)
	}
	s.SetNoQuorum(false)
	// Another node writes VMID 100 at the same moment: pmxcfs refuses ours.
	s.RaceNextCreate("pve2")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token); a.status != "500 unable to create CT 100 - close (rename) atomic file '/etc/pve/nodes/pve1/lxc/100.conf' failed: File exists" {
		t.Errorf("race: %q", a.status)
	}
	if g := s.Guests(); len(g) != 1 || g[0] != "100@pve2 stopped" {
		t.Errorf("after the race: %v", g)
	}
	// The config lock: create_and_lock_config's error carries the prefix.
	s.SetLockTimeout(true)
	if a := api(t, s, "POST", "/nodes/pve1/lxc", createForm("101"), token); a.status != "500 unable to create CT 101 - can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout" {
		t.Errorf("lock timeout: %q", a.status)
	}
	s.SetLockTimeout(false)
	// A shared storage's cluster lock, inside the task: nothing left.
	s.CfsLockTimeoutNext(1)
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("101"), token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "unable to create CT 101 - cfs-lock 'storage-local-lvm' error: got lock request timeout" {
		t.Errorf("cfs lock: %q", ex)
	}
	if g := s.Guests(); len(g) != 1 {
		t.Errorf("CT left after the cfs-lock timeout: %v", g)
	}
	upid = mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("101"), token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "OK" {
		t.Errorf("after the cfs lock: %q", ex)
	}
}

// GET /nodes/{node}/tasks as pve-manager's node_tasks serves it.
func TestTaskList(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}, TaskDurations: map[string]time.Duration{"vzstart": time.Hour}})
	c1 := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token)).(string)
	waitTask(t, s, "pve1", c1)
	time.Sleep(10 * time.Millisecond)
	f := createForm("101")
	f.Set("ostemplate", "local:vztmpl/nothere.tar.zst")
	c2 := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", f, token)).(string)
	waitTask(t, s, "pve1", c2)
	st := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc/100/status/start", url.Values{}, token)).(string)

	list := func(q url.Values) ([]map[string]any, float64) {
		t.Helper()
		a := api(t, s, "GET", "/nodes/pve1/tasks", q, token)
		rows := []map[string]any{}
		for _, r := range mustOK(t, a).([]any) {
			rows = append(rows, r.(map[string]any))
		}
		total, _ := a.body["total"].(float64)
		return rows, total
	}
	upids := func(rows []map[string]any) string {
		var out []string
		for _, r := range rows {
			out = append(out, r["upid"].(string))
		}
		return strings.Join(out, " ")
	}
	// Default source=archive: finished tasks only, the newest first.
	rows, total := list(nil)
	if upids(rows) != c2+" "+c1 || total != 2 {
		t.Fatalf("archive: %v (total %v)", upids(rows), total)
	}
	r := rows[1]
	if r["type"] != "vzcreate" || r["id"] != "100" || r["user"] != "root@pam" || r["tokenid"] != "ci" || r["status"] != "OK" ||
		r["node"] != "pve1" || r["endtime"] == nil || r["starttime"] == nil || r["pid"] == nil || r["pstart"] == nil {
		t.Errorf("row %v", r)
	}
	if rows[0]["status"] != "unable to create CT 101 - volume 'local:vztmpl/nothere.tar.zst' does not exist" {
		t.Errorf("failed task's status %v", rows[0]["status"])
	}
	// source=active: the running start, status RUNNING, no endtime.
	rows, _ = list(url.Values{"source": {"active"}})
	if upids(rows) != st || rows[0]["status"] != "RUNNING" || rows[0]["endtime"] != nil {
		t.Errorf("active: %v", rows)
	}
	// source=all with filters.
	if rows, _ = list(url.Values{"source": {"all"}, "vmid": {"101"}, "typefilter": {"vzcreate"}}); upids(rows) != c2 {
		t.Errorf("vmid 101 vzcreate: %v", upids(rows))
	}
	if rows, _ = list(url.Values{"source": {"all"}, "typefilter": {"vzstart"}}); upids(rows) != st {
		t.Errorf("vzstart: %v", upids(rows))
	}
	if rows, _ = list(url.Values{"errors": {"1"}}); upids(rows) != c2 {
		t.Errorf("errors: %v", upids(rows))
	}
	if rows, _ = list(url.Values{"statusfilter": {"ok"}}); upids(rows) != c1 {
		t.Errorf("statusfilter ok: %v", upids(rows))
	}
	if rows, _ = list(url.Values{"userfilter": {"ROOT"}, "limit": {"1"}}); upids(rows) != c2 {
		t.Errorf("userfilter, limit 1: %v", upids(rows))
	}
	if rows, total = list(url.Values{"start": {"1"}}); upids(rows) != c1 || total != 2 {
		t.Errorf("start 1: %v (total %v)", upids(rows), total)
	}
	if rows, _ = list(url.Values{"userfilter": {"nobody"}}); len(rows) != 0 {
		t.Errorf("userfilter nobody: %v", upids(rows))
	}
	future := time.Now().Add(time.Hour).Unix()
	if rows, _ = list(url.Values{"since": {strconv.FormatInt(future, 10)}}); len(rows) != 0 {
		t.Errorf("since the future: %v", upids(rows))
	}
	if len(s.Rejected()) != 0 {
		t.Errorf("rejected: %v", s.Rejected())
	}
}
