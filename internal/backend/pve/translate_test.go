package pve

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestTranslateGolden runs every testdata/translate/*.json (id, settings,
// node, spec) through Translate and compares with the .golden file: one
// pct argument per line, or "error: ..." for a refused bundle.
func TestTranslateGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/translate/*.json")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				ID       string
				Settings Settings
				Node     Version
				Spec     specs.Spec
			}
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			var got string
			plan, err := Translate(c.ID, &c.Spec, c.Settings, Node{Version: c.Node})
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				var b strings.Builder
				if plan.Application {
					b.WriteString("# application container\n")
				} else {
					b.WriteString("# system container\n")
				}
				for _, a := range plan.Args() {
					b.WriteString(strings.ReplaceAll(a, "\x00", `\0`) + "\n")
				}
				got = b.String()
			}
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("translation changed:\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
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

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"/bin/sh", "-c", "echo 'a b'", ""})
	want := `/bin/sh -c 'echo '\''a b'\''' ''`
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}
