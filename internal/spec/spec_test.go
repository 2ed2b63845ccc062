package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// goodSpec returns a minimal valid spec as a map so tests can edit it.
func goodSpec() map[string]any {
	return map[string]any{
		"ociVersion": "1.0.2",
		"root":       map[string]any{"path": "rootfs"},
		"process": map[string]any{
			"args": []any{"sh", "-c", "true"},
			"cwd":  "/",
			"env":  []any{"PATH=/bin", "EMPTY="},
		},
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParse(t *testing.T) {
	edit := func(f func(m map[string]any)) []byte {
		m := goodSpec()
		f(m)
		return encode(t, m)
	}
	proc := func(m map[string]any) map[string]any { return m["process"].(map[string]any) }
	tests := []struct {
		name    string
		data    []byte
		wantErr string // "" means success
	}{
		{"good", encode(t, goodSpec()), ""},
		{"1.0.2 accepted", edit(func(m map[string]any) { m["ociVersion"] = "1.0.2" }), ""},
		{"current version accepted", edit(func(m map[string]any) { m["ociVersion"] = specs.Version }), ""},
		{"1.2.0-rc accepted", edit(func(m map[string]any) { m["ociVersion"] = "1.2.0-rc.1" }), ""},
		{"trailing whitespace accepted", append(encode(t, goodSpec()), " \n\t\n"...), ""},
		{"unknown fields tolerated", edit(func(m map[string]any) { m["org.example.ext"] = 1 }), ""},
		{"2.0.0 refused", edit(func(m map[string]any) { m["ociVersion"] = "2.0.0" }), `ociVersion "2.0.0" is not supported`},
		{"0.9 refused", edit(func(m map[string]any) { m["ociVersion"] = "0.9.0" }), "not supported"},
		{"10.0 refused", edit(func(m map[string]any) { m["ociVersion"] = "10.0.0" }), "not supported"},
		{"missing ociVersion", edit(func(m map[string]any) { delete(m, "ociVersion") }), "ociVersion is missing"},
		{"missing root", edit(func(m map[string]any) { delete(m, "root") }), "root.path is missing"},
		{"empty root.path", edit(func(m map[string]any) { m["root"] = map[string]any{"path": ""} }), "root.path is missing"},
		{"missing process", edit(func(m map[string]any) { delete(m, "process") }), "process is missing"},
		{"null process", edit(func(m map[string]any) { m["process"] = nil }), "process is missing"},
		{"no args", edit(func(m map[string]any) { delete(proc(m), "args") }), "process.args must not be empty"},
		{"empty args", edit(func(m map[string]any) { proc(m)["args"] = []any{} }), "process.args must not be empty"},
		{"empty argv0", edit(func(m map[string]any) { proc(m)["args"] = []any{""} }), "process.args must not be empty"},
		{"empty cwd", edit(func(m map[string]any) { proc(m)["cwd"] = "" }), "process.cwd must not be empty"},
		{"relative cwd", edit(func(m map[string]any) { proc(m)["cwd"] = "work" }), `process.cwd "work" must be an absolute path`},
		{"env without =", edit(func(m map[string]any) { proc(m)["env"] = []any{"PATH=/bin", "BROKEN"} }), `process.env entry "BROKEN"`},
		{"args of wrong type", edit(func(m map[string]any) { proc(m)["args"] = "sh" }), "args"},
		{"empty file", []byte(""), "empty file"},
		{"whitespace only", []byte("  \n"), "not valid JSON"},
		{"null document", []byte("null"), "ociVersion is missing"},
		{"not JSON, error on line 3", []byte("{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}\n"), "line 3"},
		{"not JSON at all", []byte("ociVersion: 1.0.2\n"), "not valid JSON (line 1)"},
		{"truncated", []byte("{\n\"ociVersion\": \"1.0.2\",\n"), "not valid JSON"},
		{"trailing garbage", append(encode(t, goodSpec()), "\ngarbage"...), "trailing data"},
		{"two objects", append(encode(t, goodSpec()), encode(t, goodSpec())...), "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if s == nil || s.Process == nil || len(s.Process.Args) == 0 || s.Root == nil {
					t.Fatalf("Parse returned incomplete spec %+v", s)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.wantErr)
			}
			if s != nil {
				t.Errorf("Parse returned a spec together with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseDecodesFields(t *testing.T) {
	s, err := Parse(encode(t, goodSpec()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.0.2" || s.Root.Path != "rootfs" || s.Process.Cwd != "/" ||
		strings.Join(s.Process.Args, " ") != "sh -c true" || len(s.Process.Env) != 2 {
		t.Errorf("decoded spec is wrong: version %q root %q process %+v", s.Version, s.Root.Path, s.Process)
	}
}

// bundle writes a bundle into a fresh temp dir: config.json from m (nil
// means none) and, when mkRootfs, a rootfs directory. It returns the dir.
func bundle(t *testing.T, m map[string]any, mkRootfs bool) string {
	t.Helper()
	dir := t.TempDir()
	if m != nil {
		if err := os.WriteFile(filepath.Join(dir, ConfigName), encode(t, m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if mkRootfs {
		if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func withRoot(path string) map[string]any {
	m := goodSpec()
	m["root"] = map[string]any{"path": path}
	return m
}

func TestLoadGood(t *testing.T) {
	dir := bundle(t, goodSpec(), true)
	b, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if b.Path != dir {
		t.Errorf("Path = %q, want %q", b.Path, dir)
	}
	if want := filepath.Join(dir, "rootfs"); b.Rootfs != want {
		t.Errorf("Rootfs = %q, want %q", b.Rootfs, want)
	}
	if b.Spec == nil || b.Spec.Process.Args[0] != "sh" {
		t.Errorf("Spec not loaded: %+v", b.Spec)
	}
}

func TestLoadRelativeBundlePath(t *testing.T) {
	dir := bundle(t, goodSpec(), true)
	t.Chdir(filepath.Dir(dir))
	b, err := Load(filepath.Base(dir))
	if err != nil {
		t.Fatalf("Load(relative): %v", err)
	}
	if b.Path != dir || !filepath.IsAbs(b.Path) {
		t.Errorf("Path = %q, want absolute %q", b.Path, dir)
	}
}

func TestLoadRootfsVariants(t *testing.T) {
	t.Run("nested relative rootfs inside bundle", func(t *testing.T) {
		dir := bundle(t, withRoot("a/../images/root"), false)
		if err := os.MkdirAll(filepath.Join(dir, "images", "root"), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if want := filepath.Join(dir, "images", "root"); b.Rootfs != want {
			t.Errorf("Rootfs = %q, want %q", b.Rootfs, want)
		}
	})
	t.Run("rootfs through a symlink is the real directory (as runc's specconv)", func(t *testing.T) {
		real := t.TempDir()
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		b, err := Load(bundle(t, withRoot(link), false))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if b.Rootfs != real {
			t.Errorf("Rootfs = %q, want %q", b.Rootfs, real)
		}
	})
	t.Run("absolute rootfs outside bundle allowed", func(t *testing.T) {
		abs := t.TempDir()
		dir := bundle(t, withRoot(abs), false)
		b, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if b.Rootfs != abs {
			t.Errorf("Rootfs = %q, want %q", b.Rootfs, abs)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the bundle dir to load
		wantErr []string
	}{
		{"missing dir", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "nope")
		}, []string{"does not exist"}},
		{"bundle is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"is not a directory"}},
		{"config.json missing", func(t *testing.T) string {
			return bundle(t, nil, true)
		}, []string{"has no config.json"}},
		{"config.json not JSON", func(t *testing.T) string {
			dir := bundle(t, nil, true)
			if err := os.WriteFile(filepath.Join(dir, ConfigName), []byte("{\n\"ociVersion\": \"1.0.2\"\n\"root\": {}\n}"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"config.json", "not valid JSON", "line 3"}},
		{"config.json trailing garbage", func(t *testing.T) string {
			dir := bundle(t, nil, true)
			data := append(encode(t, goodSpec()), "}"...)
			if err := os.WriteFile(filepath.Join(dir, ConfigName), data, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"trailing data"}},
		{"ociVersion 2.0.0", func(t *testing.T) string {
			m := goodSpec()
			m["ociVersion"] = "2.0.0"
			return bundle(t, m, true)
		}, []string{"2.0.0", "not supported"}},
		{"missing root.path", func(t *testing.T) string {
			m := goodSpec()
			delete(m, "root")
			return bundle(t, m, true)
		}, []string{"root.path is missing"}},
		{"missing process", func(t *testing.T) string {
			m := goodSpec()
			delete(m, "process")
			return bundle(t, m, true)
		}, []string{"process is missing"}},
		{"relative cwd", func(t *testing.T) string {
			m := goodSpec()
			m["process"].(map[string]any)["cwd"] = "rel"
			return bundle(t, m, true)
		}, []string{"must be an absolute path"}},
		{"rootfs missing", func(t *testing.T) string {
			return bundle(t, goodSpec(), false)
		}, []string{"rootfs", "does not exist"}},
		{"rootfs is a file", func(t *testing.T) string {
			dir := bundle(t, goodSpec(), false)
			if err := os.WriteFile(filepath.Join(dir, "rootfs"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"rootfs", "is not a directory"}},
		{"relative rootfs ../x refused although it exists", func(t *testing.T) string {
			parent := t.TempDir()
			dir := filepath.Join(parent, "bundle")
			for _, d := range []string{dir, filepath.Join(parent, "x")} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, ConfigName), encode(t, withRoot("../x")), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{`root.path "../x"`, "outside the bundle"}},
		{"relative rootfs climbing via a/../../x refused", func(t *testing.T) string {
			parent := t.TempDir()
			dir := filepath.Join(parent, "bundle")
			for _, d := range []string{dir, filepath.Join(parent, "x")} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, ConfigName), encode(t, withRoot("a/../../x")), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"outside the bundle"}},
		{"rootfs '..' refused", func(t *testing.T) string {
			return bundle(t, withRoot(".."), true)
		}, []string{"outside the bundle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			b, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", b)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument (exit code %d)", err, errdefs.ExitCode(err))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingConfigHasHint(t *testing.T) {
	dir := bundle(t, nil, true)
	_, err := Load(dir)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	if h := errdefs.Hint(err); !strings.Contains(h, "proxcage spec --bundle "+dir) {
		t.Errorf("Hint = %q, want it to suggest `proxcage spec --bundle %s`", h, dir)
	}
}

func TestLoadProcess(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"args":["ls","-l"],"cwd":"/tmp","env":["A=1"]}`)
	p, err := LoadProcess(good)
	if err != nil {
		t.Fatalf("LoadProcess: %v", err)
	}
	if strings.Join(p.Args, " ") != "ls -l" || p.Cwd != "/tmp" {
		t.Errorf("got %+v", p)
	}
	bad := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "none.json"), "process file"},
		{"not json", write("bad.json", "{\n\n,"), "line 3"},
		{"no args", write("noargs.json", `{"cwd":"/"}`), "process.args must not be empty"},
		{"relative cwd", write("rel.json", `{"args":["x"],"cwd":"rel"}`), "absolute"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadProcess(tt.path)
			if err == nil {
				t.Fatal("LoadProcess succeeded")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
