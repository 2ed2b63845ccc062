//go:build ignore

// gen_schema derives testdata/pve-lxc-schema.json from the official PVE 9.1
// API schema (pve-docs api-viewer/apidata.js, cut down to the paths a
// container runtime uses). The double embeds the result, so neither it nor
// its tests read the reference file at run time.
//
// Regenerate with (from the module root):
//
//	go run ./test/pctdouble/gen_schema.go \
//	    -in /work/shared/reference/pve-api-subset.json \
//	    -out test/pctdouble/testdata/pve-lxc-schema.json
//
// What it keeps per parameter: type, enum, pattern, minimum, maximum,
// minLength, maxLength, format (a named format, or the nested property-string
// format with the same fields), optional, default_key, alias, requires. For
// indexed parameters ("net[n]", "mp[n]", ...) it adds n_max, the highest index
// pve-container accepts (not part of the API dump; from PVE::LXC::Config).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// The API methods the double implements, keyed by the name the double uses.
var methods = []struct{ name, path, method string }{
	{"lxc-create", "/nodes/{node}/lxc", "POST"},
	{"lxc-set-config", "/nodes/{node}/lxc/{vmid}/config", "PUT"},
	{"lxc-start", "/nodes/{node}/lxc/{vmid}/status/start", "POST"},
	{"lxc-stop", "/nodes/{node}/lxc/{vmid}/status/stop", "POST"},
	{"lxc-shutdown", "/nodes/{node}/lxc/{vmid}/status/shutdown", "POST"},
	{"lxc-destroy", "/nodes/{node}/lxc/{vmid}", "DELETE"},
	{"lxc-status", "/nodes/{node}/lxc/{vmid}/status/current", "GET"},
	{"lxc-config", "/nodes/{node}/lxc/{vmid}/config", "GET"},
	{"cluster-nextid", "/cluster/nextid", "GET"},
	{"cluster-resources", "/cluster/resources", "GET"},
	{"version", "/version", "GET"},
}

// Highest index per indexed key (pve-container: MAX_LXC_NETWORKS=32,
// MAX_MOUNT_POINTS=256, MAX_DEVICES=256, MAX_UNUSED_DISKS=256).
var nMax = map[string]int{"net[n]": 31, "mp[n]": 255, "dev[n]": 255, "unused[n]": 255}

var keep = []string{"type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength",
	"optional", "default_key", "alias", "requires"}

func num(v any) any {
	// The dump has a few numbers as strings ("minimum": "0").
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

func main() {
	in := flag.String("in", "", "pve-api-subset.json")
	outPath := flag.String("out", "", "output file")
	flag.Parse()
	raw, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var api map[string]map[string]map[string]any
	if err := json.Unmarshal(raw, &api); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	res := map[string]any{}
	names := []string{}
	for _, m := range methods {
		def, ok := api[m.path][m.method]
		if !ok {
			fmt.Fprintf(os.Stderr, "missing %s %s\n", m.method, m.path)
			os.Exit(1)
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
		res[m.name] = map[string]any{
			"path":                 m.path,
			"method":               m.method,
			"additionalProperties": num(params["additionalProperties"]),
			"properties":           outProps,
		}
		names = append(names, m.name)
	}
	sort.Strings(names)
	doc := map[string]any{
		"_comment": "Derived from the PVE 9.1 API schema by gen_schema.go; do not edit by hand.",
		"methods":  res,
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(*outPath, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%v)\n", *outPath, names)
}
