//go:build ignore

// gen_schema derives the parameter rules the test fixtures embed from the
// official PVE 9.1 API schema (pve-docs api-viewer/apidata.js, cut down to
// the paths a container runtime uses), so no fixture or test reads the
// reference file at run time. One generator serves both fixtures; -set
// picks which methods and how they are keyed:
//
//	go run ./test/pveschema/gen_schema.go -set pctdouble \
//	    -in /work/shared/reference/pve-api-subset.json \
//	    -out test/pctdouble/testdata/pve-lxc-schema.json
//	go run ./test/pveschema/gen_schema.go -set pvesim \
//	    -in /work/shared/reference/pve-api-subset.json \
//	    -out test/pvesim/testdata/pve-api-schema.json
//
// Per parameter it keeps: type, enum, pattern, minimum, maximum, minLength,
// maxLength, format (a named format, or the nested property-string format
// with the same fields), optional, default_key, alias, requires. Indexed
// parameters ("net[n]", "mp[n]", ...) get n_max, the highest index
// pve-container accepts (not in the API dump; from PVE::LXC::Config).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// method is one API method a fixture implements. name is the key in the
// output; empty means "METHOD /path" (pvesim), else the name the pct double
// uses, with path and method recorded beside it.
type method struct{ name, httpMethod, path string }

var sets = map[string][]method{
	"pctdouble": {
		{"lxc-create", "POST", "/nodes/{node}/lxc"},
		{"lxc-set-config", "PUT", "/nodes/{node}/lxc/{vmid}/config"},
		{"lxc-start", "POST", "/nodes/{node}/lxc/{vmid}/status/start"},
		{"lxc-stop", "POST", "/nodes/{node}/lxc/{vmid}/status/stop"},
		{"lxc-shutdown", "POST", "/nodes/{node}/lxc/{vmid}/status/shutdown"},
		{"lxc-destroy", "DELETE", "/nodes/{node}/lxc/{vmid}"},
		{"lxc-status", "GET", "/nodes/{node}/lxc/{vmid}/status/current"},
		{"lxc-config", "GET", "/nodes/{node}/lxc/{vmid}/config"},
		{"cluster-nextid", "GET", "/cluster/nextid"},
		{"cluster-resources", "GET", "/cluster/resources"},
		{"version", "GET", "/version"},
	},
	"pvesim": {
		{"", "GET", "/version"},
		{"", "POST", "/access/ticket"},
		{"", "GET", "/cluster/nextid"},
		{"", "GET", "/cluster/resources"},
		{"", "GET", "/nodes"},
		{"", "GET", "/nodes/{node}/lxc"},
		{"", "POST", "/nodes/{node}/lxc"},
		{"", "GET", "/nodes/{node}/lxc/{vmid}/config"},
		{"", "PUT", "/nodes/{node}/lxc/{vmid}/config"},
		{"", "GET", "/nodes/{node}/lxc/{vmid}/status/current"},
		{"", "POST", "/nodes/{node}/lxc/{vmid}/status/start"},
		{"", "POST", "/nodes/{node}/lxc/{vmid}/status/stop"},
		{"", "POST", "/nodes/{node}/lxc/{vmid}/status/shutdown"},
		{"", "DELETE", "/nodes/{node}/lxc/{vmid}"},
		{"", "GET", "/nodes/{node}/tasks"},
		{"", "GET", "/nodes/{node}/tasks/{upid}/status"},
		{"", "GET", "/nodes/{node}/tasks/{upid}/log"},
		{"", "GET", "/nodes/{node}/storage"},
		{"", "GET", "/nodes/{node}/storage/{storage}/content"},
		{"", "POST", "/nodes/{node}/storage/{storage}/upload"},
		{"", "DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"},
		{"", "GET", "/nodes/{node}/lxc/{vmid}/snapshot"},
		{"", "POST", "/nodes/{node}/lxc/{vmid}/snapshot"},
		{"", "GET", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}"},
		{"", "DELETE", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}"},
		{"", "POST", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback"},
		{"", "GET", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config"},
		{"", "PUT", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config"},
	},
}

// Highest index per indexed key (pve-container: MAX_LXC_NETWORKS=32,
// MAX_MOUNT_POINTS=256, MAX_DEVICES=256, MAX_UNUSED_DISKS=256).
var nMax = map[string]int{"net[n]": 31, "mp[n]": 255, "dev[n]": 255, "unused[n]": 255}

var keep = []string{"type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength",
	"optional", "default_key", "alias", "requires"}

// num turns the few numbers the dump carries as strings ("minimum": "0")
// into numbers.
func num(v any) any {
	if s, ok := v.(string); ok {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return v
}

func prop(in map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range keep {
		if v, ok := in[k]; ok {
			switch k {
			case "minimum", "maximum", "minLength", "maxLength", "optional", "default_key":
				v = num(v)
			}
			out[k] = v
		}
	}
	switch f := in["format"].(type) {
	case string:
		out["format"] = f
	case map[string]any:
		sub := map[string]any{}
		for k, v := range f {
			if m, ok := v.(map[string]any); ok {
				sub[k] = prop(m)
			}
		}
		out["format"] = sub
	}
	return out
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "gen_schema:", err)
	os.Exit(1)
}

func main() {
	set := flag.String("set", "", "pctdouble or pvesim")
	in := flag.String("in", "/work/shared/reference/pve-api-subset.json", "official schema subset")
	outPath := flag.String("out", "", "output file")
	flag.Parse()
	methods, ok := sets[*set]
	if !ok || *outPath == "" {
		die(fmt.Errorf("usage: -set pctdouble|pvesim -in REF -out FILE"))
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		die(err)
	}
	var api map[string]map[string]map[string]any
	if err := json.Unmarshal(raw, &api); err != nil {
		die(err)
	}
	res := map[string]any{}
	var names []string
	for _, m := range methods {
		def, ok := api[m.path][m.httpMethod]
		if !ok {
			die(fmt.Errorf("missing %s %s", m.httpMethod, m.path))
		}
		params, _ := def["parameters"].(map[string]any)
		props, _ := params["properties"].(map[string]any)
		outProps := map[string]any{}
		for k, v := range props {
			p := prop(v.(map[string]any))
			if n, ok := nMax[k]; ok {
				p["n_max"] = n
			}
			outProps[k] = p
		}
		entry := map[string]any{
			"additionalProperties": num(params["additionalProperties"]),
			"properties":           outProps,
		}
		key := m.httpMethod + " " + m.path
		if m.name != "" {
			key = m.name
			entry["path"], entry["method"] = m.path, m.httpMethod
		}
		res[key] = entry
		names = append(names, key)
	}
	sort.Strings(names)
	doc := map[string]any{
		"_comment": "Derived from the PVE 9.1 API schema by test/pveschema/gen_schema.go; do not edit by hand.",
		"methods":  res,
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		die(err)
	}
	if err := os.WriteFile(*outPath, append(b, '\n'), 0o644); err != nil {
		die(err)
	}
	fmt.Printf("wrote %s (%d methods)\n", *outPath, len(names))
}
