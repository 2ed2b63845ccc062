package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The error messages a first-time operator meets: one line, a hint that
// names a real command, flag or key, the category's exit code, and nothing
// left behind.

// wantError checks exit code, one stderr line and pieces of it.
func wantError(t *testing.T, what string, r result, code int, want ...string) {
	t.Helper()
	t.Logf("%s: exit %d: %s", what, r.code, strings.TrimSpace(r.stderr))
	oneLine(t, what, r.stderr)
	if r.code != code {
		t.Errorf("%s: exit %d, want %d: %s", what, r.code, code, r.stderr)
	}
	if !strings.Contains(r.stderr, "(hint: ") {
		t.Errorf("%s: no hint: %s", what, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: %q lacks %q", what, r.stderr, w)
		}
	}
}

// delete without --force of a running container: the hint gives both
// ways out, the same on every backend.
func TestDeleteRunningHints(t *testing.T) {
	run := func(t *testing.T, e *env, b string) {
		e.ok("run", "-d", "--bundle", b, "ct-app")
		r := e.run("delete", "ct-app")
		wantError(t, "delete of a running container", r, 5, "cannot delete container ct-app that is not stopped: running",
			"`proxcage kill ct-app`", "`proxcage delete --force ct-app`")
		e.ok("delete", "--force", "ct-app")
		e.assertRootEmpty()
	}
	t.Run("native", func(t *testing.T) {
		e := newEnv(t)
		run(t, e, e.bundle("b", []string{"sleep", "1000"}, nil))
	})
	t.Run("lxc", func(t *testing.T) {
		e := newLXCEnv(t)
		run(t, e, e.bundle("b", []string{"sleep", "1000"}, nil))
	})
	t.Run("pve", func(t *testing.T) {
		p := newPVEEnv(t)
		run(t, p.env, p.systemBundle("sys", nil))
		if out := p.pctList(); out != "" {
			t.Fatalf("CT left:\n%s", out)
		}
	})
}

// exec in a created CT: a PVE CT has no processes before start, so the
// message says it is created and the hint says to start it. (native and
// lxc exec in a created container, as runc does: their init exists.)
func TestPVEExecInCreatedContainer(t *testing.T) {
	p := newPVEEnv(t)
	b := p.systemBundle("sys", nil)
	p.ok("create", "--bundle", b, "ct-new")
	r := p.run("exec", "ct-new", "true")
	wantError(t, "exec in a created CT", r, 5, "exec ct-new: cannot exec in a created container that was never started", "`proxcage start ct-new`")
	if strings.Contains(r.stderr, "stopped") {
		t.Errorf("calls a created CT stopped: %s", r.stderr)
	}
	p.ok("delete", "ct-new")
	p.assertRootEmpty()
	for _, name := range []string{"native", "lxc"} {
		if name == "lxc" {
			if _, err := exec.LookPath("lxc-execute"); err != nil {
				continue
			}
		}
		e := newEnv(t)
		os.WriteFile(e.config, []byte("default_backend = \""+name+"\"\n"), 0o644)
		e.ok("create", "--bundle", e.bundle("b", []string{"sleep", "1000"}, nil), "c1")
		if out := e.ok("exec", "c1", "echo", "in-created"); out != "in-created\n" {
			t.Errorf("%s: exec in created: %q", name, out)
		}
		e.ok("delete", "c1")
	}
}

// A storage without the content a key needs: the hint names that key
// alone, with its storage and the content.
func TestPVEStorageContentHint(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	b := p.systemBundle("sys", nil)
	// The real texts (issue 14, point 8): create_vm's 400 on "storage", and
	// pvesm path's of an LVM storage, which holds no files.
	for _, c := range []struct{ key, storage, other, content, text, named string }{
		{"rootfs_storage", "local", "template_storage = \"local\"", "rootdir", "storage 'local' does not support container directories", "[pve] rootfs_storage = \"local\""},
		{"template_storage", "local-lvm", "rootfs_storage = \"local-lvm\"", "vztmpl", "lvm name 'vztmpl/", "[pve] template_storage"},
	} {
		os.WriteFile(p.config, []byte("default_backend = \"pve\"\n[pve]\n"+c.key+" = \""+c.storage+"\"\n"+c.other+"\ntimeout = \"60s\"\n"), 0o644)
		r := p.run("create", "--bundle", b, "st")
		wantError(t, c.key, r, 2, c.text, c.named, "pvesm status --content "+c.content)
		other := map[string]string{"rootfs_storage": "template_storage", "template_storage": "rootfs_storage"}[c.key]
		if strings.Contains(r.stderr, other) {
			t.Errorf("%s: the hint names %s too: %s", c.key, other, r.stderr)
		}
		p.assertNothingLeft(c.key)
	}
}

// A missing bridge is a config fault (exit 2) with the one bridge hint.
func TestPVEMissingBridge(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	b := p.systemBundle("sys", nil)
	os.WriteFile(p.config, []byte("default_backend = \"pve\"\n[pve]\nbridge = \"vmbr7\"\ntimeout = \"60s\"\n"), 0o644)
	r := p.run("run", "-d", "--bundle", b, "br")
	wantError(t, "missing bridge", r, 2, "vmbr7", "[pve] bridge", "org.proxcage.net0", "--type any_bridge")
	p.assertNothingLeft("missing bridge")
	// doctor says the same.
	d := p.run("doctor")
	if d.code != 5 || !strings.Contains(d.stdout, "FAIL  pve: bridge vmbr7") || !strings.Contains(d.stdout, "org.proxcage.net0") {
		t.Fatalf("doctor: exit %d\n%s", d.code, d.stdout)
	}
}

// doctor prints each hint once.
func TestDoctorHintOnce(t *testing.T) {
	p := newPVEAPIEnv(t)
	os.WriteFile(filepath.Join(p.dir, "pve-token"), []byte("wrong-secret-123\n"), 0o600)
	r := p.run("doctor")
	if r.code != 5 || !strings.Contains(r.stdout, "FAIL") {
		t.Fatalf("doctor with a bad token: exit %d\n%s", r.code, r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "(hint: ") && strings.Contains(line, " -- ") {
			t.Errorf("hint twice: %s", line)
		}
		if strings.HasPrefix(line, "FAIL") && !strings.Contains(line, " -- ") && !strings.Contains(line, "(hint: ") {
			t.Errorf("no hint: %s", line)
		}
	}
}

// --image with a local path and no transport prefix: the prefix to use,
// and nothing left behind.
func TestImageLocalPathWithoutPrefix(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.dir, "data")
	os.WriteFile(e.config, []byte("default_backend = \"native\"\ndata_dir = \""+data+"\"\n"), 0o644)
	dir := filepath.Join(e.dir, "img")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644)
	r := e.run("run", "--rm", "--image", dir, "--", "true")
	wantError(t, "--image DIR", r, 2, "is a local path", "write oci:"+dir)
	if strings.Contains(r.stderr, "docker.io") || strings.Contains(r.stderr, "no such host") {
		t.Errorf("went to a registry: %s", r.stderr)
	}
	e.assertRootEmpty()
	if ents, _ := os.ReadDir(filepath.Join(data, "containers")); len(ents) > 1 {
		t.Errorf("bundles left: %v", ents)
	}
}

// asNobody runs the binary as uid/gid 65534 (no groups) through setpriv.
type nobody struct {
	*env
	bin string
}

func newNobody(t *testing.T) *nobody {
	t.Helper()
	e := newEnv(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	// The test's own directories are 0700: let uid 65534 reach the
	// binary copied into one of them.
	for d := e.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(e.dir, "proxcage")
	data, err := os.ReadFile(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return &nobody{env: e, bin: bin}
}

// run runs proxcage as nobody with these global flags first.
func (n *nobody) run(args ...string) result {
	n.t.Helper()
	c := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", n.bin}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "PROXCAGE_CONFIG=") {
			env = append(env, kv)
		}
	}
	c.Env = env
	out, errf := tempFile(n.t), tempFile(n.t)
	c.Stdout, c.Stderr = out, errf
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: readAll(n.t, out), stderr: readAll(n.t, errf)}
}

// mkdirOwned makes dir owned by uid 65534 (mode 0755).
func mkdirOwned(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run as another user than root, every refused access exits 7 (permission
// denied) with a hint naming what to change; doctor fails.
func TestNonRootPermissionErrors(t *testing.T) {
	n := newNobody(t)
	cfg := filepath.Join(n.dir, "nobody.toml")
	os.WriteFile(cfg, []byte("default_backend = \"native\"\ndata_dir = \""+filepath.Join(n.dir, "rootonly", "data")+"\"\n"), 0o644)
	rootOnly := filepath.Join(n.dir, "rootonly")
	os.MkdirAll(rootOnly, 0o700)
	own := mkdirOwned(t, filepath.Join(n.dir, "own"))

	// The state root is root's.
	r := n.run("--root", rootOnly, "--config", cfg, "list")
	wantError(t, "list", r, 7, "permission denied", "uid 65534", "--root")
	if strings.Contains(r.stderr, "list: list ") {
		t.Errorf("doubled prefix: %s", r.stderr)
	}
	// The bundle's config.json is root's, 0600.
	b := n.bundle("b", []string{"true"}, nil)
	os.Chmod(filepath.Join(b, "config.json"), 0o600)
	r = n.run("--root", filepath.Join(own, "state"), "--config", cfg, "create", "--bundle", b, "c1")
	wantError(t, "unreadable bundle", r, 7, "config.json", "permission denied", "uid 65534", "readable")
	if ents, _ := os.ReadDir(filepath.Join(own, "state")); len(ents) > 1 {
		t.Errorf("state left: %v", ents)
	}
	// The config file is root's, 0600.
	secret := filepath.Join(n.dir, "secret.toml")
	os.WriteFile(secret, []byte("default_backend = \"native\"\n"), 0o600)
	r = n.run("--root", filepath.Join(own, "state"), "--config", secret, "list")
	wantError(t, "unreadable config", r, 7, secret, "permission denied", "--config")
	// The data dir is under a root-only directory.
	r = n.run("--root", filepath.Join(own, "state"), "--config", cfg, "images")
	wantError(t, "data dir", r, 7, "permission denied", "data_dir", "--config", cfg)
	if strings.Contains(r.stderr, "image store directory") {
		t.Errorf("names a setting that does not exist: %s", r.stderr)
	}
	// doctor fails, with the hint to run as root.
	r = n.run("--root", filepath.Join(own, "state"), "--config", cfg, "doctor")
	if r.code != 5 || !strings.Contains(r.stdout, "FAIL  native: privileges") || !strings.Contains(r.stdout, "run proxcage as root") ||
		!strings.Contains(r.stdout, "FAIL  data dir") {
		t.Fatalf("doctor as uid 65534: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	oneLine(t, "doctor", r.stderr)
	// As root the same doctor passes the privileges check.
	if out := n.ok("doctor"); !strings.Contains(out, "ok  native: privileges") {
		t.Fatalf("doctor as root:\n%s", out)
	}
	// The lxc and pve (pct) backends need root too, and say so.
	for _, name := range []string{"lxc", "pve"} {
		bcfg := filepath.Join(n.dir, name+".toml")
		os.WriteFile(bcfg, []byte("default_backend = \""+name+"\"\n[pve]\ntransport = \"pct\"\n"), 0o644)
		r = n.run("--root", filepath.Join(own, "state"), "--config", bcfg, "doctor")
		if r.code != 5 || !strings.Contains(r.stdout, "FAIL  "+name+": privileges") || !strings.Contains(r.stdout, "uid 65534, not root") ||
			!strings.Contains(r.stdout, "run proxcage as root") {
			t.Fatalf("%s doctor as uid 65534: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
}
