//go:build genman

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/config"
)

// TestManPages runs `gen-man` as `make man` does (go test -tags genman):
// every page's header carries the version `proxcage version` prints and
// its own title; proxcage(8) has CONFIGURATION, EXIT STATUS, ENVIRONMENT
// and FILES; proxcage-config.toml(5) names every key of the config file.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if r := runRaw("gen-man", dir); r.code != 0 {
		t.Fatalf("gen-man: %+v", r)
	}
	r := runRaw("version")
	v, ok := strings.CutPrefix(strings.SplitN(r.stdout, "\n", 2)[0], "proxcage version ")
	if !ok || v == "" {
		t.Fatalf("version: %q", r.stdout)
	}
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	pages, err := filepath.Glob(filepath.Join(dir, "proxcage*.[58]"))
	if err != nil || len(pages) < 20 {
		t.Fatalf("pages: %v %v", pages, err)
	}
	th := regexp.MustCompile(`(?m)^\.TH "([^"]*)" "([58])" "[A-Z][a-z]{2} \d{4}" "proxcage ([^"]*)" ""$`)
	for _, p := range pages {
		base := filepath.Base(p)
		ext := filepath.Ext(base)
		m := th.FindStringSubmatch(read(base))
		if m == nil {
			t.Errorf("%s: no .TH header in cobra's form", base)
			continue
		}
		title := strings.ToUpper(strings.TrimSuffix(base, ext))
		if m[1] != title || "."+m[2] != ext || m[3] != v {
			t.Errorf("%s: .TH %q %q, source %q; want %q %q, \"proxcage %s\"", base, m[1], m[2], m[3], title, ext[1:], v)
		}
	}

	root := read("proxcage.8")
	for _, s := range []string{"CONFIGURATION", "EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"} {
		if !strings.Contains(root, "\n.SH "+s+"\n") {
			t.Errorf("proxcage(8) has no section %s", s)
		}
	}
	for _, w := range []string{"/etc/proxcage/config.toml", "/run/proxcage", "/var/lib/proxcage", "/var/cache/proxcage/vztmpl",
		"PROXCAGE_CONFIG", "PROXCAGE_PVE_TOKEN_SECRET", "PROXCAGE_REGISTRY_CREDS", "REGISTRY_AUTH_FILE", "proxcage-config.toml(5)"} {
		if !strings.Contains(root, w) {
			t.Errorf("proxcage(8) does not mention %s", w)
		}
	}
	_, exit, _ := strings.Cut(root, ".SH EXIT STATUS\n")
	exit, _, _ = strings.Cut(exit, "\n.SH ")
	for code, cat := range []string{"", "internal", "invalid argument", "not found", "already exists", "failed precondition", "unavailable", "permission denied"} {
		if code > 0 && !regexp.MustCompile(fmt.Sprintf(`(?m)^\\fB%d\\fP\n%s`, code, cat)).MatchString(exit) {
			t.Errorf("proxcage(8) EXIT STATUS: no %d (%s) in\n%s", code, cat, exit)
		}
	}
	if !strings.Contains(exit, "foreground") {
		t.Errorf("proxcage(8) EXIT STATUS does not say run and exec in the foreground return the process's status")
	}
	// go-md2man drops what looks like an HTML tag: <container-id> must survive.
	if !strings.Contains(read("proxcage-kill.8"), "<container-id> [signal]") {
		t.Errorf("proxcage-kill(8) SYNOPSIS lost <container-id>:\n%s", read("proxcage-kill.8"))
	}
	if !strings.Contains(read("proxcage-run.8"), "[-- CMD...]") {
		t.Errorf("proxcage-run(8) SYNOPSIS has no image form")
	}

	cfg := read("proxcage-config.toml.5")
	var walk func(t reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			switch {
			case tag == "" || tag == "-":
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem())
			case !strings.Contains(cfg, "\n\\fB"+tag+"\\fP ("):
				t.Errorf("proxcage-config.toml(5) has no entry for the key %s", tag)
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}))
	for _, s := range []string{".SH KEYS", ".SS [pve.tools]", ".SH ENVIRONMENT", ".SH ANNOTATIONS", ".SH FILES"} {
		if !strings.Contains(cfg, "\n"+s+"\n") {
			t.Errorf("proxcage-config.toml(5) has no %s", s)
		}
	}
}
