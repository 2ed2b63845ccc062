// Package e2e runs the built proxcage binary against real containers
// (libcontainer, real namespaces and cgroups). It needs root and a busybox
// binary; `make e2e` builds the binary and sets PROXCAGE_BIN.
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

// env is one test's sandbox: its own --root and config, so tests never see
// each other's containers and never touch /run/proxcage or /etc/proxcage.
type env struct {
	t      *testing.T
	bin    string
	root   string
	config string
	dir    string
	// extraEnv is added to every proxcage call (the pve tests put the
	// pct test double first on PATH).
	extraEnv []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces and cgroups")
	}
	bin := os.Getenv("PROXCAGE_BIN")
	if bin == "" {
		t.Skip("needs PROXCAGE_BIN (the built binary); run `make e2e`")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (apt-get install busybox-static)")
	}
	dir := t.TempDir()
	e := &env{t: t, bin: bin, root: filepath.Join(dir, "root"), config: filepath.Join(dir, "config.toml"), dir: dir}
	if err := os.WriteFile(e.config, []byte("default_backend = \"native\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	return e
}

// cgroupPrefix is unique per test and per run: t.TempDir() is
// /tmp/<TestName><random>/<NNN>, and the parent's name is the unique part.
func (e *env) cgroupPrefix() string { return filepath.Base(filepath.Dir(e.dir)) }

// cleanup force-deletes whatever a failed test left running.
func (e *env) cleanup() {
	ents, _ := os.ReadDir(e.root)
	for _, ent := range ents {
		if ent.IsDir() {
			_ = e.cmd("delete", "--force", ent.Name()).Run()
		}
	}
}

type result struct {
	code   int
	stdout string
	stderr string
}

func (e *env) cmd(args ...string) *exec.Cmd {
	full := append([]string{"--root", e.root, "--config", e.config}, args...)
	c := exec.Command(e.bin, full...)
	if len(e.extraEnv) > 0 {
		c.Env = append(os.Environ(), e.extraEnv...)
	}
	return c
}

// run runs proxcage with the sandbox's root and config.
func (e *env) run(args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	// Files, not pipes: a detached container inherits proxcage's stdio, and
	// os/exec would wait for a pipe to close until the container exits.
	out, errf := tempFile(e.t), tempFile(e.t)
	c.Stdout, c.Stderr = out, errf
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: readAll(e.t, out), stderr: readAll(e.t, errf)}
}

// ok runs proxcage and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("proxcage %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// state returns the decoded `state` output.
func (e *env) state(id string) specs.State {
	e.t.Helper()
	var s specs.State
	out := e.ok("state", id)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		e.t.Fatalf("state %s: %v\n%s", id, err, out)
	}
	return s
}

// waitStatus polls state until it reports want (10 s at most: CI
// machines are shared).
func (e *env) waitStatus(id string, want specs.ContainerState) specs.State {
	e.t.Helper()
	var s specs.State
	for range 1000 {
		s = e.state(id)
		if s.Status == want {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("container %s: status %q, want %q", id, s.Status, want)
	return s
}

// rootEntries lists what is left under --root besides the root lock.
func (e *env) rootEntries() []string {
	ents, err := os.ReadDir(e.root)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var names []string
	for _, ent := range ents {
		if ent.Name() != ".lock" {
			names = append(names, ent.Name())
		}
	}
	return names
}

func (e *env) assertRootEmpty() {
	e.t.Helper()
	if left := e.rootEntries(); len(left) > 0 {
		e.t.Fatalf("state left under --root: %v", left)
	}
}

// bundle makes a busybox bundle whose process runs args; mutate may edit
// the spec before it is written.
func (e *env) bundle(name string, args []string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	dir := filepath.Join(e.dir, name)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		e.t.Fatal(err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
		}
	}
	e.ok("spec", "--bundle", dir)
	s := e.readSpec(dir)
	s.Process.Args = args
	s.Process.Terminal = false
	// A cgroup of its own: the default cgroup path is /<id>, which would
	// collide between tests (and with leftovers of an interrupted run).
	s.Linux.CgroupsPath = "/proxcage-e2e/" + e.cgroupPrefix() + "-" + name
	if mutate != nil {
		mutate(s)
	}
	e.writeSpec(dir, s)
	return dir
}

func (e *env) readSpec(dir string) *specs.Spec {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

func (e *env) writeSpec(dir string, s *specs.Spec) {
	e.t.Helper()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// oneLine asserts that stderr is exactly one non-empty line.
func oneLine(t *testing.T, what, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("%s: want one stderr line, got %d: %q", what, len(lines), stderr)
	}
}

// cgroupFile returns the host path of a v1 controller file for pid.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, parts[2], file)
			}
		}
		if controller == "" && parts[1] == "" { // cgroup v2
			return filepath.Join("/sys/fs/cgroup", parts[2], file)
		}
	}
	t.Fatalf("pid %d: no %s cgroup in %s", pid, controller, data)
	return ""
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) string {
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
