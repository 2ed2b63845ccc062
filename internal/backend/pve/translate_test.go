package pve

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/golden"
)

// TestTranslateGolden runs every testdata/translate/*.json (id, settings,
// node, spec, and the probes' answers: sources, the bind sources that exist
// on the CT's node, absent when the node is another host; rootfsHasShell)
// through Translate and compares with the .golden file: one pct argument
// per line, or "error: ..." for a refused bundle.
func TestTranslateGolden(t *testing.T) {
	golden.Cases(t, "testdata/translate/*.json", "translation", func(t *testing.T, data []byte) string {
		var c struct {
			ID             string
			Settings       Settings
			Node           Version
			Container      Version // pve-container; zero: the newest known
			Sources        []string
			FileSources    []string
			DeviceSources  []string
			RootfsHasShell bool
			Spec           specs.Spec
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		set := c.Settings
		if c.Sources != nil || c.FileSources != nil || c.DeviceSources != nil {
			set.SourceKind = func(p string) SourceKind {
				switch {
				case slices.Contains(c.Sources, p):
					return SourceDir
				case slices.Contains(c.FileSources, p):
					return SourceFile
				case slices.Contains(c.DeviceSources, p):
					return SourceDevice
				}
				return SourceMissing
			}
		}
		set.RootfsHasShell = func() bool { return c.RootfsHasShell }
		plan, err := Translate(c.ID, &c.Spec, set, Node{Version: c.Node, Container: c.Container})
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		for _, n := range plan.Notes {
			b.WriteString("# note: " + n + "\n")
		}
		if plan.Application {
			b.WriteString("# application container\n")
		} else {
			b.WriteString("# system container\n")
		}
		for _, a := range plan.Args() {
			b.WriteString(strings.ReplaceAll(a, "\x00", `\0`) + "\n")
		}
		for _, r := range plan.Raw {
			b.WriteString("# raw config line: " + r.Key + ": " + r.Value + "\n")
		}
		if k := plan.Keeper; k != nil {
			fmt.Fprintf(&b, "# keeper runs %q in %s as %d:%d\n", k.Args, k.Cwd, k.UID, k.GID)
		}
		return b.String()
	})
}

func TestHostnameFromLongID(t *testing.T) {
	id := strings.Repeat("ab", 40) // 80 chars
	plan, err := Translate(id, &specs.Spec{Process: &specs.Process{Args: []string{"/sbin/init"}, Cwd: "/"}}, Settings{RootfsStorage: "s", Bridge: "b"}, Node{})
	if err != nil {
		t.Fatal(err)
	}
	h := plan.Options[0]
	if h.Key != "hostname" || len(h.Value) != 63 || !dnsLabel.MatchString(h.Value) {
		t.Fatalf("hostname %q (%d chars)", h.Value, len(h.Value))
	}
}

func TestOCIIDFromDescription(t *testing.T) {
	for desc, want := range map[string]string{
		"proxcage oci-id=web-1":               "web-1",
		"#proxcage oci-id=abc\n#second line":  "abc",
		"something else\nproxcage oci-id=x.y": "x.y",
	} {
		if got, ok := OCIIDFromDescription(desc); !ok || got != want {
			t.Errorf("%q: got %q %v, want %q", desc, got, ok, want)
		}
	}
	if _, ok := OCIIDFromDescription("made by hand"); ok {
		t.Error("found an id in a foreign description")
	}
}

// TestEntrypointReachesProcess: whatever the argv (quotes, blanks, $,
// backslashes, empty words, both quote characters), the entrypoint the
// translator writes is what LXC splits back (confile.c parse_line, then
// lxc_string_split_quoted) into a command that runs exactly that argv;
// a word that needs the rebuild wrapper runs it through the host's
// /bin/sh as the CT's would.
func TestEntrypointReachesProcess(t *testing.T) {
	words := [][]string{
		{"plain", "two words", "", "$HOME", `a\b`, `back\\slash\`},
		{"it's", `say "hi"`, "'lead", `"lead`, `a"b'c`, "x=y", "tab\there"},
		{`echo 'it'\''s' "$HOME"`, `'"`, `"'`, ` both ' and " `, "-", "+", "--"},
		{`''`, `""`, "'", `"`, "a'b\"c d", "end '"},
	}
	odd := filepath.Join(t.TempDir(), "my 'dir\"")
	if err := os.MkdirAll(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cwd := range []string{"/", odd} {
		for _, w := range words {
			args := append([]string{"/usr/bin/printf", "<%s>"}, w...)
			s := &specs.Spec{Process: &specs.Process{Args: args, Cwd: cwd}}
			set := Settings{RootfsStorage: "s", Bridge: "b", RootfsHasShell: func() bool { return true }}
			plan, err := Translate("q", s, set, Node{Version: Version{9, 1, 0}})
			if err != nil {
				t.Fatalf("%q: %v", args, err)
			}
			var ep string
			for _, o := range plan.Options {
				if o.Key == "entrypoint" {
					ep = o.Value
				}
			}
			argv := lxcInitArgv(ep)
			if cwd == "/" && argv[0] != "/bin/sh" && !slices.Equal(argv, args) {
				t.Errorf("%q: entrypoint %s splits into %q", args, ep, argv)
				continue
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir = "/"
			out, err := cmd.Output()
			want := ""
			for _, x := range w {
				want += "<" + x + ">"
			}
			if err != nil || string(out) != want {
				t.Errorf("%q (cwd %q): entrypoint %s ran %q: got %q (%v), want %q", args, cwd, ep, argv, out, err, want)
			}
		}
	}
}

// TestEntrypointKeepsEnv: the wrappers (a working directory, rebuilt
// words) hand the program exactly the bundle's environment: nothing the
// shell adds itself (PWD, OLDPWD, SHLVL). The order of the variables is
// the shell's.
func TestEntrypointKeepsEnv(t *testing.T) {
	odd := filepath.Join(t.TempDir(), "my 'dir\"")
	if err := os.MkdirAll(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "A=1"}
	for _, c := range []struct {
		cwd  string
		args []string
	}{
		{odd, []string{"/usr/bin/env"}},
		{"/", []string{"/usr/bin/env", `B=say "it's" x`}},
		{odd, []string{"/usr/bin/env", `B=say "it's" x`}},
	} {
		s := &specs.Spec{Process: &specs.Process{Args: c.args, Cwd: c.cwd, Env: env}}
		set := Settings{RootfsStorage: "s", Bridge: "b", RootfsHasShell: func() bool { return true }}
		plan, err := Translate("q", s, set, Node{Version: Version{9, 1, 0}})
		if err != nil {
			t.Fatal(err)
		}
		var ep string
		for _, o := range plan.Options {
			if o.Key == "entrypoint" {
				ep = o.Value
			}
		}
		argv := lxcInitArgv(ep)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = "/", env
		out, err := cmd.Output()
		// The shell keeps the variables, not their order.
		want := slices.Concat(env, c.args[1:])
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		slices.Sort(want)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q in %q: entrypoint %s: env %q (%v), want %q", c.args, c.cwd, ep, out, err, want)
		}
	}
}

// TestCmd2String checks the port of String::ShellQuote (1.04) that
// predicts PVE's entrypoint for an image, and which image argv survive it.
func TestCmd2String(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "": "''", "a=b": "'a=b'", "a b": "'a b'",
		"echo 'a b'": `'echo '\''a b'\'`, "''": `"''"`, "it's": `'it'\''s'`, `$x`: `'$x'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if !pveCarries([]string{"/bin/sh", "-c", `echo "$HOME" a\b`, ""}) {
		t.Error("PVE carries an argv without ' but pveCarries says no")
	}
	if pveCarries([]string{"/bin/sh", "-c", "echo 'hi'"}) {
		t.Error("PVE's '\\'' reaches LXC as other words, but pveCarries says it carries them")
	}
}

// TestPveversionV reads both versions from `pveversion -v` as a PVE 9.1
// node prints it (pve-manager PVE/API2/APT.pm order: proxmox-ve,
// pve-manager, then packages by name).
func TestPveversionV(t *testing.T) {
	out := "proxmox-ve: 9.1.0 (running kernel: 6.17.2-1-pve)\n" +
		"pve-manager: 9.1.1 (running version: 9.1.1/42db4a6cf33dac83)\n" +
		"lxc-pve: 6.0.5-3\npve-cluster: 9.0.7\npve-container: 6.0.18\npve-firewall: 6.0.4\n"
	m, c, err := parsePveversionV(out)
	if err != nil || m != (Version{9, 1, 1}) || c != (Version{6, 0, 18}) {
		t.Fatalf("got %v %v %v", m, c, err)
	}
	if _, _, err := parsePveversionV("pve-manager/9.1.1/42db4a6c (running kernel: 6.17.2-1-pve)\n"); err == nil {
		t.Fatal("no pve-container line, no error")
	}
	if !c.AtLeastPatch(6, 0, 17) || c.AtLeastPatch(6, 1, 0) || !(Version{6, 1, 10}).AtLeastPatch(6, 1, 8) {
		t.Fatal("AtLeastPatch")
	}
}

// TestTranslateEmitsKeeperMount: the keeper's bind mount is the
// translator's to write (the executor adds no line of its own): an
// application CT given a keeper gets the node's keeper directory mounted
// at CtrKeeperDir, after its other raw lines; a system CT, which drops
// the keeper, gets neither.
func TestTranslateEmitsKeeperMount(t *testing.T) {
	host := keeperDir("/run/proxcage/state/app one")
	set := Settings{RootfsStorage: "s", Bridge: "b", RawLines: true, Keeper: CtrKeeperDir, KeeperHostDir: host}
	app := &specs.Spec{Process: &specs.Process{Args: []string{"/app"}, Cwd: "/"},
		Mounts: []specs.Mount{{Destination: "/run", Type: "tmpfs", Source: "tmpfs"}}}
	plan, err := Translate("app", app, set, Node{Version: Version{9, 1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	want := Option{"lxc.mount.entry", host + " dev/.proxcage-keeper none bind,create=dir 0 0"}
	if plan.Keeper == nil || len(plan.Raw) != 2 || plan.Raw[1] != want {
		t.Fatalf("keeper %+v, raw lines %q; want the tmpfs line, then %q", plan.Keeper, plan.Raw, want)
	}
	sys := &specs.Spec{Process: &specs.Process{Args: []string{"/sbin/init"}, Cwd: "/"}}
	if plan, err = Translate("sys", sys, set, Node{Version: Version{9, 1, 0}}); err != nil {
		t.Fatal(err)
	}
	if plan.Keeper != nil || len(plan.Raw) != 0 {
		t.Fatalf("system CT: keeper %+v, raw lines %q; want none", plan.Keeper, plan.Raw)
	}
}
