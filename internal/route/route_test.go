package route

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/config"
)

func mustParse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

const rules = `
default_backend = "native"

[[routes]]
match_id = '^pve-'
backend = "pve"

[[routes]]
match_id = '^pve-lxc-'
backend = "lxc"

[[routes]]
match_annotation = "tier=front"
backend = "front"

[[routes]]
match_id = '^both-'
match_annotation = "zone=a"
backend = "both"
`

func TestPick(t *testing.T) {
	cfg := mustParse(t, rules)
	tests := []struct {
		name        string
		id          string
		annot       map[string]string
		wantBackend string
		wantRule    int
		wantReason  []string
	}{
		{"annotation beats matching rule", "pve-web", map[string]string{BackendAnnotation: "lxc"},
			"lxc", -1, []string{"bundle annotation", BackendAnnotation + "=lxc"}},
		{"annotation beats default", "plain", map[string]string{BackendAnnotation: "custom"},
			"custom", -1, []string{"annotation", "custom"}},
		{"empty annotation is ignored", "pve-web", map[string]string{BackendAnnotation: ""},
			"pve", 0, []string{"config rule 1"}},
		{"id regexp", "pve-web", nil, "pve", 0, []string{"config rule 1", `match_id="^pve-"`}},
		{"first match wins over later more specific rule", "pve-lxc-web", nil,
			"pve", 0, []string{"config rule 1"}},
		{"regexp is anchored by the rule only", "web-pve-1", nil, "native", -1, []string{"built-in default"}},
		{"annotation matcher", "web", map[string]string{"tier": "front"},
			"front", 2, []string{"config rule 3", `match_annotation="tier=front"`}},
		{"annotation value must be equal", "web", map[string]string{"tier": "frontend"},
			"native", -1, []string{"built-in default"}},
		{"both matchers match", "both-1", map[string]string{"zone": "a"},
			"both", 3, []string{"config rule 4", `match_id="^both-"`, `match_annotation="zone=a"`}},
		{"id matches, annotation does not", "both-1", map[string]string{"zone": "b"},
			"native", -1, []string{"built-in default"}},
		{"annotation matches, id does not", "other", map[string]string{"zone": "a"},
			"native", -1, []string{"built-in default"}},
		{"default", "web", nil, "native", -1, []string{"built-in default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Pick(cfg, tt.id, tt.annot)
			if d.Backend != tt.wantBackend || d.Rule != tt.wantRule {
				t.Errorf("Pick(%q, %v) = {%q rule %d}, want {%q rule %d}", tt.id, tt.annot, d.Backend, d.Rule, tt.wantBackend, tt.wantRule)
			}
			for _, w := range tt.wantReason {
				if !strings.Contains(d.Reason, w) {
					t.Errorf("Reason %q does not mention %q", d.Reason, w)
				}
			}
		})
	}
}

func TestPickOrderMatters(t *testing.T) {
	a := mustParse(t, "[[routes]]\nmatch_id = '^x'\nbackend = \"one\"\n[[routes]]\nmatch_id = '^xy'\nbackend = \"two\"\n")
	b := mustParse(t, "[[routes]]\nmatch_id = '^xy'\nbackend = \"two\"\n[[routes]]\nmatch_id = '^x'\nbackend = \"one\"\n")
	if d := Pick(a, "xyz", nil); d.Backend != "one" || d.Rule != 0 {
		t.Errorf("order a: got %+v, want one from rule 0", d)
	}
	if d := Pick(b, "xyz", nil); d.Backend != "two" || d.Rule != 0 {
		t.Errorf("order b: got %+v, want two from rule 0", d)
	}
	if d := Pick(b, "xa", nil); d.Backend != "one" || d.Rule != 1 || !strings.Contains(d.Reason, "config rule 2") {
		t.Errorf("order b, xa: got %+v, want one from rule 1 (reason 'config rule 2')", d)
	}
}

func TestPickDefaultReasonNamesConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(`default_backend = "pve"`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	d := Pick(cfg, "anything", nil)
	if d.Backend != "pve" || d.Rule != -1 {
		t.Errorf("got %+v, want pve, rule -1", d)
	}
	if !strings.Contains(d.Reason, "default_backend") || !strings.Contains(d.Reason, p) {
		t.Errorf("Reason %q should mention default_backend and %s", d.Reason, p)
	}
	// The built-in default says so.
	if d := Pick(config.Default(), "x", nil); d.Backend != "native" || d.Reason != "built-in default" {
		t.Errorf("built-in default: got %+v", d)
	}
}

func TestPickIsPure(t *testing.T) {
	cfg := mustParse(t, rules)
	annot := map[string]string{"tier": "front"}
	first := Pick(cfg, "web", annot)
	for i := 0; i < 3; i++ {
		if d := Pick(cfg, "web", annot); d != first {
			t.Fatalf("Pick changed its answer: %+v then %+v", first, d)
		}
	}
	if len(annot) != 1 || annot["tier"] != "front" {
		t.Errorf("Pick mutated annotations: %v", annot)
	}
}
