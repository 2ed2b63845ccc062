package lxc

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/lxctools"
	"github.com/proxcage/proxcage/test/golden"
)

// TestTranslateGolden runs every testdata/translate/*.json (id, settings,
// rootfs, spec, and files: the bind sources that are files) through
// Translate and compares with the .golden file: the rendered config, then
// the seccomp policy, the warnings and the hooks left to the backend, each
// under a "# " heading; or "error: ..." for a refused bundle.
func TestTranslateGolden(t *testing.T) {
	golden.Cases(t, "testdata/translate/*.json", "translation", func(t *testing.T, data []byte) string {
		var c struct {
			ID       string
			Settings Settings
			Rootfs   string
			Files    []string
			Spec     specs.Spec
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		set := c.Settings
		if c.Files != nil {
			set.SourceIsFile = func(p string) bool { return slices.Contains(c.Files, p) }
		}
		cfg, err := Translate(c.ID, &c.Spec, c.Rootfs, set)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			return "error: " + err.Error() + "\n"
		}
		checkLines(t, cfg)
		return render(cfg)
	})
}

func render(cfg *Config) string {
	var b strings.Builder
	b.WriteString(cfg.Render())
	if si := cfg.StandIn; len(si.Inheritable)+len(si.Ambient) > 0 || si.Seccomp != nil {
		b.WriteString("# stand-in:\n")
		fmt.Fprintf(&b, "inheritable %v\nambient %v\nno_new_privs %v\n", si.Inheritable, si.Ambient, si.NoNewPrivs)
		if si.Seccomp != nil {
			fmt.Fprintf(&b, "seccomp %s, %d rules\n", si.Seccomp.DefaultAction, len(si.Seccomp.Syscalls))
			b.WriteString(renderSeccomp(si.Seccomp))
		}
	}
	if len(cfg.Sysctl) > 0 {
		b.WriteString("# sysctl (written by the mount hook):\n")
		for _, k := range slices.Sorted(maps.Keys(cfg.Sysctl)) {
			fmt.Fprintf(&b, "%s = %s\n", k, cfg.Sysctl[k])
		}
	}
	if len(cfg.Warnings) > 0 {
		b.WriteString("# warnings:\n")
		for _, w := range cfg.Warnings {
			b.WriteString(w + "\n")
		}
	}
	for _, h := range []struct {
		name  string
		hooks []specs.Hook
	}{{"poststart", cfg.PostStart}, {"poststop", cfg.PostStop}} {
		if len(h.hooks) > 0 {
			b.WriteString("# " + h.name + ":\n")
			for _, x := range h.hooks {
				b.WriteString(strings.TrimSpace(x.Path+" "+strings.Join(x.Args, " ")) + "\n")
			}
		}
	}
	return b.String()
}

// renderSeccomp is the profile the stand-in's filter is compiled from, in
// full: the default, the architectures and flags, then a line a rule with
// its action, errno, names and argument checks, as the spec spells them.
func renderSeccomp(sc *specs.LinuxSeccomp) string {
	var b strings.Builder
	errno := func(n *uint) string {
		if n == nil {
			return ""
		}
		return fmt.Sprintf("(%d)", *n)
	}
	fmt.Fprintf(&b, "seccomp default %s%s\n", sc.DefaultAction, errno(sc.DefaultErrnoRet))
	for _, a := range sc.Architectures {
		fmt.Fprintf(&b, "seccomp arch %s\n", a)
	}
	for _, f := range sc.Flags {
		fmt.Fprintf(&b, "seccomp flag %s\n", f)
	}
	for i, r := range sc.Syscalls {
		fmt.Fprintf(&b, "seccomp syscalls[%d] %s%s %s", i, r.Action, errno(r.ErrnoRet), strings.Join(r.Names, " "))
		for _, a := range r.Args {
			fmt.Fprintf(&b, " [arg%d %s %#x", a.Index, a.Op, a.Value)
			if a.Op == specs.OpMaskedEqual {
				fmt.Fprintf(&b, " %#x", a.ValueTwo)
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// checkLines reads every line back as LXC does (confile.c parse_line:
// split at the first '=', blanks trimmed around key and value) and checks
// it is the line written; and reads lxc.init.cmd back as lxc-start splits
// it (split_init_cmd: at spaces, empty words dropped).
func checkLines(t *testing.T, cfg *Config) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(cfg.Render(), "\n"), "\n") {
		k, v, ok := strings.Cut(l, "=")
		k, v = strings.Trim(k, " \t"), strings.Trim(v, " \t")
		i := slices.IndexFunc(cfg.Lines, func(x Line) bool { return x.Key == k && x.Value == v })
		if !ok || i < 0 || v == "" || strings.HasPrefix(k, "#") {
			t.Errorf("line %q does not read back as written", l)
		}
	}
	for _, l := range cfg.Lines {
		if l.Key != "lxc.init.cmd" {
			continue
		}
		var words []string
		for _, w := range strings.Split(l.Value, " ") {
			if w != "" {
				words = append(words, w)
			}
		}
		if strings.Join(words, " ") != l.Value {
			t.Errorf("lxc.init.cmd %q does not split back into its words", l.Value)
		}
	}
}

func TestRender(t *testing.T) {
	c := &Config{Lines: []Line{{"lxc.uts.name", "a"}, {"lxc.environment", "X=a = b"}}}
	if got := c.Render(); got != "lxc.uts.name = a\nlxc.environment = X=a = b\n" {
		t.Errorf("render: %q", got)
	}
	// The seccomp profile goes to the stand-in, never to LXC, which would
	// load it before its own setup.
	c.StandIn.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	if got := c.Render(); strings.Contains(got, "seccomp") {
		t.Errorf("with a profile: %q", got)
	}
}

func TestEscapeFstab(t *testing.T) {
	for in, want := range map[string]string{
		"/plain/path":   "/plain/path",
		"/a b":          `/a\040b`,
		"/tab\there":    `/tab\011here`,
		"/new\nline":    `/new\012line`,
		`/back\slash`:   `/back\134slash`,
		`/\040 literal`: `/\134040\040literal`,
	} {
		if got := lxctools.EscapeMountPath(in); got != want {
			t.Errorf("EscapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
	got := fstabEntry("/src dir", "/dst dir", "none", []string{"bind", "create=dir"})
	if want := `/src\040dir dst\040dir none bind,create=dir 0 0`; got != want {
		t.Errorf("fstabEntry = %q, want %q", got, want)
	}
}

func TestCPUSharesToWeight(t *testing.T) {
	// The values opencontainers/cgroups' own tests expect.
	for shares, want := range map[uint64]uint64{
		0: 0, 1: 1, 2: 1, 3: 2, 100: 17, 1024: 100, 262143: 10000, 262144: 10000, 1 << 20: 10000,
	} {
		if got := cpuSharesToWeight(shares); got != want {
			t.Errorf("cpuSharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s += 97 {
		w := cpuSharesToWeight(s)
		if w < prev || w < 1 || w > 10000 {
			t.Fatalf("cpuSharesToWeight(%d) = %d after %d", s, w, prev)
		}
		prev = w
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 100: 910, 500: 4950, 1000: 10000} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestJoinInitCmd(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" = refused
	}{
		{[]string{"sh"}, "sh"},
		{[]string{"/bin/echo", "a", "b'c", `"d"`, "$HOME", "t\tab"}, "/bin/echo a b'c \"d\" $HOME t\tab"},
		{[]string{"sh", "-c", "echo a b"}, ""},
		{[]string{"echo", ""}, ""},
		{[]string{"echo", "x\ny"}, ""},
		{[]string{"echo", "x\t"}, ""},
		{[]string{"\techo"}, ""},
		{[]string{"echo", strings.Repeat("x", 4096)}, ""},
	} {
		got, err := joinInitCmd(c.args)
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: accepted as %q", c.args, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.args, got, err, c.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/proxcage": "/usr/bin/proxcage",
		"/opt/my dir/x":     "'/opt/my dir/x'",
		"/it's":             `'/it'\''s'`,
		"":                  "''",
		"/a;rm":             "'/a;rm'",
		"/$x":               "'/$x'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"65536k": 64 << 20, "1m": 1 << 20, "2G": 2 << 30, "500000": 500000} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1.5m", "99999999999999999999"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestCheckSeccompArgs(t *testing.T) {
	for _, ok := range [][]specs.LinuxSeccompArg{
		{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 0x7E020000, Op: specs.OpMaskedEqual}},
		{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}},
		{{Index: 5, Value: math.MaxUint64, Op: specs.OpNotEqual}},
	} {
		if err := checkSeccompArgs(ok); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
	if err := checkSeccompArgs([]specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}); err == nil {
		t.Error("index 6 accepted")
	}
	if err := checkSeccompArgs([]specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_XX"}}); err == nil {
		t.Error("unknown operator accepted")
	}
}

func TestDevRuleOverlaps(t *testing.T) {
	null := devRule{typ: 'c', major: 1, minor: 3, access: "rwm"}
	for _, c := range []struct {
		r    devRule
		want bool
	}{
		{devRule{typ: 'c', major: 1, minor: 3, access: "w"}, true},
		{devRule{typ: 'c', major: 1, minor: -1, access: "r"}, true},
		{devRule{typ: 'a', major: -1, minor: -1, access: "m"}, true},
		{devRule{typ: 'b', major: 1, minor: 3, access: "rwm"}, false},
		{devRule{typ: 'c', major: 1, minor: 5, access: "rwm"}, false},
	} {
		if got := null.overlaps(c.r); got != c.want {
			t.Errorf("%s overlaps %s: %v, want %v", null, c.r, got, c.want)
		}
	}
	if s := (devRule{typ: 'c', major: 136, minor: -1, access: "rwm"}).String(); s != "c 136:* rwm" {
		t.Errorf("String: %q", s)
	}
}

// TestTranslatePure: the spec is not modified, and the same input gives
// the same output.
func TestTranslatePure(t *testing.T) {
	data, err := os.ReadFile("testdata/translate/runc_default.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Spec specs.Spec
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(c.Spec)
	a, err := Translate("x", &c.Spec, "/r", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Translate("x", &c.Spec, "/r", Settings{})
	after, _ := json.Marshal(c.Spec)
	if string(before) != string(after) {
		t.Error("Translate modified the spec")
	}
	if a.Render() != b.Render() || strings.Join(a.Warnings, "\n") != strings.Join(b.Warnings, "\n") {
		t.Error("Translate is not deterministic")
	}
	if _, err := Translate("x", nil, "/r", Settings{}); err == nil {
		t.Error("nil spec accepted")
	}
}

// A namespace path of another container's keeper (podman's pod infra
// names it by the pid it got) joins that container's init's namespace,
// never the keeper's, which is the host's.
func TestNamespacePathOfAKeeperJoinsItsInit(t *testing.T) {
	s := &specs.Spec{Process: &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/"}, Root: &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/400/ns/net"}}}}
	cfg, err := Translate("x", s, "/r", Settings{KeeperInit: func(pid int) int {
		if pid == 400 {
			return 401
		}
		return pid
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out := cfg.Render(); !strings.Contains(out, "lxc.namespace.share.net = 401\n") {
		t.Fatalf("keeper's pid not mapped to its init:\n%s", out)
	}
}
