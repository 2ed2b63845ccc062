package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/testimages"
)

// Images: `run/create --image` against an in-process registry serving the
// test images (test/testimages), on the native backend and on pve (the pct
// double).

func serveTestImages(t *testing.T) *testimages.Registry {
	t.Helper()
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	hostile, err := testimages.Hostile()
	if err != nil {
		t.Fatal(err)
	}
	r, err := testimages.Serve(0, nil, map[string]v1.Image{"test/busybox:1": bb, "test/hostile:1": hostile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// withDataDir points the env's config at a data dir of its own.
func withDataDir(t *testing.T, e *env) string {
	t.Helper()
	data := filepath.Join(e.dir, "data")
	cfg, _ := os.ReadFile(e.config)
	if err := os.WriteFile(e.config, append([]byte(fmt.Sprintf("data_dir = %q\n", data)), cfg...), 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

type listedImage struct {
	Names    []string
	Digest   string
	Unpacked bool
	Users    int
}

func images(t *testing.T, e *env) []listedImage {
	t.Helper()
	var out []listedImage
	if err := json.Unmarshal([]byte(e.ok("images", "--format", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// containersLeft lists DATA/containers/ (the image bundles), lock files aside.
func containersLeft(data string) []string {
	ents, _ := os.ReadDir(filepath.Join(data, "containers"))
	var out []string
	for _, e := range ents {
		if e.Name() != ".locks" {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestImageRunPrintsTheImagesOutput(t *testing.T) {
	e := newEnv(t)
	data := withDataDir(t, e)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	log := filepath.Join(e.dir, "run.log")

	out := e.ok("--debug", "--log", log, "run", "--rm", "-q", "--image", ref)
	if out != "hello-from-image\nfrom layer 2\n" {
		t.Fatalf("run --image printed %q", out)
	}
	e.assertRootEmpty()
	if left := containersLeft(data); len(left) != 0 {
		t.Fatalf("image bundles left: %v", left)
	}
	imgs := images(t, e)
	if len(imgs) != 1 || imgs[0].Names[0] != ref || !imgs[0].Unpacked || imgs[0].Users != 0 {
		t.Fatalf("images: %+v", imgs)
	}
	// The second run of the same image unpacks nothing.
	e.ok("--debug", "--log", log, "run", "--image", ref, "again", "--", "true")
	logData, _ := os.ReadFile(log)
	lines := regexp.MustCompile(`msg="image rootfs".*cached=(true|false)`).FindAllStringSubmatch(string(logData), -1)
	if len(lines) != 2 || lines[0][1] != "false" || lines[1][1] != "true" {
		t.Fatalf("want one unpack then a cached rootfs, log says %v", lines)
	}
}

func TestImageOverridesUserEnvWorkdir(t *testing.T) {
	e := newEnv(t)
	withDataDir(t, e)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	out := e.ok("run", "-q", "--image", ref, "-e", "GREETING=hi", "-w", "/tmp", "-u", "app", "ovr", "--",
		"sh", "-c", `echo $GREETING; pwd; id -u; id -G`)
	if out != "hi\n/tmp\n1000\n1000 44\n" {
		t.Fatalf("overrides: %q", out)
	}
	// The image's own defaults: WorkingDir /app, Env, root.
	out = e.ok("run", "-q", "--image", ref, "dflt", "--", "sh", "-c", `echo $GREETING; pwd; id -u`)
	if out != "hello\n/app\n0\n" {
		t.Fatalf("defaults: %q", out)
	}
	// The image's tree: whiteout, opaque dir, write through var/run, setuid.
	out = e.ok("run", "-q", "--image", ref, "tree", "--", "sh", "-c",
		`ls /usr/share/doc; ls /opt/old; cat /run/through-symlink; stat -c '%a %u:%g' /app/setuid-tool /home/app/.profile`)
	want := "kept.txt\nb.txt\nwritten through var/run -> /run\n4755 0:0\n600 1000:1000\n"
	if out != want {
		t.Fatalf("image tree:\n%s\nwant:\n%s", out, want)
	}
}

func TestImageCreateWithoutIDThenLifecycle(t *testing.T) {
	e := newEnv(t)
	data := withDataDir(t, e)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	id := strings.TrimSpace(e.ok("create", "-q", "--image", ref))
	if !regexp.MustCompile(`^proxcage-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("generated id %q", id)
	}
	st := e.state(id)
	if st.Status != specs.StateCreated || st.Annotations["org.opencontainers.image.stopSignal"] != "SIGQUIT" ||
		st.Annotations["org.example.test"] != "yes" || !strings.HasPrefix(st.Annotations["org.proxcage.image.digest"], "sha256:") {
		t.Fatalf("state: %+v", st)
	}
	rootfs := filepath.Join(data, "containers", id, "rootfs")
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); !strings.Contains(string(mounts), " "+rootfs+" ") {
		t.Fatalf("%s is not a mount (overlay expected)", rootfs)
	}
	if imgs := images(t, e); imgs[0].Users != 1 {
		t.Fatalf("users while created: %+v", imgs)
	}
	// In use: rmi refuses, naming the container.
	if r := e.run("rmi", ref); r.code != 5 || !strings.Contains(r.stderr, id) {
		t.Fatalf("rmi of an image in use: exit %d %q", r.code, r.stderr)
	}
	e.ok("start", id)
	e.waitStatus(id, specs.StateStopped)
	e.ok("delete", id)
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), rootfs) {
		t.Fatal("overlay still mounted after delete")
	}
	if left := containersLeft(data); len(left) != 0 {
		t.Fatalf("image bundles left: %v", left)
	}
	if imgs := images(t, e); imgs[0].Users != 0 {
		t.Fatalf("users after delete: %+v", imgs)
	}
	e.ok("rmi", ref)
	if imgs := images(t, e); len(imgs) != 0 {
		t.Fatalf("images after rmi: %+v", imgs)
	}
}

func TestImageWritesStayInTheContainer(t *testing.T) {
	e := newEnv(t)
	withDataDir(t, e)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	e.ok("run", "-q", "--image", ref, "w1", "--", "sh", "-c", "echo changed > /etc/motd; rm /bin/cat")
	if out := e.ok("run", "-q", "--image", ref, "w2", "--", "cat", "/etc/motd"); out != "from layer 2\n" {
		t.Fatalf("a container's write reached the shared image: %q", out)
	}
}

func TestImageBadInput(t *testing.T) {
	e := newEnv(t)
	data := withDataDir(t, e)
	reg := serveTestImages(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"hostile layer", []string{"run", "-q", "--image", reg.Host + "/test/hostile:1", "h1"}, 2, `entry "../escape": escapes the root filesystem`},
		{"unknown tag", []string{"run", "-q", "--image", reg.Host + "/test/busybox:nope", "h2"}, 3, "nope"},
		{"unknown transport", []string{"create", "--image", "dir:/tmp/x", "h3"}, 2, "unsupported transport"},
		{"bad env", []string{"run", "-q", "--image", reg.Host + "/test/busybox:1", "-e", "NOEQUALS", "h4"}, 2, "KEY=VALUE"},
		{"image flags without --image", []string{"run", "-e", "A=1", "h5"}, 2, "--env needs --image"},
		{"command without --", []string{"run", "--image", reg.Host + "/test/busybox:1", "h6", "echo"}, 2, "after --"},
		{"rm with detach", []string{"run", "-d", "--rm", "--image", reg.Host + "/test/busybox:1", "h7"}, 2, "--rm with --detach"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d %q, want %d and %q", c.name, r.code, r.stderr, c.code, c.want)
			continue
		}
		oneLine(t, c.name, r.stderr)
	}
	e.assertRootEmpty()
	if left := containersLeft(data); len(left) != 0 {
		t.Fatalf("image bundles left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(data, "images", "escape")); err == nil {
		t.Fatal("the hostile entry was written")
	}
	filepath.Walk(filepath.Dir(data), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "escape" {
			t.Errorf("hostile entry written at %s", p)
		}
		return nil
	})
}

func TestImageOnPVE(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	p.ok("run", "-d", "-q", "--image", ref, "ct-img", "--", "sh", "-c", "echo hello-from-image > /tmp/out; cat /etc/motd >> /tmp/out; exec sleep 100000")
	st := p.waitStatus("ct-img", specs.StateRunning)
	vmid := vmidOf(t, st)
	conf := p.pct("config", strconv.Itoa(vmid))
	// PVE 9.1 got the image itself (an OCI archive template named by its
	// digest) and took WorkingDir and StopSignal from it; the command given
	// after -- became the entrypoint.
	for _, want := range []string{"entrypoint: sh -c", "lxc.init.cwd: /app", "lxc.signal.halt: SIGQUIT", "host-managed=1"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("CT config lacks %q:\n%q", want, conf)
		}
	}
	tpls, _ := filepath.Glob(filepath.Join(p.state, "storage", "local", "template", "cache", "proxcage-oci-*.tar"))
	if len(tpls) != 1 {
		t.Fatalf("OCI archive templates: %v", tpls)
	}
	var out string
	for range 100 {
		if out = p.ok("exec", "ct-img", "cat", "/tmp/out"); strings.Count(out, "\n") == 2 {
			break
		}
	}
	if out != "hello-from-image\nfrom layer 2\n" {
		t.Fatalf("the CT printed %q", out)
	}
	p.ok("delete", "--force", "ct-img")
	p.assertRootEmpty()
}

// The image's own command on PVE: nothing but the template, as PVE maps
// Entrypoint+Cmd, Env and WorkingDir itself; and on PVE 8 (no OCI
// templates) the image's rootfs becomes a vztmpl instead.
func TestImageOnPVEImageDefaultsAndOldPVE(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	p.ok("create", "-q", "--image", ref, "ct-dflt")
	vmid := vmidOf(t, p.state_("ct-dflt"))
	conf := p.pct("config", strconv.Itoa(vmid))
	for _, want := range []string{"entrypoint: /bin/sh -c 'echo hello-from-image; cat /etc/motd'", "lxc.init.cwd: /app", "GREETING=hello"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("CT config lacks %q:\n%q", want, conf)
		}
	}
	p.ok("delete", "ct-dflt")

	os.WriteFile(filepath.Join(p.state, "version"), []byte("pve-manager/8.4.1/2a5fa54a8503f96d (running kernel: 6.8.12-9-pve)\n"), 0o644)
	// PVE 8 has no application containers: a system container from the
	// image (its own /sbin/init) is what works; the image has none, so the
	// error says so.
	r := p.run("create", "-q", "--image", ref, "ct-old")
	if r.code != 2 || !strings.Contains(r.stderr, "needs Proxmox VE 9.1") {
		t.Fatalf("image app container on PVE 8: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "PVE 8", r.stderr)
	p.ok("create", "-q", "--image", ref, "ct-old", "--", "/sbin/init")
	tpls, _ := filepath.Glob(filepath.Join(p.state, "storage", "local", "template", "cache", "proxcage-*_amd64.tar.zst"))
	if len(tpls) != 1 {
		t.Fatalf("want the image's rootfs as a vztmpl on PVE 8, got %v", tpls)
	}
	p.ok("delete", "ct-old")
	p.assertRootEmpty()
}
