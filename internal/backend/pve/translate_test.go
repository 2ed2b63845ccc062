package pve

import (
	"encoding/json"
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
			Sources        []string
			RootfsHasShell bool
			Spec           specs.Spec
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		set := c.Settings
		if c.Sources != nil {
			set.SourceExists = func(p string) bool { return slices.Contains(c.Sources, p) }
		}
		set.RootfsHasShell = func() bool { return c.RootfsHasShell }
		plan, err := Translate(c.ID, &c.Spec, set, Node{Version: c.Node})
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		if plan.Application {
			b.WriteString("# application container\n")
		} else {
			b.WriteString("# system container\n")
		}
		for _, a := range plan.Args() {
			b.WriteString(strings.ReplaceAll(a, "\x00", `\0`) + "\n")
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

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"/bin/sh", "-c", "echo 'a b'", ""})
	want := `/bin/sh -c 'echo '\''a b'\''' ''`
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}
