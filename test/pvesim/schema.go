package pvesim

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The parameter rules come from the official PVE 9.1 API schema, reduced by
// gen_schema.go into testdata/pve-api-schema.json and embedded here. The
// validator follows PVE::JSONSchema (adapted from test/pctdouble).
//
//go:embed testdata/pve-api-schema.json
var schemaJSON []byte

type schemaProp struct {
	Type       string   `json:"type"`
	Enum       []string `json:"enum"`
	Pattern    string   `json:"pattern"`
	Minimum    *float64 `json:"minimum"`
	Maximum    *float64 `json:"maximum"`
	MinLength  *int     `json:"minLength"`
	MaxLength  *int     `json:"maxLength"`
	Optional   int      `json:"optional"`
	DefaultKey int      `json:"default_key"`
	Alias      string   `json:"alias"`
	Requires   string   `json:"requires"`
	NMax       *int     `json:"n_max"`
	// Format is either a named format (string) or a property-string format
	// (object of sub-properties).
	Format    json.RawMessage `json:"format"`
	named     string
	subformat map[string]*schemaProp
}

type schemaMethod struct {
	Properties map[string]*schemaProp `json:"properties"`
}

var (
	schemaOnce    sync.Once
	schemaMethods map[string]*schemaMethod
	schemaErr     error
)

func (p *schemaProp) init() error {
	if len(p.Format) > 0 {
		if p.Format[0] == '"' {
			if err := json.Unmarshal(p.Format, &p.named); err != nil {
				return err
			}
		} else {
			if err := json.Unmarshal(p.Format, &p.subformat); err != nil {
				return err
			}
			for _, sp := range p.subformat {
				if err := sp.init(); err != nil {
					return err
				}
			}
		}
	}
	if p.Pattern != "" {
		if _, err := compilePattern(p.Pattern); err != nil {
			return err
		}
	}
	return nil
}

func loadSchema() (map[string]*schemaMethod, error) {
	schemaOnce.Do(func() {
		var doc struct {
			Methods map[string]*schemaMethod `json:"methods"`
		}
		if err := json.Unmarshal(schemaJSON, &doc); err != nil {
			schemaErr = err
			return
		}
		for _, m := range doc.Methods {
			for _, p := range m.Properties {
				if err := p.init(); err != nil {
					schemaErr = err
					return
				}
			}
		}
		schemaMethods = doc.Methods
	})
	return schemaMethods, schemaErr
}

// schemaFor returns the schema of "METHOD /path/{template}", or nil.
func schemaFor(key string) *schemaMethod {
	ms, err := loadSchema()
	if err != nil {
		panic("pvesim: embedded schema: " + err.Error())
	}
	return ms[key]
}

var patternCache sync.Map

// compilePattern turns a PVE (Perl) pattern into an anchored Go regexp, as
// PVE::JSONSchema matches m/^$pattern$/.
func compilePattern(p string) (*regexp.Regexp, error) {
	if re, ok := patternCache.Load(p); ok {
		return re.(*regexp.Regexp), nil
	}
	g := strings.ReplaceAll(p, "(?^:", "(?:")
	g = strings.ReplaceAll(g, `\0`, `\x00`)
	re, err := regexp.Compile(`^(?:` + g + `)$`)
	if err != nil {
		return nil, err
	}
	patternCache.Store(p, re)
	return re, nil
}

var indexedRE = regexp.MustCompile(`^([a-z]+)(\d+)$`)

// lookup finds the schema of a parameter, mapping "net0" to "net[n]".
func (m *schemaMethod) lookup(name string) *schemaProp {
	if p, ok := m.Properties[name]; ok && p.NMax == nil {
		return p
	}
	if mm := indexedRE.FindStringSubmatch(name); mm != nil {
		if p, ok := m.Properties[mm[1]+"[n]"]; ok {
			n, _ := strconv.Atoi(mm[2])
			if p.NMax == nil || n <= *p.NMax {
				return p
			}
		}
	}
	return nil
}

// paramErrors collects per-parameter messages (PVE keeps one per path).
type paramErrors map[string]string

func (e paramErrors) add(path, msg string) {
	if _, ok := e[path]; !ok {
		e[path] = msg
	}
}

const additionalPropMsg = "property is not defined in schema and the schema does not allow additional properties"

// validate checks params against the method's schema the way
// PVE::JSONSchema::validate does, and normalises values in place (booleans
// to 1/0, property strings to PVE's canonical order). skip lists parameters
// the caller handles itself (e.g. the CLI-only "verbose").
func (m *schemaMethod) validate(params map[string]string, skip ...string) paramErrors {
	errs := paramErrors{}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	for name, val := range params {
		if skipped[name] {
			continue
		}
		p := m.lookup(name)
		if p == nil {
			errs.add(name, additionalPropMsg)
			continue
		}
		if nv, ok := checkProp(name, p, val, errs); ok {
			params[name] = nv
		}
	}
	for name, p := range m.Properties {
		if p.Optional == 0 && !skipped[name] && p.NMax == nil {
			if _, ok := params[name]; !ok {
				errs.add(name, "property is missing and it is not optional")
			}
		}
	}
	for name, p := range m.Properties {
		if p.Requires != "" {
			if _, ok := params[name]; ok {
				if _, ok := params[p.Requires]; !ok {
					errs.add(p.Requires, fmt.Sprintf("missing property - '%s' requires this property", name))
				}
			}
		}
	}
	return errs
}

var (
	integerRE = regexp.MustCompile(`^-?\d+$`)
	numberRE  = regexp.MustCompile(`^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$`)
)

// parseBoolean is PVE::JSONSchema::parse_boolean.
func parseBoolean(v string) (string, bool) {
	switch strings.ToLower(v) {
	case "1", "on", "yes", "true":
		return "1", true
	case "0", "off", "no", "false":
		return "0", true
	}
	return v, false
}

// checkProp validates one value; it returns the normalised value and whether
// the value is valid.
func checkProp(path string, p *schemaProp, val string, errs paramErrors) (string, bool) {
	switch p.Type {
	case "boolean":
		b, ok := parseBoolean(val)
		if !ok {
			errs.add(path, fmt.Sprintf("type check ('boolean') failed - got '%s'", val))
			return val, false
		}
		val = b
	case "integer":
		if !integerRE.MatchString(val) {
			errs.add(path, fmt.Sprintf("type check ('integer') failed - got '%s'", val))
			return val, false
		}
	case "number":
		if !numberRE.MatchString(val) {
			errs.add(path, fmt.Sprintf("type check ('number') failed - got '%s'", val))
			return val, false
		}
	}
	if p.subformat != nil {
		nv, err := parsePropertyString(path, p.subformat, val, errs)
		if err != "" {
			errs.add(path, "invalid format - "+err)
			return val, false
		}
		val = nv
	} else if p.named != "" {
		if msg := checkNamedFormat(p.named, val); msg != "" {
			errs.add(path, "invalid format - "+msg)
			return val, false
		}
	}
	if p.Type == "string" || p.Type == "" {
		if p.MaxLength != nil && len(val) > *p.MaxLength {
			errs.add(path, fmt.Sprintf("value may only be %d characters long", *p.MaxLength))
			return val, false
		}
		if p.MinLength != nil && len(val) < *p.MinLength {
			errs.add(path, fmt.Sprintf("value must be at least %d characters long", *p.MinLength))
			return val, false
		}
	}
	if p.Type == "integer" || p.Type == "number" {
		f, _ := strconv.ParseFloat(val, 64)
		if p.Maximum != nil && f > *p.Maximum {
			errs.add(path, fmt.Sprintf("value must have a maximum value of %s", fmtNum(*p.Maximum)))
			return val, false
		}
		if p.Minimum != nil && f < *p.Minimum {
			errs.add(path, fmt.Sprintf("value must have a minimum value of %s", fmtNum(*p.Minimum)))
			return val, false
		}
	}
	if len(p.Enum) > 0 {
		found := false
		for _, e := range p.Enum {
			if e == val {
				found = true
			}
		}
		if !found {
			errs.add(path, fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", val, strings.Join(p.Enum, ", ")))
			return val, false
		}
	}
	if p.Pattern != "" {
		re, _ := compilePattern(p.Pattern)
		if !re.MatchString(val) {
			errs.add(path, "value does not match the regex pattern")
			return val, false
		}
	}
	return val, true
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parsePropertyString is PVE::JSONSchema::parse_property_string followed by
// the object check; it returns the canonical re-printed string, or a
// top-level error text ("format error" when sub-keys failed, whose own
// messages go to errs as "path.key").
func parsePropertyString(path string, format map[string]*schemaProp, data string, errs paramErrors) (string, string) {
	res := map[string]string{}
	defaultKey := ""
	for k, p := range format {
		if p.DefaultKey != 0 {
			defaultKey = k
		}
	}
	for _, part := range strings.Split(data, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if k, v, ok := strings.Cut(part, "="); ok && k != "" && v != "" {
			if _, dup := res[k]; dup {
				return "", "duplicate key in comma-separated list property: " + k
			}
			if p := format[k]; p != nil && p.Alias != "" {
				k = p.Alias
			}
			res[k] = v
		} else if !strings.Contains(part, "=") {
			if defaultKey == "" {
				return "", "value without key, but schema does not define a default key"
			}
			if _, dup := res[defaultKey]; dup {
				return "", "duplicate key in comma-separated list property: " + defaultKey
			}
			res[defaultKey] = part
		} else {
			return "", "missing value for key in comma-separated list property: " + part
		}
	}
	sub := paramErrors{}
	for k, v := range res {
		p := format[k]
		if p == nil {
			sub.add(path+"."+k, additionalPropMsg)
			continue
		}
		if nv, ok := checkProp(path+"."+k, p, v, sub); ok {
			res[k] = nv
		}
	}
	for k, p := range format {
		if p.Optional == 0 {
			if _, ok := res[k]; !ok {
				sub.add(path+"."+k, "property is missing and it is not optional")
			}
		}
	}
	if len(sub) > 0 {
		for k, v := range sub {
			errs.add(k, v)
		}
		return "", "format error"
	}
	return printPropertyString(format, res), ""
}

// printPropertyString is PVE::JSONSchema::print_property_string: the default
// key's value first (without "key="), then required keys, then the rest,
// each group sorted.
func printPropertyString(format map[string]*schemaProp, data map[string]string) string {
	var parts []string
	done := map[string]bool{}
	for k, p := range format {
		if p.DefaultKey != 0 {
			if v, ok := data[k]; ok {
				parts = append(parts, v)
				done[k] = true
			}
		}
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, required := range []bool{true, false} {
		for _, k := range keys {
			if done[k] {
				continue
			}
			p := format[k]
			if (p != nil && p.Optional == 0) != required {
				continue
			}
			parts = append(parts, k+"="+data[k])
			done[k] = true
		}
	}
	return strings.Join(parts, ",")
}

// parsePropString parses an already validated property string into a map
// (for the double's own use).
func parsePropString(format map[string]*schemaProp, data string) map[string]string {
	res := map[string]string{}
	defaultKey := ""
	for k, p := range format {
		if p.DefaultKey != 0 {
			defaultKey = k
		}
	}
	for _, part := range strings.Split(data, ",") {
		if part == "" {
			continue
		}
		if k, v, ok := strings.Cut(part, "="); ok {
			res[k] = v
		} else if defaultKey != "" {
			res[defaultKey] = part
		}
	}
	return res
}

var (
	dnsNameRE   = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`)
	storageIDRE = regexp.MustCompile(`^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$`)
	tagRE       = regexp.MustCompile(`^(?i:[a-z0-9_][a-z0-9_\-+.]*)$`)
	macRE       = regexp.MustCompile(`^(?i:[a-f0-9][02468ace](?::[a-f0-9]{2}){5})$`)
	configIDRE  = regexp.MustCompile(`^[a-z][a-z0-9_\-]*\d*$`)
	volumeIDRE  = regexp.MustCompile(`^(?i:[a-z][a-z0-9\-_.]*[a-z0-9]):.+$`)
	diskSizeRE  = regexp.MustCompile(`^\d+(?:\.\d+)?[KMGT]?$`)
	poolIDRE    = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)
	startupRE   = regexp.MustCompile(`^(?:(?:order=)?\d+)?(?:,?(?:up|down)=\d+)*$`)
)

// checkNamedFormat implements the PVE named formats the double meets;
// unknown formats are accepted. It returns the error text or "".
func checkNamedFormat(name, v string) string {
	switch name {
	case "pve-vmid":
		if !regexp.MustCompile(`^[1-9][0-9]{2,8}$`).MatchString(v) {
			return "value does not look like a valid VM ID"
		}
	case "dns-name", "pve-node":
		if !dnsNameRE.MatchString(v) {
			return "value does not look like a valid DNS name"
		}
	case "dns-name-list":
		for _, n := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
			if !dnsNameRE.MatchString(n) {
				return "value does not look like a valid DNS name"
			}
		}
	case "pve-storage-id":
		if !storageIDRE.MatchString(v) {
			return fmt.Sprintf("storage ID '%s' contains illegal characters", v)
		}
	case "pve-tag-list":
		for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
			if !tagRE.MatchString(t) {
				return fmt.Sprintf("invalid characters in tag '%s'", t)
			}
		}
	case "ipv4":
		if ip := net.ParseIP(v); ip == nil || ip.To4() == nil || strings.Contains(v, ":") {
			return "value does not look like a valid IPv4 address"
		}
	case "ipv6":
		if ip := net.ParseIP(v); ip == nil || !strings.Contains(v, ":") {
			return "value does not look like a valid IPv6 address"
		}
	case "pve-ipv4-config":
		if v == "dhcp" || v == "manual" {
			return ""
		}
		if ip, _, err := net.ParseCIDR(v); err != nil || ip.To4() == nil {
			return "value does not look like a valid ipv4 network configuration"
		}
	case "pve-ipv6-config":
		if v == "dhcp" || v == "manual" || v == "auto" {
			return ""
		}
		if ip, _, err := net.ParseCIDR(v); err != nil || ip.To4() != nil {
			return "value does not look like a valid ipv6 network configuration"
		}
	case "mac-addr":
		if !macRE.MatchString(v) {
			return "value does not look like a valid unicast MAC address"
		}
	case "pve-configid":
		if !configIDRE.MatchString(v) {
			return fmt.Sprintf("invalid configuration ID '%s'", v)
		}
	case "pve-configid-list":
		for _, id := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			if !configIDRE.MatchString(id) {
				return fmt.Sprintf("invalid configuration ID '%s'", id)
			}
		}
	case "pve-volume-id":
		if !volumeIDRE.MatchString(v) {
			return fmt.Sprintf("unable to parse volume ID '%s'", v)
		}
	case "disk-size":
		if !diskSizeRE.MatchString(v) {
			return "unable to parse size"
		}
	case "pve-lxc-mp-string":
		if v == "" || strings.ContainsAny(v, "\x00\n") {
			return "invalid mount point string"
		}
	case "pve-lxc-dev-string":
		if !strings.HasPrefix(v, "/dev/") {
			return "not a valid device path"
		}
	case "pve-poolid":
		if !poolIDRE.MatchString(v) {
			return "invalid pool ID"
		}
	case "pve-startup-order":
		if !startupRE.MatchString(v) {
			return "unable to parse startup options"
		}
	}
	return ""
}
