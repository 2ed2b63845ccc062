package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// osTemplate installs a template as local:vztmpl/NAME.tar.zst whose
// /etc/os-release says ID=id: busybox as /bin/sh, no /sbin/init.
func (e *env) osTemplate(name, id string) string {
	e.t.Helper()
	root := filepath.Join(e.t.TempDir(), name)
	for _, d := range []string{"bin", "etc", "tmp", "dev", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		e.t.Skipf("needs /bin/busybox: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "cat", "printf"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID="+id+"\nNAME=\""+id+"\"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	tarPath := filepath.Join(e.dir, "storage/local/template/cache", name+".tar.zst")
	if out, err := exec.Command("tar", "--zstd", "-cf", tarPath, "--numeric-owner", "-C", root, ".").CombinedOutput(); err != nil {
		e.t.Fatalf("tar: %v: %s", err, out)
	}
	return "local:vztmpl/" + name + ".tar.zst"
}

// TestSetupUnknownOS: PVE::LXC::Setup->new (pve-container Setup.pm) dies
// "unable to detect OS distribution" inside the create task for an
// os-release ID it has no plugin for, unless ostype is unmanaged.
func TestSetupUnknownOS(t *testing.T) {
	e := newEnv(t)
	wolfi := e.osTemplate("wolfi", "wolfi")
	e.fails("unknown ID 'wolfi' in /etc/os-release file, trying fallback detection\nunable to create CT 100 - unable to detect OS distribution\n",
		"pct", "create", "100", wolfi, "--rootfs", "local-lvm:1", "--entrypoint", "/bin/sleep 1000")
	if ids := ctIDsIn(e.dir); len(ids) != 0 {
		t.Fatalf("failed create left %v", ids)
	}
	// An explicit ostype of a known OS does not skip detection.
	e.fails("unknown ID 'wolfi' in /etc/os-release file, trying fallback detection\nunable to create CT 100 - unable to detect OS distribution\n",
		"pct", "create", "100", wolfi, "--rootfs", "local-lvm:1", "--entrypoint", "/bin/sleep 1000", "--ostype", "debian")
	e.ok("pct", "create", "100", wolfi, "--rootfs", "local-lvm:1", "--entrypoint", "/bin/sleep 1000", "--ostype", "unmanaged")
	if conf := e.read("lxc/100.conf"); !strings.Contains(conf, "ostype: unmanaged\n") {
		t.Fatalf("config:\n%s", conf)
	}
	// A known ID is detected and stored.
	alpine := e.osTemplate("alpine", "alpine")
	e.ok("pct", "create", "101", alpine, "--rootfs", "local-lvm:1", "--entrypoint", "/bin/sleep 1000")
	if conf := e.read("lxc/101.conf"); !strings.Contains(conf, "ostype: alpine\n") {
		t.Fatalf("config:\n%s", conf)
	}
}

// TestMountAllSources: mount_all (pve-container LXC.pm __mountpoint_mount)
// runs inside the create task: a bind source must be a directory (a file
// fails the -d test too), a source under /dev/ is a device and mount(8)
// refuses anything but a block device. At start the prestart hook does
// the same for a directory removed since.
func TestMountAllSources(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(file, []byte("nameserver 10.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.fails(fmt.Sprintf("mounting container failed\nunable to create CT 100 - directory '%s' does not exist\n", file),
		"pct", "create", "100", tpl, "--rootfs", "local-lvm:1", "--mp0", file+",mp=/etc/resolv.conf")
	e.fails("mount: /var/lib/lxc/100/rootfs/dev/shm: /dev/shm is not a block device.\nmounting container failed\nunable to create CT 100 - command 'mount /dev/shm /var/lib/lxc/100/rootfs/dev/shm' failed: exit code 32\n",
		"pct", "create", "100", tpl, "--rootfs", "local-lvm:1", "--mp0", "/dev/shm,mp=/dev/shm")
	if ids := ctIDsIn(e.dir); len(ids) != 0 {
		t.Fatalf("failed creates left %v", ids)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("pct", "create", "101", tpl, "--rootfs", "local-lvm:1", "--mp0", dir+",mp=/data")
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	r := e.run("pct", "start", "101")
	if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("directory '%s' does not exist\nstartup for container '101' failed", dir)) {
		t.Fatalf("start with a removed bind source: %+v", r)
	}
}

// TestEntrypointNewlineByVersion: pve-container 6.1.8 (2785bef) refuses a
// newline in entrypoint and env; the 9.1 schema's pattern let it through.
// Before 6.0.18 a tab, before 6.0.17 an empty env value was refused.
func TestEntrypointNewlineByVersion(t *testing.T) {
	e := newEnv(t)
	usage := "\npct create <vmid> <ostemplate> [OPTIONS]\n"
	e.fails("400 Parameter verification failed.\nentrypoint: value does not match the regex pattern\n"+usage,
		"pct", "create", "100", tpl, "--rootfs", "local-lvm:1", "--entrypoint", "sh -c 'echo a\necho b'")
	if got := e.ok("pveversion", "-v"); !strings.Contains(got, "pve-container: 6.1.10\n") {
		t.Fatalf("pveversion -v: %s", got)
	}
	e.write("pve-container", "6.1.7\n")
	if got := e.ok("pveversion", "-v"); !strings.Contains(got, "pve-container: 6.1.7\n") {
		t.Fatalf("pveversion -v: %s", got)
	}
	e.ok("pct", "create", "100", tpl, "--rootfs", "local-lvm:1", "--entrypoint", "sh -c 'echo a\necho b'")
	// 6.0.16: no tab, no empty env value yet.
	e.write("pve-container", "6.0.16\n")
	e.fails("400 Parameter verification failed.\nenv: value does not match the regex pattern\n"+usage,
		"pct", "create", "101", tpl, "--rootfs", "local-lvm:1", "--env", "EMPTY=")
	e.fails("400 Parameter verification failed.\nentrypoint: value does not match the regex pattern\n"+usage,
		"pct", "create", "101", tpl, "--rootfs", "local-lvm:1", "--entrypoint", "printf\t%s")
}

// TestEntrypointSplitAsLXC: the CT runs the argv LXC 6 makes of the
// entrypoint (confile.c parse_line, lxc_string_split_quoted): no escapes,
// so a shell's '\” splits into other words.
func TestEntrypointSplitAsLXC(t *testing.T) {
	e := newEnv(t)
	e.ok("pct", "create", "100", "local:vztmpl/noinit.tar.zst", "--rootfs", "local-lvm:1",
		"--entrypoint", `/bin/sh -c 'printf "<%s>" "$@" > /out; sleep 1000' sh 'it'\''s' "a b"`)
	e.ok("pct", "start", "100")
	want := `<it><\''s'><a b>`
	var got []byte
	for range 50 {
		if b, err := os.ReadFile(filepath.Join(e.dir, "volumes/local-lvm/vm-100-disk-0/out")); err == nil && len(b) > 0 {
			got = b
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(got) != want {
		t.Fatalf("the CT's argv: %q, want %q", got, want)
	}
}
