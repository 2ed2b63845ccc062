package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Every bad input: non-zero exit, one stderr line naming the problem, and
// nothing left under --root (nor a cgroup, for creates that got that far).
func TestBadInputCreate(t *testing.T) {
	e := newEnv(t)
	good := e.bundle("good", []string{"true"}, nil)
	writeConfig := func(name, text string) string {
		dir := filepath.Join(e.dir, name)
		os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(text), 0o644)
		return dir
	}
	mutated := func(name string, f func(*specs.Spec)) string {
		return e.bundle(name, []string{"true"}, f)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"missing bundle dir", []string{"create", "-b", filepath.Join(e.dir, "nope"), "x"}, 2, "does not exist"},
		{"config.json not JSON", []string{"create", "-b", writeConfig("notjson", "{not json"), "x"}, 2, "not valid JSON"},
		{"config.json missing", []string{"create", "-b", writeConfig("noconfig", ""), "x"}, 2, "not valid JSON"},
		{"unknown ociVersion major", []string{"create", "-b", mutated("v2", func(s *specs.Spec) { s.Version = "2.0.0" }), "x"}, 2, `ociVersion "2.0.0" is not supported`},
		{"missing rootfs", []string{"create", "-b", mutated("norootfs", func(s *specs.Spec) { s.Root.Path = "missing" }), "x"}, 2, "rootfs"},
		{"empty process.args", []string{"create", "-b", mutated("noargs", func(s *specs.Spec) { s.Process.Args = nil }), "x"}, 2, "process.args must not be empty"},
		{"relative rootfs outside bundle", []string{"create", "-b", mutated("escape", func(s *specs.Spec) { s.Root.Path = "../good/rootfs" }), "x"}, 2, "outside the bundle"},
		{"invalid id", []string{"create", "-b", good, "../etc"}, 2, "invalid container id"},
		{"bad console socket", []string{"create", "-b", mutated("tty", func(s *specs.Spec) { s.Process.Terminal = true }), "--console-socket", filepath.Join(e.dir, "no.sock"), "x"}, 2, "console socket"},
		{"tty without console socket", []string{"create", "-b", mutated("tty2", func(s *specs.Spec) { s.Process.Terminal = true }), "x"}, 2, "console-socket"},
		{"console socket without tty", []string{"create", "-b", good, "--console-socket", filepath.Join(e.dir, "no.sock"), "x"}, 2, "console-socket"},
		{"program not in rootfs", []string{"create", "-b", e.bundle("noprog", []string{"/no/such/program"}, nil), "x"}, 5, "no such file or directory"},
		{"bind mount source missing", []string{"create", "-b", mutated("badmount", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: filepath.Join(e.dir, "absent"), Options: []string{"bind"}})
		}), "x"}, 5, "absent"},
		{"unknown capability", []string{"create", "-b", mutated("badcap", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NOPE")
		}), "x"}, 0, ""}, // runc ignores unknown capabilities with a warning: so do we
		{"backend annotation unknown", []string{"create", "-b", mutated("badbackend", func(s *specs.Spec) {
			s.Annotations = map[string]string{"org.proxcage.backend": "nosuch"}
		}), "x"}, 2, `unknown backend "nosuch"`},
		{"pidfd socket", []string{"create", "-b", good, "--pidfd-socket", "/x", "x"}, 2, "pidfd-socket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.run(c.args...)
			if c.code == 0 {
				if r.code != 0 {
					t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
				}
				e.ok("delete", "-f", "x")
				return
			}
			if r.code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, c.code, r.stderr)
			}
			oneLine(t, c.name, r.stderr)
			if !strings.Contains(r.stderr, c.stderr) || !strings.HasPrefix(r.stderr, "proxcage: create x") && c.name != "invalid id" {
				t.Errorf("stderr %q does not name the problem (%q)", r.stderr, c.stderr)
			}
			e.assertRootEmpty()
		})
	}
	// Failed creates that got as far as the cgroup must have removed it.
	ents, _ := os.ReadDir("/sys/fs/cgroup/pids/proxcage-e2e")
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), e.cgroupPrefix()) {
			t.Errorf("cgroup left behind: %s", ent.Name())
		}
	}
}

func TestBadInputDuplicateIDKeepsOriginal(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("b", []string{"sleep", "1000"}, nil)
	e.ok("run", "-d", "-b", b, "dup")
	before := e.state("dup")
	r := e.run("create", "-b", b, "dup")
	if r.code != 4 || !strings.Contains(r.stderr, `container "dup" already exists`) {
		t.Fatalf("duplicate create: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "duplicate", r.stderr)
	after := e.state("dup")
	if after.Status != specs.StateRunning || after.Pid != before.Pid {
		t.Fatalf("original container changed: %+v -> %+v", before, after)
	}
	e.ok("delete", "-f", "dup")
}

func TestBadInputUnknownIDEveryCommand(t *testing.T) {
	e := newEnv(t)
	cmds := [][]string{
		{"start", "ghost"}, {"state", "ghost"}, {"kill", "ghost"}, {"kill", "ghost", "KILL"},
		{"delete", "ghost"}, {"exec", "ghost", "true"}, {"ps", "ghost"}, {"pause", "ghost"},
		{"resume", "ghost"}, {"update", "--pids-limit", "5", "ghost"},
	}
	for _, args := range cmds {
		r := e.run(args...)
		if r.code != 3 || !strings.Contains(r.stderr, `container "ghost" does not exist`) {
			t.Errorf("%v: exit %d stderr %q", args, r.code, r.stderr)
			continue
		}
		oneLine(t, strings.Join(args, " "), r.stderr)
	}
	e.assertRootEmpty()
}

func TestBadInputSignals(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("b", []string{"sleep", "1000"}, nil)
	e.ok("run", "-d", "-b", b, "c1")
	for _, sig := range []string{"SIGNOPE", "nope", "0", "65", "-9"} {
		r := e.run("kill", "c1", sig)
		if r.code != 2 || !strings.Contains(r.stderr, "unknown signal") && !strings.Contains(r.stderr, "unknown shorthand") {
			t.Errorf("kill c1 %s: exit %d %q", sig, r.code, r.stderr)
			continue
		}
		oneLine(t, "kill "+sig, r.stderr)
	}
	if s := e.state("c1").Status; s != specs.StateRunning {
		t.Fatalf("a bad kill changed the container: %s", s)
	}
	e.ok("delete", "-f", "c1")
}
