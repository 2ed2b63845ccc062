package config

import (
	"os"
	"strings"
	"testing"
)

// readmeReference is the README's "Configuration reference" section.
func readmeReference(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n## Configuration reference\n")
	if !ok {
		t.Fatal("README.md has no section \"## Configuration reference\"")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	return sec
}

// TestREADMEListsEveryKey: every key of the config file (found in the
// structs), every environment variable and every org.proxcage.* annotation
// the code reads has a row in the README's Configuration reference, under
// the heading of its table.
func TestREADMEListsEveryKey(t *testing.T) {
	sec := readmeReference(t)
	// The text under each "### " heading, by heading.
	sub := map[string]string{}
	for _, part := range strings.Split(sec, "\n### ")[1:] {
		head, body, _ := strings.Cut(part, "\n")
		sub[head] = body
	}
	keys, tables := tomlKeys(t)
	heading := func(table string) string {
		switch {
		case table == "":
			return "Top level"
		case tables[table]:
			return "`[[" + table + "]]`"
		}
		return "`[" + table + "]`"
	}
	for _, k := range keys {
		table, short := "", k.name
		if i := strings.LastIndex(k.name, "."); i >= 0 {
			table, short = k.name[:i], k.name[i+1:]
		}
		body, ok := sub[heading(table)]
		if !ok {
			t.Errorf("key %s: the reference has no heading %q", k.name, "### "+heading(table))
			continue
		}
		if !strings.Contains(body, "\n| `"+short+"` |") {
			t.Errorf("key %s: no row \"| `%s` |\" under %q", k.name, short, heading(table))
		}
	}
	for _, e := range codeEnvs(t) {
		if !strings.Contains(sub["Environment"], "| `$"+e+"` |") {
			t.Errorf("$%s: no row under \"### Environment\"", e)
		}
	}
	for _, a := range codeAnnotations(t) {
		if !strings.Contains(sub["Annotations"], "| `"+a+"` |") {
			t.Errorf("annotation %s: no row under \"### Annotations\"", a)
		}
	}
}
