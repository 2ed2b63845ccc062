package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// pveDoubleFiles points the pct transport at the double's config files
// and locks (pct's own /etc/pve/lxc and /run/lock/lxc on a real node),
// where proxcage writes a CT's env.
func pveDoubleFiles(state string) string {
	return fmt.Sprintf("[pve.tools]\nct_config_dir = %q\nlock_dir = %q\n", filepath.Join(state, "lxc"), filepath.Join(state, "lock"))
}

// environOf reads a host process's environment as its variables.
func environOf(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// hasAll reports the variables of want that got lacks exactly.
func missing(got, want []string) []string {
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	var out []string
	for _, w := range want {
		if !have[w] {
			out = append(out, w)
		}
	}
	return out
}

// TestPVEEnvReachesTheProcess: an application CT made with several env
// variables (spaces, '=', quotes, backslashes, a tab, an empty value) has
// each of them exactly in its init's environment. On the double, pct
// behaves as the real one: `--env` is one variable, `\0` kept literally
// (pve-common JSONSchema get_options), the env stored as
// lxc.environment.runtime lines (pve-container Config.pm).
func TestPVEEnvReachesTheProcess(t *testing.T) {
	p := newPVEEnv(t)
	vars := []string{
		"PATH=/bin",
		"SPACES=hello  big world",
		"EQ=a=b==c",
		`QUOTES='single' "double" \back`,
		"TAB=a\tb",
		"EMPTY=",
		"LEAD=  x",
	}
	b := p.bundle("envapp", []string{"sleep", "100000"}, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Env = vars
	})
	p.ok("run", "-d", "--bundle", b, "env-1")
	st := p.waitStatus("env-1", specs.StateRunning)
	got := environOf(t, st.Pid)
	if m := missing(got, vars); len(m) > 0 {
		t.Fatalf("the CT's init lacks %q; its environment: %q", m, got)
	}
	for _, g := range got {
		if strings.Contains(g, `\0`) {
			t.Fatalf("a mangled variable (pct keeps \\0 literally): %q", g)
		}
	}
	if !p.real {
		conf, err := os.ReadFile(filepath.Join(p.state, "lxc", strconv.Itoa(vmidOf(t, st))+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vars {
			if !strings.Contains(string(conf), "\nlxc.environment.runtime: "+v+"\n") {
				t.Fatalf("config lacks the line for %q:\n%s", v, conf)
			}
		}
	}

	// exec: lxc-attach takes the variables as arguments (-v), exactly.
	execVars := []string{"PATH=/bin", "X=two  words", "Y=k=v", `Z='q' "d"`, "E="}
	args := []string{"exec"}
	for _, v := range execVars {
		args = append(args, "-e", v)
	}
	out := p.ok(append(args, "env-1", "cat", "/proc/self/environ")...)
	if m := missing(strings.Split(strings.TrimSuffix(out, "\x00"), "\x00"), execVars); len(m) > 0 {
		t.Fatalf("exec lacks %q; its environment: %q", m, out)
	}
	p.ok("delete", "-f", "env-1")
	p.assertRootEmpty()
}

// TestPVEEnvRefusedBeforeCreate: a value PVE would change (a trailing
// blank, which its config file trims) or refuse (a newline, which would
// also be a config line of its own) fails in one line and creates nothing.
func TestPVEEnvRefusedBeforeCreate(t *testing.T) {
	p := newPVEEnv(t)
	for name, v := range map[string]string{"trail": "TOKEN=s3cr3t ", "newline": "TOKEN=s3cr3t\nlxc.apparmor.profile=unconfined"} {
		b := p.bundle("bad-"+name, []string{"sleep", "100000"}, func(s *specs.Spec) {
			s.Process.Env = []string{"PATH=/bin", v}
		})
		r := p.run("create", "--bundle", b, "bad-"+name)
		if r.code == 0 {
			t.Fatalf("%s: created", name)
		}
		oneLine(t, name, r.stderr)
		if !strings.Contains(r.stderr, "process.env TOKEN") || strings.Contains(r.stderr, "s3cr3t") {
			t.Fatalf("%s: %q", name, r.stderr)
		}
		if r := p.run("state", "bad-"+name); r.code == 0 {
			t.Fatalf("%s: a container record is left: %s", name, r.stdout)
		}
		if !p.real { // a real node may hold other CTs
			if out := p.pct("list"); strings.Count(strings.TrimSpace(out), "\n") > 0 {
				t.Fatalf("%s: a CT is left:\n%s", name, out)
			}
		}
	}
	p.assertRootEmpty()
}

// TestPVEEnvWriteFailureRollsBack: when the env cannot be written after
// pct create (here: the config is not where [pve.tools] ct_config_dir
// says), the create fails in one line and the CT pct made is removed.
func TestPVEEnvWriteFailureRollsBack(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	cfg, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(p.dir, "not-pmxcfs")
	os.WriteFile(p.config, []byte(strings.Replace(string(cfg), strconv.Quote(filepath.Join(p.state, "lxc")), strconv.Quote(wrong), 1)), 0o644)
	b := p.bundle("envfail", []string{"sleep", "100000"}, func(s *specs.Spec) {
		s.Process.Env = []string{"PATH=/bin", "A=1"}
	})
	r := p.run("create", "--bundle", b, "envfail")
	if r.code == 0 {
		t.Fatal("created")
	}
	oneLine(t, "env write failure", r.stderr)
	if !strings.Contains(r.stderr, "ct_config_dir") {
		t.Fatalf("no hint: %q", r.stderr)
	}
	if out := p.pct("list"); strings.Count(strings.TrimSpace(out), "\n") > 0 {
		t.Fatalf("the CT is left:\n%s", out)
	}
	p.assertRootEmpty()
}
