package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/test/golden"
)

// TestReferenceKeys holds Keys to the structs: every toml tag has exactly
// one entry and every entry is a toml tag, with the Go field's type and
// Default()'s value; every table has a Section.
func TestReferenceKeys(t *testing.T) {
	keys, tables := tomlKeys(t)
	byName := map[string]Key{}
	for _, k := range Keys {
		if _, dup := byName[k.Name]; dup {
			t.Errorf("Keys names %s twice", k.Name)
		}
		byName[k.Name] = k
	}
	inStructs := map[string]bool{}
	for _, sk := range keys {
		inStructs[sk.name] = true
		k, ok := byName[sk.name]
		if !ok {
			t.Errorf("key %s (toml tag in internal/config) is missing from Keys", sk.name)
			continue
		}
		wantType := map[reflect.Kind]string{reflect.String: "string", reflect.Bool: "boolean"}[sk.kind]
		if k.Type != wantType {
			t.Errorf("key %s: Type %q, want %q (the Go field is a %s)", k.Name, k.Type, wantType, sk.kind)
		}
		if got := tomlValue(sk.def); k.Default != got {
			t.Errorf("key %s: Default %q, but Default() holds %q", k.Name, k.Default, got)
		}
		if k.Default == "" && k.Unset == "" {
			t.Errorf("key %s: no Default, so Unset must say what leaving it unset means", k.Name)
		}
		if k.Default != "" && k.Unset != "" {
			t.Errorf("key %s: has a Default; Unset %q would never apply", k.Name, k.Unset)
		}
		if k.Doc == "" {
			t.Errorf("key %s: no Doc", k.Name)
		}
	}
	for _, k := range Keys {
		if !inStructs[k.Name] {
			t.Errorf("Keys names %s, which is no toml tag in internal/config", k.Name)
		}
	}
	// Sections: the top level and every table, each once, with its header.
	want := map[string]string{"": ""}
	for name, array := range tables {
		want[name] = "[" + name + "]"
		if array {
			want[name] = "[[" + name + "]]"
		}
	}
	got := map[string]string{}
	for _, s := range Sections {
		got[s.Name] = s.Header
		if s.Doc == "" {
			t.Errorf("section %q: no Doc", s.Name)
		}
	}
	if !reflect.DeepEqual(got, want) || len(Sections) != len(want) {
		t.Errorf("Sections = %v, want one per table %v", got, want)
	}
	// Keys are grouped by section, in the order of Sections.
	order := make([]string, 0, len(Sections))
	for _, s := range Sections {
		order = append(order, s.Name)
	}
	last := 0
	for _, k := range Keys {
		i := slices.Index(order, SectionOf(k.Name))
		if i < last {
			t.Errorf("key %s is out of its section's place in Keys", k.Name)
		}
		last = max(last, i)
	}
}

// TestReferenceEnvAndAnnotations: every environment variable and every
// org.proxcage.* annotation key in the code is in Envs and Annotations,
// and every PROXCAGE_ variable or annotation there is in the code.
func TestReferenceEnvAndAnnotations(t *testing.T) {
	var envs, annots []string
	for _, e := range Envs {
		envs = append(envs, e.Name)
	}
	for _, a := range Annotations {
		annots = append(annots, a.Name)
	}
	code := codeEnvs(t)
	for _, e := range code {
		if !slices.Contains(envs, e) {
			t.Errorf("the code reads $%s, which Envs does not document", e)
		}
	}
	for _, e := range envs {
		if strings.HasPrefix(e, "PROXCAGE_") && !slices.Contains(code, e) {
			t.Errorf("Envs documents $%s, which the code does not read", e)
		}
	}
	code = codeAnnotations(t)
	for _, a := range code {
		if !slices.Contains(annots, a) {
			t.Errorf("the code uses the annotation %s, which Annotations does not document", a)
		}
	}
	for _, a := range annots {
		// org.proxcage.netN is org.proxcage.net followed by a number.
		if !slices.Contains(code, strings.TrimSuffix(a, "N")) {
			t.Errorf("Annotations documents %s, which the code does not use", a)
		}
	}
}

const (
	readmeBegin = "<!-- Made from internal/config/reference.go: go test ./internal/config -run TestREADMEUpToDate -update -->\n"
	readmeEnd   = "<!-- End of the generated reference. -->\n"
)

// TestREADMEUpToDate: the README's reference is ReferenceMarkdown(); with
// -update it is rewritten.
func TestREADMEUpToDate(t *testing.T) {
	const path = "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(data), readmeBegin)
	_, after, ok2 := strings.Cut(rest, readmeEnd)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the markers of the generated reference:\n%s%s", readmeBegin, readmeEnd)
	}
	want := before + readmeBegin + "\n" + ReferenceMarkdown() + "\n" + readmeEnd + after
	if string(data) == want {
		return
	}
	if golden.Updating() {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's Configuration reference is not what internal/config/reference.go makes: " +
		"go test ./internal/config -run TestREADMEUpToDate -update")
}

func TestManMarkdown(t *testing.T) {
	md := ManMarkdown()
	for _, k := range Keys {
		if !strings.Contains(md, "\n**"+ShortName(k.Name)+"** (") {
			t.Errorf("ManMarkdown has no entry for %s", k.Name)
		}
	}
	for _, e := range Envs {
		if !strings.Contains(md, "\n**"+e.Name+"**\n") {
			t.Errorf("ManMarkdown has no entry for $%s", e.Name)
		}
	}
	for _, a := range Annotations {
		if !strings.Contains(md, "\n**"+a.Name+"**") {
			t.Errorf("ManMarkdown has no entry for %s", a.Name)
		}
	}
}
