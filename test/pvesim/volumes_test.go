package pvesim

import (
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// task runs one task-starting request and returns its exit status and log
// (without the final TASK line).
func runTask(t *testing.T, s *Server, method, path string, form url.Values) (string, []string) {
	t.Helper()
	upid, ok := mustOK(t, api(t, s, method, path, form, token)).(string)
	if !ok {
		t.Fatalf("%s %s: no UPID", method, path)
	}
	exit := waitTask(t, s, "pve1", upid)
	rows := mustOK(t, api(t, s, "GET", "/nodes/pve1/tasks/"+url.PathEscape(upid)+"/log", url.Values{"limit": {"500"}}, token)).([]any)
	var lines []string
	for _, r := range rows[:len(rows)-1] {
		lines = append(lines, r.(map[string]any)["t"].(string))
	}
	return exit, lines
}

func config(t *testing.T, s *Server, vmid string, q url.Values) map[string]any {
	t.Helper()
	return mustOK(t, api(t, s, "GET", "/nodes/pve1/lxc/"+vmid+"/config", q, token)).(map[string]any)
}

func put(t *testing.T, s *Server, vmid string, form url.Values) {
	t.Helper()
	mustOK(t, api(t, s, "PUT", "/nodes/pve1/lxc/"+vmid+"/config", form, token))
}

// volumes lists the CT volumes of a storage.
func volumes(t *testing.T, s *Server, sid string) []string {
	t.Helper()
	rows := mustOK(t, api(t, s, "GET", "/nodes/pve1/storage/"+sid+"/content", url.Values{"content": {"rootdir"}}, token)).([]any)
	out := []string{}
	for _, r := range rows {
		out = append(out, r.(map[string]any)["volid"].(string))
	}
	sort.Strings(out)
	return out
}

func keysWith(conf map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	for k, v := range conf {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			if g == w {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: log lacks %q: %q", what, w, got)
		}
	}
}

// TestMountPointVolumesAndDestroy: create_disks allocates rootfs, then each
// mpN, vm-VMID-disk-N with N the lowest free; destroy frees only what the
// CT owns by name, destroy-unreferenced-disks also the CT's other volumes.
func TestMountPointVolumesAndDestroy(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})
	f := createForm("100")
	f.Set("mp0", "local-lvm:2,mp=/data,backup=1")
	f.Set("mp1", "mp=/cache,volume=local-lvm:0.5")
	f.Set("unused0", "local-lvm:vm-100-disk-7")
	exit, log := runTask(t, s, "POST", "/nodes/pve1/lxc", f)
	if exit != "OK" {
		t.Fatalf("create: %s %q", exit, log)
	}
	wantLines(t, "create", log, `  Logical volume "vm-100-disk-0" created.`, `  Logical volume "vm-100-disk-1" created.`, `  Logical volume "vm-100-disk-2" created.`)
	cfg := config(t, s, "100", nil)
	want := map[string]any{
		"rootfs": "local-lvm:vm-100-disk-0,size=8G",
		"mp0":    "local-lvm:vm-100-disk-1,mp=/data,backup=1,size=2G",
		"mp1":    "local-lvm:vm-100-disk-2,mp=/cache,size=512M",
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %v, want %v", k, cfg[k], v)
		}
	}
	if _, ok := cfg["unused0"]; ok {
		t.Errorf("create kept unused0: %v", cfg)
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc", createForm("101")); exit != "OK" {
		t.Fatalf("create 101: %s", exit)
	}
	// Another CT's volume as mp2: accepted, its size rescanned.
	put(t, s, "100", url.Values{"mp2": {"local-lvm:vm-101-disk-0,mp=/foreign"}})
	// mp1 deleted: its volume becomes unused0; then the rootfs swapped to
	// it: the old rootfs is not made unusedN, unused0 goes (in use).
	put(t, s, "100", url.Values{"delete": {"mp1"}})
	if got := config(t, s, "100", nil)["unused0"]; got != "local-lvm:vm-100-disk-2" {
		t.Fatalf("unused0 after delete=mp1: %v", got)
	}
	put(t, s, "100", url.Values{"rootfs": {"local-lvm:vm-100-disk-2,size=512M"}})
	cfg = config(t, s, "100", nil)
	if cfg["rootfs"] != "local-lvm:vm-100-disk-2,size=512M" || cfg["mp2"] != "local-lvm:vm-101-disk-0,mp=/foreign,size=8G" || len(keysWith(cfg, "unused")) != 0 {
		t.Fatalf("after the swap: %v", cfg)
	}
	exit, log = runTask(t, s, "DELETE", "/nodes/pve1/lxc/100", nil)
	if exit != "OK" {
		t.Fatalf("destroy: %s", exit)
	}
	wantLines(t, "destroy", log, "ignore deletion of 'local-lvm:vm-101-disk-0', CT 100 isn't the owner!",
		`  Logical volume "vm-100-disk-2" successfully removed.`, `  Logical volume "vm-100-disk-1" successfully removed.`)
	if got, want := volumes(t, s, "local-lvm"), []string{"local-lvm:vm-100-disk-0", "local-lvm:vm-101-disk-0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after destroy: %v, want %v", got, want)
	}
	// The VMID again: disk-0 is taken (unreferenced), so the rootfs is
	// disk-1; destroy-unreferenced-disks frees both.
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc", createForm("100")); exit != "OK" {
		t.Fatalf("create 100 again: %s", exit)
	}
	if got := config(t, s, "100", nil)["rootfs"]; got != "local-lvm:vm-100-disk-1,size=8G" {
		t.Fatalf("rootfs of the new 100: %v", got)
	}
	exit, log = runTask(t, s, "DELETE", "/nodes/pve1/lxc/100", url.Values{"destroy-unreferenced-disks": {"1"}})
	if exit != "OK" {
		t.Fatalf("destroy unreferenced: %s", exit)
	}
	wantLines(t, "destroy unreferenced", log, `  Logical volume "vm-100-disk-1" successfully removed.`, `  Logical volume "vm-100-disk-0" successfully removed.`)
	if got, want := volumes(t, s, "local-lvm"), []string{"local-lvm:vm-101-disk-0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after destroy-unreferenced-disks: %v, want %v", got, want)
	}
	// A mount point with no rootfs: refused before anything.
	f = createForm("102")
	f.Del("rootfs")
	f.Set("mp0", "local-lvm:1,mp=/data")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.status != "500 mount points configured, but 'rootfs' not set - aborting" {
		t.Errorf("mp without rootfs: %q", a.status)
	}
	// A mount point on a storage without rootdir content: the 400 on storage.
	f = createForm("102")
	f.Set("mp0", "local:1,mp=/data")
	a := api(t, s, "POST", "/nodes/pve1/lxc", f, token)
	if errs, _ := a.body["errors"].(map[string]any); a.code != 400 || errs["storage"] != "storage 'local' does not support container directories" {
		t.Errorf("mp on local: %q %v", a.status, a.body)
	}
}

// TestPutConfigVolumes: update_pct_config's storage checks, the rootfs of a
// running CT pending until the next start, unusedN freed only when owned
// and unused, and the image volume freed through the storage API.
func TestPutConfigVolumes(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})
	for _, id := range []string{"100", "101"} {
		if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc", createForm(id)); exit != "OK" {
			t.Fatalf("create %s: %s", id, exit)
		}
	}
	for _, c := range []struct{ form url.Values }{
		{url.Values{"rootfs": {"nosuch:vm-100-disk-0"}}},
		{url.Values{"rootfs": {"local:vm-100-disk-0"}}},
		{url.Values{"delete": {"rootfs"}}},
	} {
		a := api(t, s, "PUT", "/nodes/pve1/lxc/100/config", c.form, token)
		want := map[string]string{"nosuch:vm-100-disk-0": "500 storage 'nosuch' does not exist",
			"local:vm-100-disk-0": "500 storage 'local' does not allow content type 'rootdir' (Container)",
			"":                    "500 unable to delete required option 'rootfs'"}[c.form.Get("rootfs")]
		if a.status != want {
			t.Errorf("%v: %q, want %q", c.form, a.status, want)
		}
	}
	a := api(t, s, "PUT", "/nodes/pve1/lxc/100/config", url.Values{"delete": {"memory"}, "memory": {"1024"}}, token)
	if errs, _ := a.body["errors"].(map[string]any); a.code != 400 || errs["delete"] != "you can't use '-memory' and -delete memory' at the same time" {
		t.Errorf("set and delete: %q %v", a.status, a.body)
	}
	// Running: the rootfs is pending; GET shows it, current=1 not; the
	// next start applies it.
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/100/status/start", nil); exit != "OK" {
		t.Fatal(exit)
	}
	put(t, s, "100", url.Values{"rootfs": {"local-lvm:vm-101-disk-0,size=8G"}})
	if got := config(t, s, "100", nil)["rootfs"]; got != "local-lvm:vm-101-disk-0,size=8G" {
		t.Errorf("rootfs with pending: %v", got)
	}
	if got := config(t, s, "100", url.Values{"current": {"1"}})["rootfs"]; got != "local-lvm:vm-100-disk-0,size=8G" {
		t.Errorf("current rootfs: %v", got)
	}
	for _, step := range []string{"stop", "start"} {
		if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/100/status/"+step, nil); exit != "OK" {
			t.Fatal(exit)
		}
	}
	if got := config(t, s, "100", url.Values{"current": {"1"}})["rootfs"]; got != "local-lvm:vm-101-disk-0,size=8G" {
		t.Errorf("rootfs after restart: %v", got)
	}
	if exit, _ := runTask(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	// 100's own old rootfs and 101's as unusedN: delete=unused0 frees 100's
	// only; another CT's volume stays on the storage.
	put(t, s, "100", url.Values{"mp0": {"local-lvm:vm-100-disk-0,mp=/old"}})
	put(t, s, "100", url.Values{"mp0": {"local-lvm:1,mp=/new"}})
	cfg := config(t, s, "100", nil)
	if cfg["mp0"] != "local-lvm:vm-100-disk-1,mp=/new,size=1G" || cfg["unused0"] != "local-lvm:vm-100-disk-0" {
		t.Fatalf("mp0 replaced: %v", cfg)
	}
	put(t, s, "100", url.Values{"delete": {"unused0"}})
	put(t, s, "100", url.Values{"unused0": {"local-lvm:vm-101-disk-0"}})
	put(t, s, "100", url.Values{"delete": {"unused0"}})
	cfg = config(t, s, "100", nil)
	if len(keysWith(cfg, "unused")) != 0 {
		t.Errorf("unused left: %v", cfg)
	}
	if got, want := volumes(t, s, "local-lvm"), []string{"local-lvm:vm-100-disk-1", "local-lvm:vm-101-disk-0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete=unused0: %v, want %v", got, want)
	}
	// The storage API frees an image volume (no in-use check): task id
	// OWNER@STORAGE, lvremove's line, "Removed volume"; a missing LVM-thin
	// volume is no error.
	upid := mustOK(t, api(t, s, "DELETE", "/nodes/pve1/storage/local-lvm/content/local-lvm:vm-101-disk-0", nil, token)).(string)
	if !strings.Contains(upid, ":imgdel:101@local-lvm:") {
		t.Errorf("imgdel upid %q", upid)
	}
	if exit := waitTask(t, s, "pve1", upid); exit != "OK" {
		t.Errorf("imgdel: %s", exit)
	}
	exit, log := runTask(t, s, "DELETE", "/nodes/pve1/storage/local-lvm/content/vm-101-disk-0", nil)
	if exit != "OK" || !reflect.DeepEqual(log, []string{"Removed volume 'local-lvm:vm-101-disk-0'"}) {
		t.Errorf("imgdel of a missing volume: %s %q", exit, log)
	}
	if got, want := volumes(t, s, "local-lvm"), []string{"local-lvm:vm-100-disk-1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after imgdel: %v, want %v", got, want)
	}
}
