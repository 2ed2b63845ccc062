package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// podmanBundle has podman write a bundle: `podman create` of a busybox
// image (imported from a bundle rootfs), then `podman init`, which writes
// userdata/config.json (the OCI runtime may refuse to start it here; the
// spec is written first), and `podman mount` for its rootfs. The spec is
// podman's own, with its binds of /etc/hosts, /etc/hostname,
// /run/.containerenv and /dev/shm, plus a host directory at /data.
func podmanBundle(t *testing.T, e *env, name string, args []string, volume string) (dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (podman's system storage)")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("needs podman (apt-get install podman)")
	}
	podman := func(a ...string) string {
		t.Helper()
		out, err := exec.Command("podman", a...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("podman %v: %v\n%s", a, err, msg)
		}
		return strings.TrimSpace(string(out))
	}
	src := e.bundle(name+"-src", []string{"/bin/true"}, nil)
	tarball := filepath.Join(e.dir, name+".tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(src, "rootfs"), "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	image := "localhost/proxcage-e2e-" + name + ":" + strconv.Itoa(os.Getpid())
	podman("import", "-q", tarball, image)
	ctr := "proxcage-e2e-" + name + "-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		_ = exec.Command("podman", "rm", "-f", ctr).Run()
		_ = exec.Command("podman", "rmi", "-f", image).Run()
	})
	id := podman(append([]string{"create", "--network", "none", "--name", ctr, "-v", volume + ":/data", image}, args...)...)
	_ = exec.Command("podman", "init", ctr).Run() // writes config.json, may fail to start the runtime
	rootfs := podman("mount", ctr)
	storage := podman("info", "--format", "{{.Store.GraphRoot}}")
	data, err := os.ReadFile(filepath.Join(storage, "overlay-containers", id, "userdata", "config.json"))
	if err != nil {
		t.Fatalf("podman wrote no bundle: %v", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Root == nil || s.Root.Path != rootfs {
		t.Fatalf("podman's bundle root %+v is not its mounted rootfs %s", s.Root, rootfs)
	}
	// The bundle as podman wrote it, in a directory of the test's.
	dir = filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPVEPodmanBundle: a bundle written by podman creates and runs as an
// application CT: podman's file binds (/etc/hosts, /etc/hostname,
// /run/.containerenv) and its /dev/shm are left out with an info line in
// the log (a PVE
// mount point binds only directories; PVE and LXC provide those), the
// host directory becomes mp0, the argv reaches the process exactly
// (quotes, blanks, $ and an empty word; the double splits lxc.init.cmd as
// LXC does), and ostype is unmanaged.
func TestPVEPodmanBundle(t *testing.T) {
	p := newPVEEnv(t)
	vol := filepath.Join(p.dir, "podman-data")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	// Writable by an unprivileged CT's root (host uid 100000 on PVE).
	if err := os.Chmod(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	args := []string{"/bin/sh", "-c", `printf '<%s>' "$@" > /data/argv; exec sleep 100000`, "sh", "it's", `say "hi" $HOME \n`, ""}
	b := podmanBundle(t, p.env, "pb", args, vol)
	logFile := filepath.Join(p.dir, "pb.log")
	r := p.run("--log", logFile, "run", "-d", "--bundle", b, "pb-1")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	logged, _ := os.ReadFile(logFile)
	for _, note := range []string{"mount /etc/hosts left out", "mount /etc/hostname left out", "mount /run/.containerenv left out", "mount /dev/shm left out"} {
		if !strings.Contains(string(logged), note) {
			t.Errorf("no info line %q in the log:\n%s", note, logged)
		}
	}
	st := p.waitStatus("pb-1", specs.StateRunning)
	vmid := vmidOf(t, st)
	conf := p.pct("config", strconv.Itoa(vmid))
	for _, want := range []string{"ostype: unmanaged\n", "mp0: " + vol + ",mp=/data\n", "cmode: console\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "containerenv") || strings.Contains(conf, "mp1") {
		t.Errorf("a file bind reached the config:\n%s", conf)
	}
	want := `<it's><say "hi" $HOME \n><>`
	var got []byte
	for range 100 {
		if got, _ = os.ReadFile(filepath.Join(vol, "argv")); len(got) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if string(got) != want {
		t.Fatalf("the process got %q, want %q (entrypoint in %s)", got, want, conf)
	}
	p.ok("delete", "-f", "pb-1")
	p.assertRootEmpty()
}

// TestPVEBundleFileBindRefused: a bind of any other file (a secret, a
// socket) is refused in one line before anything is created: PVE binds
// only directories (pve-container LXC.pm mountpoint_mount).
func TestPVEBundleFileBindRefused(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	secret := filepath.Join(p.dir, "token")
	if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := p.bundle("fb", []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run/secrets/token", Type: "bind", Source: secret, Options: []string{"bind", "ro"}})
	})
	r := p.run("run", "-d", "--bundle", b, "fb-1")
	if r.code == 0 {
		t.Fatal("a file bind was accepted")
	}
	oneLine(t, "file bind", r.stderr)
	if !strings.Contains(r.stderr, "is not a directory") || strings.Contains(r.stderr, "s3cr3t") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	if l := p.pctList(); strings.Contains(l, "fb-1") || len(strings.Split(strings.TrimSpace(l), "\n")) > 1 {
		t.Fatalf("a CT was created:\n%s", l)
	}
}
