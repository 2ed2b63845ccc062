package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// searchable makes dir and its parents searchable by others, as
// /var/lib/lxc is on a PVE node: an unprivileged CT's root (host uid
// 100000) must walk to its rootfs, and go test's temp dirs are 0700.
func searchable(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// An unprivileged CT runs in PVE's default id map: its processes are host
// uid 100000, its rootfs belongs to the mapped root, a new volume is
// writable by it, and a host directory bound in shows as nobody.
func TestUnprivilegedCT(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	searchable(t, host)
	if err := os.WriteFile(filepath.Join(host, "file"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.create(180, "--mp0", host+",mp=/mnt/host", "--mp1", "local-lvm:1,mp=/vol")
	if conf := e.read("lxc/180.conf"); !strings.Contains(conf, "unprivileged: 1\n") {
		t.Fatalf("config:\n%s", conf)
	}
	e.ok("pct", "start", "180")
	if got := e.ok("pct", "exec", "180", "--", "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(got), " ") != "0 100000 65536" {
		t.Fatalf("uid_map in the CT: %q", got)
	}
	if got := e.ok("pct", "exec", "180", "--", "cat", "/proc/self/gid_map"); strings.Join(strings.Fields(got), " ") != "0 100000 65536" {
		t.Fatalf("gid_map in the CT: %q", got)
	}
	pid := strings.TrimSpace(e.ok("lxc-info", "-n", "180", "-p", "-H"))
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+pid, &st); err != nil || st.Uid != 100000 {
		t.Fatalf("init (pid %s) runs as host uid %d (%v), want 100000", pid, st.Uid, err)
	}
	if err := syscall.Stat(filepath.Join(e.dir, "volumes/local-lvm/vm-180-disk-0/etc/os-release"), &st); err != nil || st.Uid != 100000 || st.Gid != 100000 {
		t.Fatalf("rootfs file owned by %d:%d (%v), want 100000:100000 (extracted in the user namespace)", st.Uid, st.Gid, err)
	}
	// The bind-mounted host dir (owned by host root) is nobody's in the CT.
	if got := e.ok("pct", "exec", "180", "--", "stat", "-c", "%u:%g", "/mnt/host/file"); got != "65534:65534\n" {
		t.Fatalf("host file in the CT owned by %q, want 65534:65534 (nobody)", got)
	}
	if r := e.run("pct", "exec", "180", "--", "touch", "/mnt/host/new"); r.code == 0 {
		t.Fatal("the CT's root wrote into a host directory it does not own")
	}
	// A new volume belongs to the mapped root (create_disks' chown).
	e.ok("pct", "exec", "180", "--", "sh", "-c", "echo v > /vol/f")
	if err := syscall.Stat(filepath.Join(e.dir, "volumes/local-lvm/vm-180-disk-1/f"), &st); err != nil || st.Uid != 100000 {
		t.Fatalf("file written to the volume owned by %d (%v), want 100000", st.Uid, err)
	}
	e.ok("pct", "stop", "180")
}

// A template with an owner outside the CT's 65536 ids fails to extract, as
// on PVE: tar inside the user namespace cannot chown it, and the create task
// dies with run_command's text; nothing is left.
func TestTemplateOwnerOutsideIDMap(t *testing.T) {
	e := newEnv(t)
	root := t.TempDir()
	for _, d := range []string{"sbin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "sbin/init"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(root, "etc/big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(big, 70000, 0); err != nil {
		t.Fatal(err)
	}
	tplPath := filepath.Join(e.dir, "storage/local/template/cache/big.tar.zst")
	if out, err := exec.Command("tar", "--zstd", "-cf", tplPath, "--numeric-owner", "-C", root, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	r := e.run("pct", "create", "181", "local:vztmpl/big.tar.zst", "--rootfs", "local-lvm:1")
	// cmd2string quotes every word holding "=" (String::ShellQuote: each
	// word is quoted on its own, so each is in command position).
	wantCmd := "lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar xpf - --zstd --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs '--xattrs-include=user.*' '--xattrs-include=security.capability' '--warning=no-file-ignored' '--warning=no-xattr-write' -C " + e.dir + "/volumes/local-lvm/vm-181-disk-0 --skip-old-files --anchored --exclude './dev/*'"
	for _, want := range []string{
		"tar: ./etc/big: Cannot change ownership to uid 70000, gid 0: Invalid argument\n",
		"unable to create CT 181 - command '" + wantCmd + "' failed: exit code 2\n",
	} {
		if r.code != 255 || !strings.Contains(r.stderr, want) {
			t.Fatalf("want exit 255 and %q in stderr, got exit %d:\n%s", want, r.code, r.stderr)
		}
	}
	if fileExists(filepath.Join(e.dir, "lxc/181.conf")) || fileExists(filepath.Join(e.dir, "volumes/local-lvm/vm-181-disk-0")) {
		t.Fatal("a failed create left its config or rootfs")
	}
	// Privileged, the same template extracts (no map, host ids).
	e.ok("pct", "create", "182", "local:vztmpl/big.tar.zst", "--rootfs", "local-lvm:1", "--unprivileged", "0")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(e.dir, "volumes/local-lvm/vm-182-disk-0/etc/big"), &st); err != nil || st.Uid != 70000 {
		t.Fatalf("privileged extraction: uid %d (%v)", st.Uid, err)
	}
}
