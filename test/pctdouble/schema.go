package main

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// The parameter rules come from the official PVE 9.1 API schema, reduced by
// test/pveschema/gen_schema.go into testdata/pve-lxc-schema.json and embedded here; the
// validator is test/pveschema.
//
//go:embed testdata/pve-lxc-schema.json
var schemaJSON []byte

var schema = pveschema.NewEmbedded(schemaJSON)

// method returns the schema of the API method the double calls name
// ("lxc-create", ...); an unknown name is a bug in the double.
func method(name string) *pveschema.Method {
	m := schema.Method("pctdouble", name)
	if m == nil {
		panic("pctdouble: no schema for " + name)
	}
	return m
}

// validate is m.Validate with "node" always skipped: the double runs on its
// one node and the CLI never passes it.
func validate(m *pveschema.Method, params map[string]string, skip ...string) pveschema.Errors {
	errs := m.Validate(params, append([]string{"node"}, skip...)...)
	// The embedded schema is PVE 9.1's, whose entrypoint and env patterns
	// let \x0a-\x0f (newline among them) through; pve-container 6.1.8
	// fixed the range (2785bef, Config.pm [^\x00-\x08\x0a-\x1F\x7F]).
	// Older releases were stricter: no tab before 6.0.18 (59335b7), no
	// empty env value before 6.0.17 (9a5f5ce).
	for _, k := range []string{"entrypoint", "env"} {
		v, ok := params[k]
		if !ok || errs[k] != "" {
			continue
		}
		bad := atLeastContainer(6, 1, 8) && strings.ContainsAny(v, "\n\v\f\r\x0e\x0f") ||
			!atLeastContainer(6, 0, 18) && strings.Contains(v, "\t")
		if k == "env" && !atLeastContainer(6, 0, 17) {
			for _, e := range strings.Split(v, "\x00") {
				if strings.HasSuffix(e, "=") {
					bad = true
				}
			}
		}
		if bad {
			if errs == nil {
				errs = pveschema.Errors{}
			}
			errs.Add(k, "value does not match the regex pattern")
		}
	}
	return errs
}

// paramError renders "400 Parameter verification failed." with one line per
// parameter (sorted; PVE prints them in hash order), plus pct's short usage.
func paramError(e pveschema.Errors, usage string) error {
	if len(e) == 0 {
		return nil
	}
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("400 Parameter verification failed.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, e[k])
	}
	if usage != "" {
		b.WriteString("\n" + usage + "\n")
	}
	return fail("%s", b.String())
}
