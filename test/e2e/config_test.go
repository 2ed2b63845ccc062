package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRouteCommandAndRecordedBackend(t *testing.T) {
	e := newEnv(t)
	// A rule to a backend this build lacks (vm, the future VM backend) is a
	// config error for every command, found at load: one line, exit 2.
	os.WriteFile(e.config, []byte(`default_backend = "native"
[[routes]]
match_id = "^web-"
backend = "native"
[[routes]]
match_annotation = "tier=ct"
backend = "vm"
`), 0o644)
	for _, cmd := range [][]string{{"list"}, {"doctor"}, {"state", "web-1"}} {
		r := e.run(cmd...)
		if r.code != 2 || !strings.Contains(r.stderr, `rule 2 (match_annotation="tier=ct"): unknown backend "vm"`) || !strings.Contains(r.stderr, "known backends: native, pve, lxc") {
			t.Fatalf("%v: exit %d %q", cmd, r.code, r.stderr)
		}
		oneLine(t, cmd[0], r.stderr)
	}
	os.WriteFile(e.config, []byte(`default_backend = "native"
[[routes]]
match_id = "^web-"
backend = "native"
`), 0o644)
	plain := e.bundle("plain", []string{"true"}, nil)
	ct := e.bundle("ct", []string{"true"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"tier": "ct", "org.proxcage.backend": "vm"}
	})
	forced := e.bundle("forced", []string{"true"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"tier": "ct", "org.proxcage.backend": "native"}
	})

	if out := e.ok("route", "--bundle", plain, "web-1"); out != "backend: native\nreason: config rule 1 (match_id=\"^web-\")\n" {
		t.Fatalf("route web-1: %q", out)
	}
	if out := e.ok("route", "--bundle", plain, "db-1"); !strings.Contains(out, "backend: native\nreason: default_backend in "+e.config) {
		t.Fatalf("route db-1: %q", out)
	}
	if out := e.ok("route", "--bundle", forced, "db-1"); !strings.Contains(out, "reason: bundle annotation org.proxcage.backend=native") {
		t.Fatalf("route forced: %q", out)
	}
	// The bundle annotation asks for vm, which this build does not have: a
	// clear error for route and for create (the prefix once), and nothing
	// is created.
	for _, cmd := range [][]string{{"route", "--bundle", ct, "db-2"}, {"create", "--bundle", ct, "db-2"}} {
		r := e.run(cmd...)
		if r.code != 2 || !strings.Contains(r.stderr, cmd[0]+` db-2: unknown backend "vm"`) || strings.Count(r.stderr, "db-2") != 1 ||
			!strings.Contains(r.stderr, "chosen by bundle annotation org.proxcage.backend=vm") {
			t.Fatalf("%v: exit %d %q", cmd, r.code, r.stderr)
		}
		oneLine(t, cmd[0], r.stderr)
	}
	e.assertRootEmpty()

	e.ok("create", "--bundle", plain, "web-1")
	var st map[string]any
	json.Unmarshal([]byte(e.ok("state", "web-1")), &st)
	if st["backend"] != "native" {
		t.Fatalf("state backend %v", st["backend"])
	}
	e.ok("delete", "web-1")
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ text, want string }{
		{"default_backend = \"native\"\nbogus = 1\n", "unknown key bogus"},
		{"[[routes]]\nmatch_id = \"x\"\nbackend = \"native\"\nmatch_nmae = \"y\"\n", "unknown key routes.match_nmae"},
		{"[[routes]]\nmatch_id = \"(\"\nbackend = \"native\"\n", "match_id"},
		{"default_backend = \n", "line 1"},
	} {
		os.WriteFile(e.config, []byte(c.text), 0o644)
		r := e.run("list")
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("config %q: exit %d stderr %q (want %q)", c.text, r.code, r.stderr, c.want)
		}
		oneLine(t, "config", r.stderr)
	}
	// PROXCAGE_CONFIG is honoured when --config is absent.
	bad := filepath.Join(e.dir, "bad.toml")
	os.WriteFile(bad, []byte("nope = 1\n"), 0o644)
	c := e.cmd("list")
	c.Args = []string{e.bin, "--root", e.root, "list"}
	c.Env = append(os.Environ(), "PROXCAGE_CONFIG="+bad)
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown key nope") {
		t.Fatalf("PROXCAGE_CONFIG not used: %v %s", err, out)
	}
}

func TestJSONLogForContainerd(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("b", []string{"/no/such/program"}, nil)
	logf := filepath.Join(e.dir, "log.json")
	r := e.run("--log", logf, "--log-format", "json", "create", "--bundle", b, "c1")
	if r.code == 0 {
		t.Fatal("create of a missing program succeeded")
	}
	f, err := os.Open(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		for _, k := range []string{"level", "msg", "time"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("log line lacks %q: %q", k, sc.Text())
			}
		}
		last = m
	}
	if last == nil || last["level"] != "error" || !strings.Contains(last["msg"].(string), "create c1") {
		t.Fatalf("last log line %v", last)
	}
	e.assertRootEmpty()
}

func TestSystemdCgroupWithoutSystemd(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("needs a host without systemd: this one runs systemd")
	}
	b := e.bundle("b", []string{"true"}, nil)
	r := e.run("--systemd-cgroup", "create", "--bundle", b, "c1")
	if r.code != 5 || !strings.Contains(r.stderr, "systemd is not running") {
		t.Fatalf("exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "systemd", r.stderr)
	e.assertRootEmpty()
}

func TestDoctor(t *testing.T) {
	e := newEnv(t)
	out := e.ok("doctor")
	for _, want := range []string{"ok  state root", "native: namespaces", "native: cgroups", "native: seccomp", "native: pivot_root"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	// A config that routes to a backend this build lacks is a config
	// error, for doctor as for every command: exit 2, one line.
	os.WriteFile(e.config, []byte("default_backend = \"proxmox\"\n"), 0o644)
	r := e.run("doctor")
	if r.code != 2 || !strings.Contains(r.stderr, `default_backend: unknown backend "proxmox" (hint: did you mean pve? known backends: native, pve, lxc)`) {
		t.Fatalf("doctor with unknown backend: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	oneLine(t, "doctor", r.stderr)
}
