package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/spec"
)

func TestParseSignal(t *testing.T) {
	good := []struct {
		in   string
		want unix.Signal
	}{
		{"KILL", unix.SIGKILL},
		{"kill", unix.SIGKILL},
		{"SIGKILL", unix.SIGKILL},
		{"sigkill", unix.SIGKILL},
		{"SigTerm", unix.SIGTERM},
		{"9", unix.SIGKILL},
		{"15", unix.SIGTERM},
		{"HUP", unix.SIGHUP},
		{"USR1", unix.SIGUSR1},
		{"WINCH", unix.SIGWINCH},
		{"1", 1},
		{"34", 34}, // SIGRTMIN by number
		{"64", 64},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if err != nil {
				t.Fatalf("ParseSignal(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseSignal(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
	bad := []string{"0", "65", "-9", "FOO", "SIGFOO", "", "SIG", "9x"}
	// unix.SignalNum knows no real-time signal names, and runc (which
	// uses the same lookup) refuses them too; keep ParseSignal in step.
	if unix.SignalNum("SIGRTMIN") == 0 {
		bad = append(bad, "SIGRTMIN", "RTMIN", "RTMIN+1")
	}
	for _, in := range bad {
		t.Run("bad "+in, func(t *testing.T) {
			sig, err := ParseSignal(in)
			if err == nil {
				t.Fatalf("ParseSignal(%q) = %d, want error", in, sig)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseSignal(%q) error %v is not ErrInvalidArgument", in, err)
			}
			if !strings.Contains(err.Error(), "unknown signal") {
				t.Errorf("ParseSignal(%q) error %q does not say unknown signal", in, err)
			}
		})
	}
}

func TestFilterPs(t *testing.T) {
	out := []byte(`UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100       1  0 10:00 ?        00:00:00 sleep 1000
root        1000       1  0 10:00 ?        00:00:00 sh -c echo 100
user       10000     100  0 10:00 pts/0    00:00:00 bash
`)
	tests := []struct {
		name string
		pids []int
		want []string
	}{
		{"none", nil, nil},
		{"one", []int{100}, []string{"sleep 1000"}},
		{"exact match, not prefix or PPID", []int{1000}, []string{"sh -c echo 100"}},
		{"several", []int{1, 10000}, []string{"/sbin/init", "bash"}},
		{"unknown pid", []int{42}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := filterPs(&app{stdout: &buf}, out, tt.pids); err != nil {
				t.Fatalf("filterPs: %v", err)
			}
			lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
			if !strings.HasPrefix(lines[0], "UID          PID") {
				t.Errorf("header missing: %q", lines[0])
			}
			rows := lines[1:]
			if len(rows) != len(tt.want) {
				t.Fatalf("got rows %q, want %d rows ending in %q", rows, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasSuffix(rows[i], w) {
					t.Errorf("row %d = %q, want it to end in %q", i, rows[i], w)
				}
			}
		})
	}
	t.Run("pid column elsewhere", func(t *testing.T) {
		var buf bytes.Buffer
		in := []byte("  PID TTY          TIME CMD\n    7 ?        00:00:00 a\n    8 ?        00:00:00 b\n")
		if err := filterPs(&app{stdout: &buf}, in, []int{8}); err != nil {
			t.Fatal(err)
		}
		if got, want := buf.String(), "  PID TTY          TIME CMD\n    8 ?        00:00:00 b\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("no PID column", func(t *testing.T) {
		var buf bytes.Buffer
		err := filterPs(&app{stdout: &buf}, []byte("UID CMD\nroot init\n"), []int{1})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "no PID column") {
			t.Errorf("filterPs without PID column = %v", err)
		}
	})
}

// env is an isolated place for run(): a private state root and an empty
// config file, so tests never touch /run/proxcage or /etc/proxcage.
type env struct {
	t      *testing.T
	root   string
	config string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Setenv(config.EnvVar, "")
	dir := t.TempDir()
	e := &env{t: t, root: filepath.Join(dir, "state"), config: filepath.Join(dir, "config.toml")}
	e.writeConfig("")
	return e
}

func (e *env) writeConfig(text string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// run calls run() with --root and --config prepended.
func (e *env) run(args ...string) result {
	e.t.Helper()
	full := append([]string{"--root", e.root, "--config", e.config}, args...)
	return runRaw(full...)
}

func runRaw(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// oneLine asserts stderr is exactly one newline-terminated line.
func oneLine(t *testing.T, r result) string {
	t.Helper()
	if !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr is not exactly one line: %q", r.stderr)
	}
	return strings.TrimSuffix(r.stderr, "\n")
}

// bundle makes a bundle with a rootfs and the config.json `proxcage spec`
// writes, plus the given annotations.
func (e *env) bundle(annotations map[string]string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if r := e.run("spec", "--bundle", dir); r.code != 0 {
		e.t.Fatalf("spec: %+v", r)
	}
	if annotations != nil {
		p := filepath.Join(dir, "config.json")
		data, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			e.t.Fatal(err)
		}
		m["annotations"] = annotations
		if data, err = json.Marshal(m); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

func TestHelp(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"state", "--help"}} {
		r := e.run(args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: stdout has no usage: %q", args, r.stdout)
		}
		if r.stderr != "" {
			t.Errorf("%v: stderr = %q, want empty", args, r.stderr)
		}
	}
	r := e.run("--help")
	for _, sub := range []string{"create", "start", "state", "kill", "delete", "exec", "ps", "list", "spec", "features", "route", "upgrade"} {
		if !strings.Contains(r.stdout, "  "+sub+" ") {
			t.Errorf("--help does not list %q", sub)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown global flag", []string{"--nosuch"}, 2, []string{"unknown flag: --nosuch"}},
		{"unknown subcommand flag", []string{"state", "--nosuch", "x"}, 2, []string{"state", "unknown flag: --nosuch"}},
		{"bad flag value", []string{"create", "--preserve-fds", "many", "x"}, 2, []string{"preserve-fds"}},
		{"create without id", []string{"create"}, 2, []string{"container id cannot be empty"}},
		{"create with empty id", []string{"create", ""}, 2, []string{"container id cannot be empty"}},
		{"start without id", []string{"start"}, 2, []string{"container id cannot be empty"}},
		{"state with two ids", []string{"state", "a", "b"}, 2, []string{"unexpected arguments", "b"}},
		{"kill with 3 args", []string{"kill", "a", "KILL", "extra"}, 2, []string{"too many arguments"}},
		{"kill with bad signal", []string{"kill", "a", "FOO"}, 2, []string{"unknown signal"}},
		{"version with args", []string{"version", "x"}, 2, []string{"takes no arguments"}},
		{"list with args", []string{"list", "x"}, 2, []string{"takes no arguments"}},
		{"bad log format", []string{"--log-format", "yaml", "state", "x"}, 2, []string{"--log-format", "yaml"}},
		{"invalid id", []string{"route", "bad/id"}, 2, []string{"invalid container id"}},
		{"pidfd socket", []string{"create", "--pidfd-socket", "/x", "id"}, 2, []string{"--pidfd-socket"}},
		{"run --keep", []string{"run", "--keep", "id"}, 2, []string{"--keep is not supported"}},
		{"ps bad format", []string{"ps", "--format", "xml", "id"}, 2, []string{"--format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			line := oneLine(t, r)
			if !strings.HasPrefix(line, "proxcage: ") {
				t.Errorf("stderr %q does not start with 'proxcage: '", line)
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("stderr %q does not contain %q", line, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want empty on a usage error", r.stdout)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"state", []string{"state", "nosuch"}, 3},
		{"delete", []string{"delete", "nosuch"}, 3},
		{"delete --force", []string{"delete", "--force", "nosuch"}, 0},
		{"delete -f", []string{"delete", "-f", "nosuch"}, 0},
		{"start", []string{"start", "nosuch"}, 3},
		{"kill", []string{"kill", "nosuch", "KILL"}, 3},
		{"pause", []string{"pause", "nosuch"}, 3},
		{"resume", []string{"resume", "nosuch"}, 3},
		{"exec", []string{"exec", "nosuch", "true"}, 3},
		{"ps", []string{"ps", "nosuch"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if tt.code == 0 {
				if r.stderr != "" || r.stdout != "" {
					t.Errorf("want no output, got stdout %q stderr %q", r.stdout, r.stderr)
				}
				return
			}
			line := oneLine(t, r)
			if !strings.Contains(line, `container "nosuch" does not exist`) {
				t.Errorf("stderr %q lacks runc's `does not exist` wording", line)
			}
		})
	}
	// The state root was created under --root, nowhere else.
	if fi, err := os.Stat(e.root); err != nil || !fi.IsDir() {
		t.Errorf("state root %s not created: %v", e.root, err)
	}
}

func TestGlobalFlagsAfterSubcommand(t *testing.T) {
	e := newEnv(t)
	// runc accepts global flags before the command; cobra also takes them after.
	r := runRaw("state", "nosuch", "--root", e.root, "--config", e.config)
	if r.code != 3 {
		t.Errorf("exit %d, want 3 (stderr %q)", r.code, r.stderr)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	r := e.run("list", "--format", "json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list --format json on empty root: %+v", r)
	}
	r = e.run("list", "-q")
	if r.code != 0 || r.stdout != "" {
		t.Errorf("list -q on empty root: %+v", r)
	}
	r = e.run("list")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ID") || !strings.Contains(r.stdout, "BACKEND") {
		t.Errorf("list on empty root: %+v", r)
	}
}

func TestSpecCommand(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	r := e.run("spec", "--bundle", dir)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("spec: %+v", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(data)
	if err != nil {
		t.Fatalf("spec.Parse of generated config.json: %v", err)
	}
	// Replace the default program, as a user would, and parse again.
	s.Process.Args = []string{"/bin/echo", "hello"}
	edited, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Parse(edited); err != nil {
		t.Errorf("spec.Parse after setting args: %v", err)
	}
	// A full bundle load works once rootfs exists.
	if err := os.Mkdir(filepath.Join(dir, s.Root.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Load(dir); err != nil {
		t.Errorf("spec.Load of generated bundle: %v", err)
	}

	r = e.run("spec", "--bundle", dir)
	if r.code != 4 {
		t.Errorf("second spec: exit %d, want 4 (stderr %q)", r.code, r.stderr)
	}
	if line := oneLine(t, r); !strings.Contains(line, "exists") {
		t.Errorf("second spec stderr %q does not say exists", line)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !bytes.Equal(after, data) {
		t.Error("second spec changed the existing config.json")
	}

	rl := t.TempDir()
	if r := e.run("spec", "--rootless", "-b", rl); r.code != 0 {
		t.Fatalf("spec --rootless: %+v", r)
	}
	data, _ = os.ReadFile(filepath.Join(rl, "config.json"))
	s, err = spec.Parse(data)
	if err != nil {
		t.Fatalf("rootless spec does not parse: %v", err)
	}
	hasUserNS := false
	for _, ns := range s.Linux.Namespaces {
		hasUserNS = hasUserNS || ns.Type == "user"
	}
	if !hasUserNS {
		t.Error("rootless spec has no user namespace")
	}

	r = e.run("spec", "--bundle", filepath.Join(dir, "missing", "dir"))
	if r.code != 2 {
		t.Errorf("spec into a missing dir: exit %d, want 2 (stderr %q)", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		r := e.run(args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "proxcage version "+version+"\n") {
			t.Errorf("%v: stdout %q does not start with 'proxcage version %s'", args, r.stdout, version)
		}
		if !strings.Contains(r.stdout, "spec: ") {
			t.Errorf("%v: stdout %q lacks the spec version line", args, r.stdout)
		}
	}
}

func TestFeatures(t *testing.T) {
	e := newEnv(t)
	r := e.run("features")
	if r.code != 0 {
		t.Fatalf("features: exit %d, stderr %q", r.code, r.stderr)
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil {
		t.Fatalf("features output is not JSON: %v\n%s", err, r.stdout)
	}
	if v, _ := f["ociVersionMax"].(string); v == "" {
		t.Errorf("ociVersionMax missing: %v", f["ociVersionMax"])
	}
	if v, _ := f["ociVersionMin"].(string); v != "1.0.0" {
		t.Errorf("ociVersionMin = %v, want 1.0.0", f["ociVersionMin"])
	}
	linux, _ := f["linux"].(map[string]any)
	if linux == nil || linux["namespaces"] == nil {
		t.Errorf("linux.namespaces missing: %v", f["linux"])
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t)
	t.Run("unknown key", func(t *testing.T) {
		e.writeConfig("default_backend = \"native\"\ndefault_backnd = \"pve\"\n")
		defer e.writeConfig("")
		r := e.run("state", "x")
		if r.code != 2 {
			t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
		}
		line := oneLine(t, r)
		if !strings.Contains(line, "default_backnd") || !strings.Contains(line, e.config) {
			t.Errorf("stderr %q should name the key and the file", line)
		}
	})
	t.Run("unknown key in routes", func(t *testing.T) {
		e.writeConfig("[[routes]]\nmatch_id = 'x'\nbackend = \"native\"\nmatchid = 'y'\n")
		defer e.writeConfig("")
		r := e.run("list")
		if r.code != 2 || !strings.Contains(r.stderr, "matchid") {
			t.Errorf("exit %d stderr %q, want 2 naming matchid", r.code, r.stderr)
		}
	})
	t.Run("explicit missing config", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "none.toml")
		r := runRaw("--root", e.root, "--config", missing, "state", "x")
		if r.code != 2 || !strings.Contains(r.stderr, missing) {
			t.Errorf("exit %d stderr %q, want 2 naming %s", r.code, r.stderr, missing)
		}
	})
	t.Run("PROXCAGE_CONFIG is used", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.toml")
		if err := os.WriteFile(bad, []byte("envkey = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv(config.EnvVar, bad)
		r := runRaw("--root", e.root, "state", "x")
		if r.code != 2 || !strings.Contains(r.stderr, "envkey") {
			t.Errorf("exit %d stderr %q, want 2 naming envkey", r.code, r.stderr)
		}
		// --config wins over the environment.
		r = runRaw("--root", e.root, "--config", e.config, "state", "x")
		if r.code != 3 {
			t.Errorf("--config over env: exit %d (stderr %q), want 3", r.code, r.stderr)
		}
	})
}

func TestRouteCommand(t *testing.T) {
	e := newEnv(t)
	b := e.bundle(nil)

	t.Run("default", func(t *testing.T) {
		r := e.run("route", "--bundle", b, "web")
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "backend: native\n") {
			t.Errorf("stdout %q lacks 'backend: native'", r.stdout)
		}
		if !strings.Contains(r.stdout, "reason: default_backend in "+e.config) {
			t.Errorf("stdout %q lacks the default reason naming the config", r.stdout)
		}
	})
	t.Run("native rule", func(t *testing.T) {
		e.writeConfig("[[routes]]\nmatch_id = '^web'\nbackend = \"native\"\n")
		defer e.writeConfig("")
		r := e.run("route", "-b", b, "web1")
		if r.code != 0 || !strings.Contains(r.stdout, "backend: native") || !strings.Contains(r.stdout, "config rule 1") {
			t.Errorf("got %+v, want native by config rule 1", r)
		}
	})
	t.Run("rule to a backend not in this build", func(t *testing.T) {
		e.writeConfig("default_backend = \"native\"\n\n[[routes]]\nmatch_id = '^pve-'\nbackend = \"vm\"\n")
		defer e.writeConfig("")
		r := e.run("route", "--bundle", b, "pve-web")
		if r.code != 2 {
			t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
		}
		line := oneLine(t, r)
		if !strings.Contains(line, `unknown backend "vm"`) {
			t.Errorf("stderr %q does not mention unknown backend \"vm\"", line)
		}
		if !strings.Contains(line, "native") {
			t.Errorf("stderr %q does not list the built-in backends", line)
		}
	})
	// A config naming a backend this build lacks is a config error for
	// every command, found when the config is loaded: one line naming
	// where, the known backends and the nearest, exit 2.
	t.Run("config naming a backend not in this build fails every command", func(t *testing.T) {
		for _, c := range []struct{ config, where, mean string }{
			{"default_backend = \"native\"\n\n[[routes]]\nmatch_id = '^pve-'\nbackend = \"vm\"\n", "rule 1", ""},
			{"default_backend = \"proxmox\"\n", "default_backend", "did you mean pve?"},
			{"default_backend = \"native\"\n[[routes]]\nmatch_id = 'x'\nbackend = \"native\"\n[[routes]]\nmatch_id = '^ct-'\nbackend = \"lcx\"\n", "rule 2", "did you mean lxc?"},
		} {
			e.writeConfig(c.config)
			for _, args := range [][]string{{"list"}, {"state", "x"}, {"route", "--bundle", b, "web"}, {"doctor"}, {"create", "--bundle", b, "web"}} {
				r := e.run(args...)
				line := oneLine(t, r)
				if r.code != 2 || !strings.Contains(line, "config "+e.config+": "+c.where) ||
					!strings.Contains(line, "unknown backend") || !strings.Contains(line, "known backends: native, pve, lxc") ||
					!strings.Contains(line, c.mean) {
					t.Errorf("%q, %v: exit %d %q", c.config, args, r.code, line)
				}
				if r.stdout != "" {
					t.Errorf("%v: stdout %q", args, r.stdout)
				}
			}
		}
		e.writeConfig("")
		if _, err := os.Stat(filepath.Join(e.root, "web")); err == nil {
			t.Error("a container was made")
		}
	})
	t.Run("annotation to a backend not in this build", func(t *testing.T) {
		ab := e.bundle(map[string]string{"org.proxcage.backend": "qemu"})
		r := e.run("route", "--bundle", ab, "web")
		if r.code != 2 || !strings.Contains(r.stderr, `unknown backend "qemu"`) {
			t.Errorf("exit %d stderr %q, want 2 and unknown backend \"qemu\"", r.code, r.stderr)
		}
		// The operation and id once, the hint says who chose it.
		pb := e.bundle(map[string]string{"org.proxcage.backend": "proxmox"})
		for _, op := range []string{"route", "create"} {
			r := e.run(op, "--bundle", pb, "ct-x")
			line := oneLine(t, r)
			if r.code != 2 || !strings.HasPrefix(line, "proxcage: "+op+" ct-x: unknown backend \"proxmox\" (hint: did you mean pve?") ||
				strings.Count(line, op+" ct-x") != 1 || !strings.Contains(line, "bundle annotation org.proxcage.backend=proxmox") {
				t.Errorf("%s: exit %d %q", op, r.code, line)
			}
		}
	})
	t.Run("annotation to native", func(t *testing.T) {
		ab := e.bundle(map[string]string{"org.proxcage.backend": "native"})
		r := e.run("route", "--bundle", ab, "web")
		if r.code != 0 || !strings.Contains(r.stdout, "backend: native") || !strings.Contains(r.stdout, "bundle annotation") {
			t.Errorf("got %+v, want native by bundle annotation", r)
		}
	})
	t.Run("bad bundle", func(t *testing.T) {
		r := e.run("route", "--bundle", filepath.Join(t.TempDir(), "none"), "web")
		if r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("exit %d stderr %q, want 2 and does not exist", r.code, r.stderr)
		}
	})
}

// With --log FILE the error must also reach the log file: containerd's shim
// reads the last line of the log to learn why a command failed.
func TestErrorIsWrittenToLogFile(t *testing.T) {
	e := newEnv(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "log")
			r := e.run("--log", logPath, "--log-format", format, "state", "nosuch")
			if r.code != 3 {
				t.Fatalf("exit %d, want 3 (stderr %q)", r.code, r.stderr)
			}
			data, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatalf("log file: %v", err)
			}
			if !strings.Contains(string(data), "does not exist") {
				t.Errorf("log file %s = %q, want the error line `... does not exist`", logPath, data)
			}
			if format == "json" && len(data) > 0 {
				var entry map[string]any
				last := strings.TrimSpace(string(data))
				last = last[strings.LastIndex(last, "\n")+1:]
				if err := json.Unmarshal([]byte(last), &entry); err != nil {
					t.Errorf("last log line is not JSON: %q", last)
				} else if entry["level"] != "error" {
					t.Errorf("level = %v, want lower-case error", entry["level"])
				}
			}
		})
	}
}
