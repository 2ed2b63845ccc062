package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSnapshotRollbackDelete: snapshot sections, the volume copies, a
// rollback that restores the volumes exactly and the config but keeps the
// current description, listsnapshot's tree, delsnapshot.
func TestSnapshotRollbackDelete(t *testing.T) {
	e := newEnv(t)
	e.create(300, "--mp0", "local-lvm:1,mp=/data", "--description", "orig")
	root, data := e.volPath("vm-300-disk-0"), e.volPath("vm-300-disk-1")
	os.WriteFile(filepath.Join(data, "kept"), []byte("1\n"), 0o644)
	e.ok("pct", "snapshot", "300", "s1", "--description", "first\nsecond")
	conf := e.read("lxc/300.conf")
	for _, want := range []string{"#orig\n", "parent: s1\n", "\n[s1]\n#first\n#second\narch: amd64\n", "mp0: local-lvm:vm-300-disk-1,mp=/data,size=1G\n"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "snapstate") || strings.Contains(conf, "lock:") || strings.Count(conf, "#orig") != 1 {
		t.Fatalf("config after the snapshot:\n%s", conf)
	}
	for _, p := range []string{"volumes/local-lvm/.snap/vm-300-disk-0/s1/etc/pctdouble-marker", "volumes/local-lvm/.snap/vm-300-disk-1/s1/kept"} {
		if !fileExists(filepath.Join(e.dir, p)) {
			t.Fatalf("no snapshot copy %s", p)
		}
	}
	if got := e.ok("pct", "config", "300"); strings.Contains(got, "snaptime") || !strings.Contains(got, "parent: s1\n") {
		t.Fatalf("pct config must print the current section only:\n%s", got)
	}
	if got := e.ok("pct", "config", "300", "--snapshot", "s1"); !strings.Contains(got, "description: first%0Asecond\n") || !strings.Contains(got, "snaptime: ") {
		t.Fatalf("pct config --snapshot s1:\n%s", got)
	}
	e.fails("snapshot 'nope' does not exist\n", "pct", "config", "300", "--snapshot", "nope")

	// Change things after the snapshot, while running.
	e.ok("pct", "start", "300")
	e.ok("pct", "exec", "300", "--", "sh", "-c", "echo x > /after; echo y > /data/new; rm /data/kept")
	e.ok("pct", "set", "300", "--memory", "1024", "--description", "changed")
	e.fails("snapshot name 's1' already used\n", "pct", "snapshot", "300", "s1")
	e.fails("unable to use snapshot name 'current' (reserved name)\n", "pct", "snapshot", "300", "current")
	e.fails("unable to use snapshot name 'vzdump' (reserved name)\n", "pct", "snapshot", "300", "vzdump")
	e.fails("400 Parameter verification failed.\nsnapname: invalid format - invalid configuration ID '1x'\n\npct snapshot <vmid> <snapname> [OPTIONS]\n", "pct", "snapshot", "300", "1x")
	e.fails("snapshot 'nope' does not exist\n", "pct", "rollback", "300", "nope")
	e.fails("snapshot 'nope' does not exist\n", "pct", "delsnapshot", "300", "nope")

	// A rollback of a running CT stops it first.
	e.ok("pct", "rollback", "300", "s1")
	if got := e.ok("pct", "status", "300"); got != "status: stopped\n" {
		t.Fatalf("after rollback: %q", got)
	}
	if fileExists(filepath.Join(root, "after")) || fileExists(filepath.Join(data, "new")) || !fileExists(filepath.Join(data, "kept")) {
		t.Fatal("volumes not restored exactly")
	}
	conf = e.read("lxc/300.conf")
	if !strings.HasPrefix(conf, "#changed\n") || strings.Contains(before(conf, "[s1]"), "memory") || !strings.Contains(conf, "parent: s1\n") {
		t.Fatalf("config after rollback (description kept, memory back):\n%s", conf)
	}
	e.ok("pct", "rollback", "300", "s1", "--start", "1")
	if got := e.ok("pct", "status", "300"); got != "status: running\n" {
		t.Fatalf("rollback --start 1: %q", got)
	}
	e.ok("pct", "snapshot", "300", "s2") // of a running CT
	conf = e.read("lxc/300.conf")
	if !strings.Contains(conf, "\n[s2]\n") || !strings.Contains(after(conf, "[s2]"), "parent: s1\n") {
		t.Fatalf("s2's parent:\n%s", conf)
	}
	// listsnapshot: a tree by parent, then current.
	snaptime := func(name string) string {
		m := regexp.MustCompile(`\[` + name + `\][^\[]*snaptime: (\d+)`).FindStringSubmatch(e.read("lxc/300.conf"))
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return time.Unix(n, 0).Format("2006-01-02 15:04:05")
	}
	want := fmt.Sprintf("`-> %-27s %-23s %s\n `-> %-26s %-23s %s\n  `-> %-25s %-23s %s\n", "s1", snaptime("s1"), "first", "s2", snaptime("s2"), "no-description", "current", "", "You are here!")
	if got := e.ok("pct", "listsnapshot", "300"); got != want {
		t.Fatalf("listsnapshot:\n%s\nwant:\n%s", got, want)
	}
	// An incomplete snapshot cannot be rolled back to.
	path := filepath.Join(e.dir, "lxc/300.conf")
	os.WriteFile(path, []byte(strings.Replace(e.read("lxc/300.conf"), "\n[s2]\n", "\n[s2]\nsnapstate: prepare\n", 1)), 0o640)
	e.fails("unable to rollback to incomplete snapshot (snapstate = prepare)\n", "pct", "rollback", "300", "s2")
	os.WriteFile(path, []byte(strings.Replace(e.read("lxc/300.conf"), "snapstate: prepare\n", "", 1)), 0o640)
	e.ok("pct", "set", "300", "--lock", "backup")
	e.fails("CT is locked (backup)\n", "pct", "snapshot", "300", "s3")
	e.fails("CT is locked (backup)\n", "pct", "rollback", "300", "s1")
	e.fails("CT is locked (backup)\n", "pct", "delsnapshot", "300", "s1")
	e.ok("pct", "unlock", "300")
	// delsnapshot: section and copies go, s2 takes s1's parent (none).
	e.ok("pct", "delsnapshot", "300", "s1")
	conf = e.read("lxc/300.conf")
	if strings.Contains(conf, "[s1]") || strings.Contains(conf, "parent: s1") || strings.Contains(conf, "unused") || strings.Contains(conf, "lock:") {
		t.Fatalf("after delsnapshot s1:\n%s", conf)
	}
	if fileExists(filepath.Join(e.dir, "volumes/local-lvm/.snap/vm-300-disk-0/s1")) {
		t.Fatal("snapshot copy left")
	}
	// destroy frees the snapshots with their volumes.
	got := e.ok("pct", "destroy", "300", "--force", "1")
	if want := "  Logical volume \"snap_vm-300-disk-0_s2\" successfully removed.\n  Logical volume \"vm-300-disk-0\" successfully removed.\n"; !strings.HasPrefix(got, want) {
		t.Fatalf("destroy: %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "volumes/local-lvm")); len(ents) != 0 {
		t.Fatalf("left: %v", ents)
	}
}

// TestSnapshotFeatureAndStorages: has_feature('snapshot') by storage type
// and mount type, ZFS's most-recent rule, volumes becoming unusedN.
func TestSnapshotFeatureAndStorages(t *testing.T) {
	e := newEnv(t)
	e.write("storages.json", `[{"storage":"local","type":"dir","content":"vztmpl,rootdir"},
		{"storage":"local-lvm","type":"lvmthin","content":"rootdir,images"},
		{"storage":"tank","type":"zfspool","content":"rootdir,images"},
		{"storage":"vg","type":"lvm","content":"rootdir"}]`)
	e.ok("pct", "create", "310", tpl, "--rootfs", "local:1")
	e.fails("snapshot feature is not available\n", "pct", "snapshot", "310", "snap")
	e.create(311, "--mp0", "vg:1,mp=/v")
	e.fails("snapshot feature is not available\n", "pct", "snapshot", "311", "snap")
	host := t.TempDir()
	e.create(312, "--mp0", host+",mp=/host")
	e.fails("snapshot feature is not available\n", "pct", "snapshot", "312", "snap")
	if conf := e.read("lxc/312.conf"); strings.Contains(conf, "lock") || strings.Contains(conf, "[snap]") {
		t.Fatalf("a refused snapshot left something:\n%s", conf)
	}
	os.WriteFile(filepath.Join(e.dir, "lxc/310.conf"), []byte(e.read("lxc/310.conf")+"template: 1\n"), 0o640)
	e.fails("you can't take a snapshot if it's a template\n", "pct", "snapshot", "310", "snap")

	// zfspool: only the most recent snapshot.
	e.ok("pct", "create", "313", tpl, "--rootfs", "tank:1")
	e.fails("400 Parameter verification failed.\nsnapname: invalid format - invalid configuration ID 'a'\n\npct snapshot <vmid> <snapname> [OPTIONS]\n", "pct", "snapshot", "313", "a")
	e.ok("pct", "snapshot", "313", "sa")
	e.ok("pct", "snapshot", "313", "sb")
	e.fails("can't rollback, 'sa' is not most recent snapshot on 'tank:vm-313-disk-0'\n", "pct", "rollback", "313", "sa")
	e.ok("pct", "rollback", "313", "sb")
	e.ok("pct", "delsnapshot", "313", "sb")
	e.ok("pct", "rollback", "313", "sa")

	// Volumes the snapshot lacks become unusedN at rollback.
	e.create(314)
	e.ok("pct", "snapshot", "314", "snap")
	e.ok("pct", "set", "314", "--mp0", "local-lvm:1,mp=/x")
	e.ok("pct", "rollback", "314", "snap")
	conf := e.read("lxc/314.conf")
	if cur := before(conf, "[snap]"); !strings.Contains(cur, "unused0: local-lvm:vm-314-disk-1\n") || strings.Contains(cur, "mp0") {
		t.Fatalf("after rollback:\n%s", conf)
	}
	if !fileExists(e.volPath("vm-314-disk-1")) {
		t.Fatal("the unused volume was freed")
	}
	// delsnapshot after a rootfs swap: the old rootfs, now only in the
	// snapshot, becomes unusedN (snapshot_delete adds the snapshot's
	// volumes, write_pct_config drops those still used).
	e.create(315)
	e.ok("pct", "set", "314", "--rootfs", "local-lvm:vm-315-disk-0,size=1G")
	e.ok("pct", "delsnapshot", "314", "snap")
	if conf := e.read("lxc/314.conf"); !strings.Contains(conf, "unused1: local-lvm:vm-314-disk-0\n") || strings.Contains(conf, "[snap]") {
		t.Fatalf("after delsnapshot:\n%s", conf)
	}
}

// before and after split s at the first sep (all of s when it is absent).
func before(s, sep string) string { b, _, _ := strings.Cut(s, sep); return b }

func after(s, sep string) string {
	if i := strings.Index(s, sep); i >= 0 {
		return s[i:]
	}
	return s
}
