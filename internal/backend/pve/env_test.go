package pve

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/test/pvesim"
)

// envCases are variables with what PVE does to them: kept exactly, or
// refused (Config.pm's env pattern; the config file's trimming).
var envCases = []struct {
	v      string
	refuse string // "" when PVE keeps it exactly
}{
	{"PATH=/usr/bin:/bin", ""},
	{"GREETING=hello  world", ""},
	{"EQ=a=b==c", ""},
	{`QUOTES='single' "double" \back`, ""},
	{"EMPTY=", ""},
	{"TAB=a\tb", ""},
	{"LEAD=  x", ""},
	{"NOVALUE", "has no '='"},
	{"BAD-NAME=1", "only names of letters, digits and '_'"},
	{"NL=secret\nlxc.mount.entry=/ x", "control character"},
	{"NUL=a\x00b", "control character"},
	{"TRAIL=secret ", "ends in a blank"},
	{"TRAILTAB=secret\t", "ends in a blank"},
}

func TestCheckEnvVar(t *testing.T) {
	for _, c := range envCases {
		err := checkEnvVar(c.v)
		if c.refuse == "" {
			if err != nil {
				t.Errorf("%q refused: %v", c.v, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.refuse) {
			t.Errorf("%q: got %v, want %q", c.v, err, c.refuse)
			continue
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: the error shows the value or spans lines: %q", c.v, err)
		}
	}
}

func TestWithEnv(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"no env yet: after the keys, before the lxc lines",
			"#proxcage%3A web\narch: amd64\nentrypoint: /app\nlxc.init.cwd: /srv\nlxc.signal.halt: SIGTERM\n",
			"#proxcage%3A web\narch: amd64\nentrypoint: /app\nlxc.environment.runtime: A=1\nlxc.environment.runtime: B=x y\nlxc.init.cwd: /srv\nlxc.signal.halt: SIGTERM\n"},
		{"no lxc lines", "arch: amd64\nhostname: h\n",
			"arch: amd64\nhostname: h\nlxc.environment.runtime: A=1\nlxc.environment.runtime: B=x y\n"},
		{"replaces the image's env, ':' and '=' forms",
			"arch: amd64\nlxc.environment.runtime: OLD=1\nlxc.init.cwd: /\nlxc.environment.runtime = OLD2=2\n",
			"arch: amd64\nlxc.environment.runtime: A=1\nlxc.environment.runtime: B=x y\nlxc.init.cwd: /\n"},
		{"sections stay as they are",
			"arch: amd64\nlxc.environment.runtime: OLD=1\n\n[snap]\narch: amd64\nlxc.environment.runtime: SNAP=1\n",
			"arch: amd64\nlxc.environment.runtime: A=1\nlxc.environment.runtime: B=x y\n\n[snap]\narch: amd64\nlxc.environment.runtime: SNAP=1\n"},
	} {
		got, err := withEnv([]byte(c.in), []string{"A=1", "B=x y"})
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", c.name, got, err, c.want)
		}
	}
	if _, err := withEnv([]byte("arch: amd64\nlock: backup\n"), []string{"A=1"}); err == nil || err.Error() != "CT is locked (backup)" {
		t.Errorf("locked CT: %v", err)
	}
}

// fakePct writes dir/VMID.conf on `create` as pct would (no env: the
// transport must not pass one) and records its argv.
func fakePct(t *testing.T, dir string) (bin, argv string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "pct")
	argv = filepath.Join(t.TempDir(), "argv")
	script := `#!/bin/sh
printf '%s\n' "$@" > ` + argv + `
[ "$1" = create ] || exit 0
printf '#proxcage%%3A c1\narch: amd64\nentrypoint: /app\nlxc.environment.runtime: FROM_IMAGE=1\nlxc.init.cwd: /\n' > ` + dir + `/$2.conf
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argv
}

func pctEnvTransport(t *testing.T, wait time.Duration) (*pctTransport, string, string) {
	t.Helper()
	dir := t.TempDir()
	bin, argv := fakePct(t, dir)
	tr := &pctTransport{
		tools: tools{pct: bin, timeout: 20 * time.Second, log: slog.Default()},
		files: ctFiles{configDir: dir, lockDir: filepath.Join(t.TempDir(), "lock"), lockWait: wait},
	}
	return tr, dir, argv
}

func envPlan(vars ...string) *Plan {
	return &Plan{Application: true, Options: []Option{
		{Key: "entrypoint", Value: "/app"},
		{Key: "env", Value: strings.Join(vars, "\x00")},
		{Key: "hostname", Value: "c1"},
	}}
}

// TestPctCreateWritesEnvToTheConfig: pct's argv cannot carry the env
// (pct keeps `\0` literally: one mangled variable), so pct create gets
// none and the variables become lxc.environment.runtime lines of the
// CT's config, each exactly, the image's replaced. No value is in argv.
func TestPctCreateWritesEnvToTheConfig(t *testing.T) {
	tr, dir, argv := pctEnvTransport(t, time.Second)
	var vars []string
	for _, c := range envCases {
		if c.refuse == "" {
			vars = append(vars, c.v)
		}
	}
	if err := tr.create(context.Background(), "", 120, "local:vztmpl/x.tar", envPlan(vars...)); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(argv)
	if strings.Contains(string(args), "--env") || strings.Contains(string(args), "hello") {
		t.Fatalf("pct argv carries the env:\n%s", args)
	}
	if !strings.Contains(string(args), "--entrypoint\n/app\n") {
		t.Fatalf("pct argv lost the other options:\n%s", args)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "120.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := "#proxcage%3A c1\narch: amd64\nentrypoint: /app\n"
	for _, v := range vars {
		want += "lxc.environment.runtime: " + v + "\n"
	}
	want += "lxc.init.cwd: /\n"
	if string(conf) != want {
		t.Fatalf("config:\n%q\nwant\n%q", conf, want)
	}
	if st, _ := os.Stat(filepath.Join(tr.files.lockDir, "pve-config-120.lock")); st == nil {
		t.Fatal("the config lock file pct uses was not taken")
	}
}

// TestPctEnvWaitsForTheConfigLock: the env is written under pct's own
// config lock; a lock held past lock_config's wait fails with PVE's text,
// as a transient error.
func TestPctEnvWaitsForTheConfigLock(t *testing.T) {
	tr, dir, _ := pctEnvTransport(t, 300*time.Millisecond)
	os.WriteFile(filepath.Join(dir, "121.conf"), []byte("arch: amd64\n"), 0o640)
	os.MkdirAll(tr.files.lockDir, 0o755)
	lockPath := filepath.Join(tr.files.lockDir, "pve-config-121.lock")
	held, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	err = tr.files.setEnv(context.Background(), 121, []string{"A=1"})
	var te *toolError
	if !errors.As(err, &te) || !te.Retry || errdefs.Category(err) != errdefs.ErrUnavailable ||
		!strings.Contains(err.Error(), "can't lock file '"+lockPath+"' - got timeout") {
		t.Fatalf("held lock: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "121.conf")); string(b) != "arch: amd64\n" {
		t.Fatalf("written without the lock: %q", b)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		held.Close()
	}()
	tr.files.lockWait = 5 * time.Second
	if err := tr.files.setEnv(context.Background(), 121, []string{"A=1"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "121.conf")); string(b) != "arch: amd64\nlxc.environment.runtime: A=1\n" {
		t.Fatalf("after the lock: %q", b)
	}
	// A CT PVE has locked is refused as pct refuses it.
	os.WriteFile(filepath.Join(dir, "121.conf"), []byte("arch: amd64\nlock: backup\n"), 0o640)
	if err := tr.files.setEnv(context.Background(), 121, []string{"A=1"}); errdefs.Category(err) != errdefs.ErrUnavailable || !strings.Contains(err.Error(), "CT is locked (backup)") {
		t.Fatalf("locked CT: %v", err)
	}
}

// TestTranslateRefusesEnvPVEWouldChange: before anything is created.
func TestTranslateRefusesEnvPVEWouldChange(t *testing.T) {
	for _, c := range envCases {
		s := &specs.Spec{Version: specs.Version, Hostname: "h", Root: &specs.Root{Path: "rootfs"}, Linux: &specs.Linux{},
			Process: &specs.Process{Args: []string{"/app"}, Cwd: "/", Env: []string{"PATH=/bin", c.v}}}
		_, err := Translate("c1", s, Settings{RootfsStorage: "local-lvm", Bridge: "vmbr0"}, Node{Version: Version{Major: 9, Minor: 1}})
		if (err == nil) != (c.refuse == "") || (err != nil && !strings.Contains(err.Error(), c.refuse)) {
			t.Errorf("%q: %v", c.v, err)
		}
	}
}

// TestAPICreateSendsEnvWithNULs: over the API the env is one form value
// with real NULs; the simulator stores it as PVE does.
func TestAPICreateSendsEnvWithNULs(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{Nodes: []string{"pve1"}})
	b := f.backend()
	vars := []string{"PATH=/bin", "GREETING=hello  world", "EQ=a=b==c", `QUOTES='single' "double"`, "EMPTY="}
	c := f.container("envapi", func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/app", "--flag"}
		s.Process.Env = vars
	})
	ctx := context.Background()
	if err := b.Create(ctx, c, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	p := privateOf(t, c)
	cfg, err := b.tr.config(ctx, p.Node, p.VMID)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg["env"]; got != strings.Join(vars, "\x00") {
		t.Fatalf("env = %q", got)
	}
}

// A keeper's mount entry (and a tmpfs) go after the main section's other
// lxc.* lines, before its trailing blank lines and any snapshot section:
// where write_pct_config writes raw lxc keys (pve-container Config.pm).
func TestWithLinesAppendsRawLines(t *testing.T) {
	in := "arch: amd64\nhostname: a\nlxc.apparmor.profile: unconfined\n\n[snap1]\narch: amd64\n"
	got, err := withLines([]byte(in), []string{"A=1"}, []Option{{"lxc.mount.entry", "/run/k dev/.k none bind,create=dir 0 0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "arch: amd64\nhostname: a\nlxc.environment.runtime: A=1\nlxc.apparmor.profile: unconfined\n" +
		"lxc.mount.entry: /run/k dev/.k none bind,create=dir 0 0\n\n[snap1]\narch: amd64\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// A keeper on an OCI image CT: the image's env (PVE wrote it) stays when
// the bundle sets none, and the keeper's entrypoint replaces the image's,
// which PVE set at create over the one asked for.
func TestWithLinesKeepsTheImageEnvAndSetsTheEntrypoint(t *testing.T) {
	in := "arch: amd64\nentrypoint: /docker-entrypoint.sh nginx\nlxc.environment.runtime: PATH=/bin\nlxc.init.cwd: /\n"
	got, err := withLines([]byte(in), nil, []Option{{"lxc.mount.entry", "m"}}, []Option{{"entrypoint", "/dev/.k/init --keeper /dev/.k"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "arch: amd64\nentrypoint: /dev/.k/init --keeper /dev/.k\nlxc.environment.runtime: PATH=/bin\nlxc.init.cwd: /\nlxc.mount.entry: m\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
