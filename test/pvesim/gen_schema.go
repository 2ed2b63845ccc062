//go:build ignore

// gen_schema derives testdata/pve-api-schema.json from the official PVE 9.1
// API schema (pve-docs api-viewer/apidata.js, cut down to the paths a
// container runtime uses). The simulator embeds the result, so neither it
// nor its tests read the reference file at run time.
//
// Regenerate with (from the module root):
//
//	go run ./test/pvesim/gen_schema.go \
//	    -in /work/shared/reference/pve-api-subset.json \
//	    -out test/pvesim/testdata/pve-api-schema.json
//
// Output: {"methods": {"METHOD /path/{template}": {additionalProperties,
// properties: {name: {type, enum, pattern, minimum, maximum, minLength,
// maxLength, optional, default_key, alias, requires, format}}}}}. "format" is
// either a named format (string) or a nested property-string format with the
// same fields. For indexed parameters ("net[n]", "mp[n]", ...) it adds n_max,
// the highest index pve-container accepts (not part of the API dump; from
// PVE::LXC::Config).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// The API methods the simulator implements.
var methods = [][2]string{
	{"GET", "/version"},
	{"POST", "/access/ticket"},
	{"GET", "/cluster/nextid"},
	{"GET", "/cluster/resources"},
	{"GET", "/nodes"},
	{"GET", "/nodes/{node}/lxc"},
	{"POST", "/nodes/{node}/lxc"},
	{"GET", "/nodes/{node}/lxc/{vmid}/config"},
	{"PUT", "/nodes/{node}/lxc/{vmid}/config"},
	{"GET", "/nodes/{node}/lxc/{vmid}/status/current"},
	{"POST", "/nodes/{node}/lxc/{vmid}/status/start"},
	{"POST", "/nodes/{node}/lxc/{vmid}/status/stop"},
	{"POST", "/nodes/{node}/lxc/{vmid}/status/shutdown"},
	{"DELETE", "/nodes/{node}/lxc/{vmid}"},
	{"GET", "/nodes/{node}/tasks/{upid}/status"},
	{"GET", "/nodes/{node}/tasks/{upid}/log"},
	{"GET", "/nodes/{node}/storage"},
	{"GET", "/nodes/{node}/storage/{storage}/content"},
	{"POST", "/nodes/{node}/storage/{storage}/upload"},
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
	in := flag.String("in", "/work/shared/reference/pve-api-subset.json", "official schema subset")
	outPath := flag.String("out", "test/pvesim/testdata/pve-api-schema.json", "output file")
	flag.Parse()
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
		def, ok := api[m[1]][m[0]]
		if !ok {
			die(fmt.Errorf("missing %s %s", m[0], m[1]))
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
		key := m[0] + " " + m[1]
		res[key] = map[string]any{
			"additionalProperties": num(params["additionalProperties"]),
			"properties":           outProps,
		}
		names = append(names, key)
	}
	sort.Strings(names)
	doc := map[string]any{
		"_comment": "Derived from the PVE 9.1 API schema by test/pvesim/gen_schema.go; do not edit by hand.",
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
