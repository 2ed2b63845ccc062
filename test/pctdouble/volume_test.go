package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// volPath is the directory of a volume of local-lvm in the test's state.
func (e *env) volPath(name string) string { return filepath.Join(e.dir, "volumes/local-lvm", name) }

// TestRootfsIsAVolume: the rootfs is the directory of the rootfs volume
// the config names; there is no rootfs/<vmid> any more.
func TestRootfsIsAVolume(t *testing.T) {
	e := newEnv(t)
	e.create(200, "--hostname", "a")
	vol := e.volPath("vm-200-disk-0")
	if !fileExists(filepath.Join(vol, "etc/pctdouble-marker")) {
		t.Fatal("template not extracted into the rootfs volume")
	}
	if fileExists(filepath.Join(e.dir, "rootfs")) {
		t.Fatal("rootfs/ still made")
	}
	if got := e.ok("pvesm", "path", "local-lvm:vm-200-disk-0"); got != vol+"\n" {
		t.Fatalf("pvesm path: %q", got)
	}
	e.ok("pct", "start", "200")
	if cfg := e.read("lxcpath/200/config"); !strings.Contains(cfg, "lxc.rootfs.path = dir:"+vol+"\n") {
		t.Fatalf("LXC config:\n%s", cfg)
	}
	e.ok("pct", "exec", "200", "--", "sh", "-c", "echo hi > /written")
	if b, _ := os.ReadFile(filepath.Join(vol, "written")); string(b) != "hi\n" {
		t.Fatalf("file written in the CT: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(vol, "etc/hostname")); string(b) != "a\n" {
		t.Fatalf("/etc/hostname in the rootfs volume: %q", b)
	}
}

// TestSetRootfsExistingVolume: pct set --rootfs with another existing
// volume replaces the key on a stopped CT (the old volume is not made
// unusedN); on a running CT it is pending until the next start.
func TestSetRootfsExistingVolume(t *testing.T) {
	e := newEnv(t)
	e.create(201)
	e.create(202)
	os.WriteFile(filepath.Join(e.volPath("vm-202-disk-0"), "which"), []byte("202\n"), 0o644)
	e.ok("pct", "set", "201", "--rootfs", "local-lvm:vm-202-disk-0,size=1G")
	conf := e.read("lxc/201.conf")
	if !strings.Contains(conf, "rootfs: local-lvm:vm-202-disk-0,size=1G\n") || strings.Contains(conf, "unused") {
		t.Fatalf("config after set --rootfs:\n%s", conf)
	}
	e.ok("pct", "start", "201")
	if got := e.ok("pct", "exec", "201", "--", "cat", "/which"); got != "202\n" {
		t.Fatalf("the CT does not run on the new rootfs: %q", got)
	}
	// Running: pending (vmconfig_hotplug_pending skips rootfs).
	e.ok("pct", "set", "201", "--rootfs", "local-lvm:vm-201-disk-0,size=1G")
	conf = e.read("lxc/201.conf")
	if !strings.Contains(conf, "rootfs: local-lvm:vm-202-disk-0,size=1G\nunprivileged: 1\n\n[pve:pending]\nrootfs: local-lvm:vm-201-disk-0,size=1G\n") {
		t.Fatalf("pending rootfs:\n%s", conf)
	}
	if got := e.ok("pct", "config", "201"); !strings.Contains(got, "rootfs: local-lvm:vm-201-disk-0,size=1G\n") {
		t.Fatalf("pct config shows the pending value applied:\n%s", got)
	}
	if got := e.ok("pct", "config", "201", "--current", "1"); !strings.Contains(got, "rootfs: local-lvm:vm-202-disk-0,size=1G\n") {
		t.Fatalf("pct config --current:\n%s", got)
	}
	e.ok("pct", "stop", "201")
	e.ok("pct", "start", "201") // vm_start applies the pending change
	if conf = e.read("lxc/201.conf"); !strings.Contains(conf, "rootfs: local-lvm:vm-201-disk-0,size=1G\n") || strings.Contains(conf, "pending") {
		t.Fatalf("pending not applied at start:\n%s", conf)
	}
	if r := e.run("pct", "exec", "201", "--", "cat", "/which"); r.code == 0 {
		t.Fatal("still on 202's rootfs")
	}
	e.ok("pct", "stop", "201")
	// update_pct_config's checks; a volume that does not exist is
	// accepted (root@pam) and fails at start.
	e.fails("storage 'nope' does not exist\n", "pct", "set", "201", "--rootfs", "nope:vm-201-disk-0")
	e.fails("storage 'local' does not allow content type 'rootdir' (Container)\n", "pct", "set", "201", "--rootfs", "local:vm-201-disk-0")
	e.ok("pct", "set", "201", "--rootfs", "local-lvm:vm-201-disk-9")
	e.fails("volume 'local-lvm:vm-201-disk-9' does not exist\nstartup for container '201' failed\n", "pct", "start", "201")
	e.ok("pct", "set", "201", "--rootfs", "local-lvm:vm-201-disk-0,size=1G")
	// A replaced mpN volume becomes unusedN; deleting unusedN frees it.
	e.ok("pct", "set", "201", "--mp0", "local-lvm:1,mp=/data")
	e.ok("pct", "set", "201", "--mp0", "local-lvm:1,mp=/data")
	conf = e.read("lxc/201.conf")
	if !strings.Contains(conf, "mp0: local-lvm:vm-201-disk-2,mp=/data,size=1G\n") || !strings.Contains(conf, "unused0: local-lvm:vm-201-disk-1\n") {
		t.Fatalf("replaced mp0:\n%s", conf)
	}
	if got := e.ok("pct", "set", "201", "--delete", "unused0"); got != "  Logical volume \"vm-201-disk-1\" successfully removed.\n" {
		t.Fatalf("delete unused0: %q", got)
	}
	if fileExists(e.volPath("vm-201-disk-1")) || strings.Contains(e.read("lxc/201.conf"), "unused0") {
		t.Fatal("unused0 not freed")
	}
	// Deleting mp0 keeps its volume as unusedN.
	e.ok("pct", "set", "201", "--delete", "mp0")
	if conf = e.read("lxc/201.conf"); !strings.Contains(conf, "unused0: local-lvm:vm-201-disk-2\n") || strings.Contains(conf, "mp0") {
		t.Fatalf("after --delete mp0:\n%s", conf)
	}
}

// TestDestroyFreesOwnedVolumesOnly: pct destroy frees the volumes the CT
// owns, warns for others; --destroy-unreferenced-disks frees its
// unreferenced ones; pvesm free removes a volume.
func TestDestroyFreesOwnedVolumesOnly(t *testing.T) {
	e := newEnv(t)
	e.create(210)
	e.create(211)
	e.ok("pct", "set", "210", "--rootfs", "local-lvm:vm-211-disk-0,size=1G")
	e.ok("pct", "set", "211", "--rootfs", "local-lvm:vm-210-disk-0,size=1G")
	r := e.run("pct", "destroy", "211")
	if r.code != 0 || r.stdout != "" || r.stderr != "ignore deletion of 'local-lvm:vm-210-disk-0', CT 211 isn't the owner!\n" {
		t.Fatalf("destroy 211: %+v", r)
	}
	if !fileExists(e.volPath("vm-210-disk-0")) || !fileExists(e.volPath("vm-211-disk-0")) {
		t.Fatal("a volume of another owner (or an unreferenced one) was freed")
	}
	r = e.run("pct", "destroy", "210", "--destroy-unreferenced-disks", "1")
	if r.code != 0 || r.stdout != "  Logical volume \"vm-210-disk-0\" successfully removed.\n" ||
		r.stderr != "ignore deletion of 'local-lvm:vm-211-disk-0', CT 210 isn't the owner!\n" {
		t.Fatalf("destroy 210 --destroy-unreferenced-disks 1: %+v", r)
	}
	if fileExists(e.volPath("vm-210-disk-0")) || !fileExists(e.volPath("vm-211-disk-0")) {
		t.Fatal("destroy-unreferenced-disks")
	}
	// pvesm free: nothing checks for users (there are none left here).
	if got := e.ok("pvesm", "free", "local-lvm:vm-211-disk-0"); got != "  Logical volume \"vm-211-disk-0\" successfully removed.\nRemoved volume 'local-lvm:vm-211-disk-0'\n" {
		t.Fatalf("pvesm free: %q", got)
	}
	if fileExists(e.volPath("vm-211-disk-0")) {
		t.Fatal("pvesm free left the volume")
	}
	if got := e.ok("pvesm", "free", "vm-299-disk-0", "--storage", "local-lvm"); got != "Removed volume 'local-lvm:vm-299-disk-0'\n" {
		t.Fatalf("pvesm free of a missing LVM-thin volume: %q", got)
	}
	e.fails("400 Parameter verification failed.\nvolume: no storage specified - incomplete volume ID\n\npvesm free <volume> [OPTIONS]\n", "pvesm", "free", "vm-1-disk-0")
	e.fails("400 Parameter verification failed.\nvolume: storage ID mismatch (local-lvm != tank)\n\npvesm free <volume> [OPTIONS]\n", "pvesm", "free", "local-lvm:vm-1-disk-0", "--storage", "tank")
	e.fails("storage 'nope' does not exist\n", "pvesm", "free", "nope:vm-1-disk-0")
	// unusedN volumes are freed by destroy too; each volume once.
	e.create(212, "--mp0", "local-lvm:1,mp=/data")
	e.ok("pct", "set", "212", "--mp0", "local-lvm:1,mp=/data")
	got := e.ok("pct", "destroy", "212")
	want := "  Logical volume \"vm-212-disk-0\" successfully removed.\n  Logical volume \"vm-212-disk-2\" successfully removed.\n  Logical volume \"vm-212-disk-1\" successfully removed.\n"
	if got != want {
		t.Fatalf("destroy 212:\n%s\nwant:\n%s", got, want)
	}
	ents, _ := os.ReadDir(filepath.Join(e.dir, "volumes/local-lvm"))
	if len(ents) != 0 {
		t.Fatalf("volumes left: %v", ents)
	}
}

// TestNewVolumeNameIsLowestFree: vdisk_alloc names a new volume with the
// lowest N free on its storage, also when an unreferenced one is there.
func TestNewVolumeNameIsLowestFree(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.volPath("vm-215-disk-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.volPath("vm-215-disk-0"), "keep"), nil, 0o644)
	e.create(215)
	if conf := e.read("lxc/215.conf"); !strings.Contains(conf, "rootfs: local-lvm:vm-215-disk-1,size=1G\n") {
		t.Fatalf("config:\n%s", conf)
	}
	if !fileExists(filepath.Join(e.volPath("vm-215-disk-0"), "keep")) {
		t.Fatal("an existing volume was overwritten")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.volPath("vm-215-disk-1"), &st); err != nil || st.Uid != 100000 {
		t.Fatalf("rootfs volume owner: %d %v", st.Uid, err)
	}
}

// TestMountPointVolumeAtCreate: a new mpN volume is "mounted" during the
// extraction (mount_all before restore_archive), so the template's files
// under its path land in the volume; its root keeps the mapped root's
// owner and 0755 (tar --skip-old-files leaves an existing directory).
// keepattrs=1: on start the volume root takes the rootfs directory's
// owner and mode (prestart hook, mountpoint_insert_staged).
func TestMountPointVolumeAtCreate(t *testing.T) {
	e := newEnv(t)
	e.create(220, "--mp0", "local-lvm:1,mp=/etc", "--mp1", "local-lvm:1,mp=/srv,keepattrs=1")
	root, etc, srv := e.volPath("vm-220-disk-0"), e.volPath("vm-220-disk-1"), e.volPath("vm-220-disk-2")
	if !fileExists(filepath.Join(etc, "pctdouble-marker")) || fileExists(filepath.Join(root, "etc/pctdouble-marker")) {
		t.Fatal("the template's /etc did not land in the mp0 volume")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(etc, &st); err != nil || st.Uid != 100000 || st.Gid != 100000 || st.Mode&0o7777 != 0o755 {
		t.Fatalf("mp0 volume root: %d:%d %o %v", st.Uid, st.Gid, st.Mode&0o7777, err)
	}
	if err := syscall.Stat(filepath.Join(root, "etc"), &st); err != nil || st.Uid != 100000 {
		t.Fatalf("mount point dir in the rootfs: %d %v", st.Uid, err)
	}
	if err := os.Chown(filepath.Join(root, "srv"), 101000, 101001); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "srv"), 0o710)
	e.ok("pct", "start", "220")
	if err := syscall.Stat(srv, &st); err != nil || st.Uid != 101000 || st.Gid != 101001 || st.Mode&0o7777 != 0o710 {
		t.Fatalf("keepattrs: mp1 volume root %d:%d %o %v", st.Uid, st.Gid, st.Mode&0o7777, err)
	}
	if got := e.ok("pct", "exec", "220", "--", "cat", "/etc/pctdouble-marker"); got != "marker\n" {
		t.Fatalf("marker via the mp0 volume: %q", got)
	}
	if err := syscall.Stat(etc, &st); err != nil || st.Uid != 100000 {
		t.Fatalf("mp0 without keepattrs changed: %d %v", st.Uid, err)
	}
}
