package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/errdefs"
)

const documented = `
default_backend = "native"

[[routes]]
match_id = '^pve-'
backend = "pve"

[[routes]]
match_annotation = "io.kubernetes.cri.sandbox-namespace=prod"
backend = "lxc"

[[routes]]
match_id = '^web'
match_annotation = "tier=front"
backend = "pve"
`

func TestParseDocumented(t *testing.T) {
	cfg, err := Parse([]byte(documented))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.DefaultBackend != "native" {
		t.Errorf("DefaultBackend = %q, want native", cfg.DefaultBackend)
	}
	if cfg.Path != "" {
		t.Errorf("Path = %q, want empty for Parse", cfg.Path)
	}
	want := []struct{ id, annot, backend string }{
		{"^pve-", "", "pve"},
		{"", "io.kubernetes.cri.sandbox-namespace=prod", "lxc"},
		{"^web", "tier=front", "pve"},
	}
	if len(cfg.Routes) != len(want) {
		t.Fatalf("got %d routes, want %d", len(cfg.Routes), len(want))
	}
	for i, w := range want {
		r := cfg.Routes[i]
		if r.MatchID != w.id || r.MatchAnnotation != w.annot || r.Backend != w.backend {
			t.Errorf("routes[%d] = {%q %q %q}, want {%q %q %q}", i, r.MatchID, r.MatchAnnotation, r.Backend, w.id, w.annot, w.backend)
		}
	}
	if got, want := cfg.Backends(), []string{"native", "pve", "lxc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Backends() = %v, want %v", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n"} {
		cfg, err := Parse([]byte(text))
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if cfg.DefaultBackend != "native" || len(cfg.Routes) != 0 {
			t.Errorf("Parse(%q) = %+v, want default native and no routes", text, cfg)
		}
	}
	cfg, err := Parse([]byte(`default_backend = "pve"`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultBackend != "pve" {
		t.Errorf("DefaultBackend = %q, want pve", cfg.DefaultBackend)
	}
	if got := cfg.Backends(); !reflect.DeepEqual(got, []string{"pve"}) {
		t.Errorf("Backends() = %v, want [pve]", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // substrings the error must contain
	}{
		{"unknown top-level key", "default_backend = \"native\"\ndefault_backnd = \"x\"\n",
			[]string{"unknown key", "default_backnd"}},
		{"unknown key in routes", "[[routes]]\nmatch_id = '^a'\nbackend = \"native\"\nmatch_idd = 'x'\n",
			[]string{"unknown key", "match_idd"}},
		{"unknown table", "[backends.pve]\nurl = \"x\"\n", []string{"unknown key", "backends"}},
		{"bad regexp", "[[routes]]\nmatch_id = '^(pve'\nbackend = \"pve\"\n",
			[]string{"routes[0].match_id", "missing closing )"}},
		{"annotation without =", "[[routes]]\nmatch_annotation = \"tier\"\nbackend = \"pve\"\n",
			[]string{"routes[0].match_annotation", `"tier"`, "key=value"}},
		{"annotation with empty key", "[[routes]]\nmatch_annotation = \"=front\"\nbackend = \"pve\"\n",
			[]string{"routes[0].match_annotation", "key=value"}},
		{"rule without matcher", "[[routes]]\nbackend = \"pve\"\n",
			[]string{"routes[0]", "match_id or match_annotation"}},
		{"empty backend", "[[routes]]\nmatch_id = 'x'\nbackend = \"\"\n",
			[]string{"routes[0]", "backend is required"}},
		{"missing backend in second rule", "[[routes]]\nmatch_id = 'x'\nbackend = \"a\"\n[[routes]]\nmatch_id = 'y'\n",
			[]string{"routes[1]", "backend is required"}},
		{"empty default_backend", "default_backend = \"\"\n", []string{"default_backend must not be empty"}},
		{"syntax error", "default_backend = \"native\"\nroutes = [\n", []string{"line"}},
		{"wrong type", "default_backend = 3\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.text))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.toml")

	t.Run("explicit missing file is an error", func(t *testing.T) {
		cfg, err := Load(missing, true)
		if err == nil {
			t.Fatalf("Load succeeded: %+v", cfg)
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("error %v is not ErrInvalidArgument", err)
		}
		if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("error %q should name %s and say it does not exist", err, missing)
		}
	})
	t.Run("default missing file gives defaults", func(t *testing.T) {
		cfg, err := Load(missing, false)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.DefaultBackend != "native" || len(cfg.Routes) != 0 || cfg.Path != "" {
			t.Errorf("got %+v, want built-in defaults", cfg)
		}
	})
	t.Run("good file records its path", func(t *testing.T) {
		p := filepath.Join(dir, "good.toml")
		if err := os.WriteFile(p, []byte(documented), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, explicit := range []bool{true, false} {
			cfg, err := Load(p, explicit)
			if err != nil {
				t.Fatalf("Load(explicit=%v): %v", explicit, err)
			}
			if cfg.Path != p || len(cfg.Routes) != 3 {
				t.Errorf("Load(explicit=%v) = path %q, %d routes", explicit, cfg.Path, len(cfg.Routes))
			}
		}
	})
	t.Run("bad default file is still an error", func(t *testing.T) {
		p := filepath.Join(dir, "bad.toml")
		if err := os.WriteFile(p, []byte("bogus_key = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p, false)
		if err == nil {
			t.Fatal("Load of an invalid file succeeded")
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("error %v is not ErrInvalidArgument", err)
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus_key") {
			t.Errorf("error %q should name the file and the key", err)
		}
	})
	t.Run("directory is an error", func(t *testing.T) {
		_, err := Load(dir, false)
		if err == nil {
			t.Fatal("Load of a directory succeeded")
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("error %v is not ErrInvalidArgument", err)
		}
	})
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name         string
		flag, env    string
		wantPath     string
		wantExplicit bool
	}{
		{"flag wins over env", "/flag.toml", "/env.toml", "/flag.toml", true},
		{"flag alone", "/flag.toml", "", "/flag.toml", true},
		{"env when no flag", "", "/env.toml", "/env.toml", true},
		{"default", "", "", DefaultPath, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvVar, tt.env)
			p, explicit := Resolve(tt.flag)
			if p != tt.wantPath || explicit != tt.wantExplicit {
				t.Errorf("Resolve(%q) with %s=%q = (%q, %v), want (%q, %v)",
					tt.flag, EnvVar, tt.env, p, explicit, tt.wantPath, tt.wantExplicit)
			}
		})
	}
}

func TestRouteMatchesAndDescribe(t *testing.T) {
	cfg, err := Parse([]byte(documented))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rule  int
		id    string
		annot map[string]string
		want  bool
	}{
		{0, "pve-web", nil, true},
		{0, "web-pve-", nil, false},
		{1, "x", map[string]string{"io.kubernetes.cri.sandbox-namespace": "prod"}, true},
		{1, "x", map[string]string{"io.kubernetes.cri.sandbox-namespace": "production"}, false},
		{1, "x", nil, false},
		{2, "web1", map[string]string{"tier": "front"}, true},
		{2, "web1", map[string]string{"tier": "back"}, false},
		{2, "db1", map[string]string{"tier": "front"}, false},
	}
	for _, tt := range tests {
		if got := cfg.Routes[tt.rule].Matches(tt.id, tt.annot); got != tt.want {
			t.Errorf("routes[%d].Matches(%q, %v) = %v, want %v", tt.rule, tt.id, tt.annot, got, tt.want)
		}
	}
	if got, want := cfg.Routes[2].Describe(), `match_id="^web" match_annotation="tier=front"`; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

// The example config the package installs as /etc/proxcage/config.toml
// changes nothing as shipped, and every key it shows commented out is a
// real one: uncommented, it still loads.
func TestPackagedExample(t *testing.T) {
	data, err := os.ReadFile("../../packaging/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatalf("shipped example: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("shipped example is not the defaults:\n got %+v\nwant %+v", cfg, want)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		// "# key = value" and "# [table]" lines, not the prose.
		if u, ok := strings.CutPrefix(l, "# "); ok && (strings.HasPrefix(u, "[") || strings.Contains(strings.SplitN(u, "#", 2)[0], " = ")) {
			l = u
		}
		lines = append(lines, l)
	}
	cfg, err = Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("example with every setting uncommented: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].Backend != "pve" || cfg.PVE.URL == "" || cfg.PVE.VMIDRange == "" {
		t.Fatalf("uncommented example: %+v", cfg)
	}
}

// An unknown key is named with its line, and the hint says the key meant:
// the nearest of that table's keys, or the table a known key belongs in.
func TestUnknownKeyLineAndDidYouMean(t *testing.T) {
	for _, c := range []struct{ text, msg, hint string }{
		{"default_backend = \"pve\"\n\n[pve]\nbrigde = \"vmbr1\"\n", "line 4: unknown key pve.brigde", "did you mean pve.bridge?"},
		{"[pve]\ntransport = \"api\"\ntoken_secert_file = \"/x\"\n", "line 3: unknown key pve.token_secert_file", "did you mean pve.token_secret_file?"},
		{"[pve.tools]\npctt = \"/x\"\n", "line 2: unknown key pve.tools.pctt", "did you mean pve.tools.pct?"},
		{"default_backnd = \"pve\"\n", "line 1: unknown key default_backnd", "did you mean default_backend?"},
		{"bridge = \"vmbr0\"\n", "line 1: unknown key bridge", "bridge belongs in [pve]"},
		{"[pve]\ndefault_backend = \"pve\"\n", "line 2: unknown key pve.default_backend", "belongs at the top level"},
		{"[pve]\nzzz = 1\n", "line 2: unknown key pve.zzz", "keys of [pve]: transport, template_storage"},
		{"[pve.tools]\nfoo = 1\nbar = 2\n", "line 3: unknown key pve.tools.bar", "keys of [pve.tools]: pct,"},
		{"[[routes]]\nmatch_id = 'x'\nbackend = 'pve'\nmatch_idd = 'y'\n", "line 4: unknown key routes.match_idd", "did you mean routes.match_id?"},
	} {
		_, err := Parse([]byte(c.text))
		if err == nil {
			t.Fatalf("%q: accepted", c.text)
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.Contains(errdefs.Hint(err), c.hint) {
			t.Errorf("%q: %q (hint %q), want %q (hint %q)", c.text, err, errdefs.Hint(err), c.msg, c.hint)
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: not invalid argument: %v", c.text, err)
		}
		if h := errdefs.Hint(err); strings.Count(h, c.hint) != 1 {
			t.Errorf("%q: hint %q does not say %q exactly once", c.text, h, c.hint)
		}
	}
	// Through Load: the file, the line and the hint, on one line.
	p := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(p, []byte("[pve]\nbrigde = \"vmbr1\"\n"), 0o644)
	_, err := Load(p, true)
	if got, want := errdefs.OneLine(err), "config "+p+": line 2: unknown key pve.brigde (hint: did you mean pve.bridge?)"; got != want {
		t.Errorf("Load: %q, want %q", got, want)
	}
}
