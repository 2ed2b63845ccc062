package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// structKey is a key of the config file as the structs define it.
type structKey struct {
	name string
	kind reflect.Kind
	def  reflect.Value // its value in Default() (a zero rule's in [[routes]])
}

// tomlKeys walks Config by reflection: every toml tag is a key, a struct
// a table, a slice of structs an array of tables (tables[name] = true).
func tomlKeys(t *testing.T) (keys []structKey, tables map[string]bool) {
	t.Helper()
	tables = map[string]bool{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			name := prefix + tag
			switch {
			case f.Type.Kind() == reflect.Struct:
				tables[name] = false
				walk(v.Field(i), name+".")
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				tables[name] = true
				walk(reflect.New(f.Type.Elem()).Elem(), name+".")
			default:
				keys = append(keys, structKey{name, f.Type.Kind(), v.Field(i)})
			}
		}
	}
	walk(reflect.ValueOf(Default()).Elem(), "")
	if len(keys) < 10 {
		t.Fatalf("found only %d keys in Config: %v", len(keys), keys)
	}
	return keys, tables
}

// codeStrings finds, in the non-test Go files of cmd/ and internal/, the
// first group of re in every match, sorted and unique.
func codeStrings(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, top := range []string{"../../cmd", "../../internal"} {
		err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(data, -1) {
				seen[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

var (
	getenvRE     = regexp.MustCompile(`os\.(?:Getenv|LookupEnv)\("([A-Za-z_][A-Za-z0-9_]*)"\)`)
	ownEnvRE     = regexp.MustCompile(`"(PROXCAGE_[A-Z0-9_]+)"`)
	annotationRE = regexp.MustCompile(`"(org\.proxcage\.[A-Za-z0-9.\-]+)"`)
)

// notUserEnv are variables the code reads that a user of proxcage does
// not set: proxcage-lxc-init searches the container's own PATH, LXC sets
// LXC_PID for the hooks proxcage gives it, and only gen-man (`make man`)
// reads SOURCE_DATE_EPOCH, for reproducible page dates.
var notUserEnv = map[string]bool{"PATH": true, "LXC_PID": true, "SOURCE_DATE_EPOCH": true}

// codeEnvs are the environment variables the code reads.
func codeEnvs(t *testing.T) []string {
	var out []string
	for _, e := range append(codeStrings(t, getenvRE), codeStrings(t, ownEnvRE)...) {
		if !notUserEnv[e] && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if !slices.Contains(out, "PROXCAGE_CONFIG") || !slices.Contains(out, "REGISTRY_AUTH_FILE") {
		t.Fatalf("the code search is broken: found only %v", out)
	}
	return out
}

func codeAnnotations(t *testing.T) []string {
	out := codeStrings(t, annotationRE)
	if !slices.Contains(out, "org.proxcage.backend") || !slices.Contains(out, "org.proxcage.vmid") {
		t.Fatalf("the code search is broken: found only %v", out)
	}
	return out
}

// tomlValue writes a default as it would appear in the file; "" for an
// empty string.
func tomlValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return ""
		}
		return strconv.Quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return "unsupported kind " + v.Kind().String()
}
