// Package pveschema validates API parameters against a reduced PVE API
// schema the way PVE::JSONSchema (pve-common) does: type checks, named and
// property-string formats, length, minimum/maximum, enum and anchored
// patterns, with PVE's exact error texts. The test doubles (test/pctdouble,
// test/pvesim) each embed their own schema file and load it with Load.
package pveschema

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Prop is the schema of one parameter (or of one key of a property string).
type Prop struct {
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
	// NMax is set on indexed parameters ("net[n]"): the highest index.
	NMax *int `json:"n_max"`
	// Format is either a named format (string) or a property-string format
	// (object of sub-properties); Load decodes it into NamedFormat or
	// PropertyFormat.
	Format json.RawMessage `json:"format"`
	// NamedFormat is the named format ("pve-vmid", "dns-name", ...), if any.
	NamedFormat string `json:"-"`
	// PropertyFormat holds the sub-properties of a property-string value
	// ("name=eth0,bridge=vmbr0"), if any.
	PropertyFormat map[string]*Prop `json:"-"`
}

// Method is the parameter schema of one API method.
type Method struct {
	// Path and HTTPMethod are set only when the schema file records them
	// (test/pctdouble's does; test/pvesim keys its methods by them instead).
	Path       string           `json:"path"`
	HTTPMethod string           `json:"method"`
	Properties map[string]*Prop `json:"properties"`
}

func (p *Prop) init() error {
	if len(p.Format) > 0 {
		if p.Format[0] == '"' {
			if err := json.Unmarshal(p.Format, &p.NamedFormat); err != nil {
				return err
			}
		} else {
			if err := json.Unmarshal(p.Format, &p.PropertyFormat); err != nil {
				return err
			}
			for _, sp := range p.PropertyFormat {
				if err := sp.init(); err != nil {
					return err
				}
			}
		}
	}
	if p.Pattern != "" {
		if _, err := CompilePattern(p.Pattern); err != nil {
			return err
		}
	}
	return nil
}

// Load decodes a schema file of the shape {"methods": {NAME: {"properties":
// {...}}}}, resolves formats and checks that every pattern compiles. It
// returns the methods by name.
func Load(data []byte) (map[string]*Method, error) {
	var doc struct {
		Methods map[string]*Method `json:"methods"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	for _, m := range doc.Methods {
		for _, p := range m.Properties {
			if err := p.init(); err != nil {
				return nil, err
			}
		}
	}
	return doc.Methods, nil
}

var patternCache sync.Map

// CompilePattern turns a PVE (Perl) pattern into an anchored Go regexp, as
// PVE::JSONSchema matches m/^$pattern$/.
func CompilePattern(p string) (*regexp.Regexp, error) {
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

// IndexedNameRE matches an indexed parameter name ("net0"), capturing the
// prefix and the index.
var IndexedNameRE = regexp.MustCompile(`^([a-z]+)(\d+)$`)

// Lookup finds the schema of a parameter, mapping "net0" to "net[n]" (within
// n_max); it returns nil for a parameter the method does not define.
func (m *Method) Lookup(name string) *Prop {
	if p, ok := m.Properties[name]; ok && p.NMax == nil {
		return p
	}
	if mm := IndexedNameRE.FindStringSubmatch(name); mm != nil {
		if p, ok := m.Properties[mm[1]+"[n]"]; ok {
			n, _ := strconv.Atoi(mm[2])
			if p.NMax == nil || n <= *p.NMax {
				return p
			}
		}
	}
	return nil
}

// Errors collects per-parameter messages (PVE keeps one per path).
type Errors map[string]string

// Add records msg for path unless path already has a message.
func (e Errors) Add(path, msg string) {
	if _, ok := e[path]; !ok {
		e[path] = msg
	}
}

// AdditionalPropMsg is PVE's message for a parameter the schema does not
// define.
const AdditionalPropMsg = "property is not defined in schema and the schema does not allow additional properties"

// Validate checks params against the method's schema the way
// PVE::JSONSchema::validate does, and normalises values in place (booleans
// to 1/0, property strings to PVE's canonical order). skip lists parameters
// the caller handles itself (e.g. the CLI-only "verbose").
func (m *Method) Validate(params map[string]string, skip ...string) Errors {
	errs := Errors{}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	for name, val := range params {
		if skipped[name] {
			continue
		}
		p := m.Lookup(name)
		if p == nil {
			errs.Add(name, AdditionalPropMsg)
			continue
		}
		if nv, ok := checkProp(name, p, val, errs); ok {
			params[name] = nv
		}
	}
	for name, p := range m.Properties {
		if p.Optional == 0 && !skipped[name] && p.NMax == nil {
			if _, ok := params[name]; !ok {
				errs.Add(name, "property is missing and it is not optional")
			}
		}
	}
	for name, p := range m.Properties {
		if p.Requires != "" {
			if _, ok := params[name]; ok {
				if _, ok := params[p.Requires]; !ok {
					errs.Add(p.Requires, fmt.Sprintf("missing property - '%s' requires this property", name))
				}
			}
		}
	}
	return errs
}

var (
	integerRE = regexp.MustCompile(`^-?\d+$`)
	// NumberRE matches what PVE accepts as a "number".
	NumberRE = regexp.MustCompile(`^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$`)
)

// ParseBoolean is PVE::JSONSchema::parse_boolean: it returns "1" or "0" and
// true for the accepted forms (1/on/yes/true, 0/off/no/false, any case), or
// v and false.
func ParseBoolean(v string) (string, bool) {
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
func checkProp(path string, p *Prop, val string, errs Errors) (string, bool) {
	switch p.Type {
	case "boolean":
		b, ok := ParseBoolean(val)
		if !ok {
			errs.Add(path, fmt.Sprintf("type check ('boolean') failed - got '%s'", val))
			return val, false
		}
		val = b
	case "integer":
		if !integerRE.MatchString(val) {
			errs.Add(path, fmt.Sprintf("type check ('integer') failed - got '%s'", val))
			return val, false
		}
	case "number":
		if !NumberRE.MatchString(val) {
			errs.Add(path, fmt.Sprintf("type check ('number') failed - got '%s'", val))
			return val, false
		}
	}
	if p.PropertyFormat != nil {
		nv, err := parsePropertyString(path, p.PropertyFormat, val, errs)
		if err != "" {
			errs.Add(path, "invalid format - "+err)
			return val, false
		}
		val = nv
	} else if p.NamedFormat != "" {
		if msg := CheckNamedFormat(p.NamedFormat, val); msg != "" {
			errs.Add(path, "invalid format - "+msg)
			return val, false
		}
	}
	if p.Type == "string" || p.Type == "" {
		if p.MaxLength != nil && len(val) > *p.MaxLength {
			errs.Add(path, fmt.Sprintf("value may only be %d characters long", *p.MaxLength))
			return val, false
		}
		if p.MinLength != nil && len(val) < *p.MinLength {
			errs.Add(path, fmt.Sprintf("value must be at least %d characters long", *p.MinLength))
			return val, false
		}
	}
	if p.Type == "integer" || p.Type == "number" {
		f, _ := strconv.ParseFloat(val, 64)
		if p.Maximum != nil && f > *p.Maximum {
			errs.Add(path, fmt.Sprintf("value must have a maximum value of %s", fmtNum(*p.Maximum)))
			return val, false
		}
		if p.Minimum != nil && f < *p.Minimum {
			errs.Add(path, fmt.Sprintf("value must have a minimum value of %s", fmtNum(*p.Minimum)))
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
			errs.Add(path, fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", val, strings.Join(p.Enum, ", ")))
			return val, false
		}
	}
	if p.Pattern != "" {
		re, _ := CompilePattern(p.Pattern)
		if !re.MatchString(val) {
			errs.Add(path, "value does not match the regex pattern")
			return val, false
		}
	}
	return val, true
}

// fmtNum prints a schema bound as PVE does (no trailing ".0").
func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parsePropertyString is PVE::JSONSchema::parse_property_string followed by
// the object check; it returns the canonical re-printed string, or a
// top-level error text ("format error" when sub-keys failed, whose own
// messages go to errs as "path.key").
func parsePropertyString(path string, format map[string]*Prop, data string, errs Errors) (string, string) {
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
	sub := Errors{}
	for k, v := range res {
		p := format[k]
		if p == nil {
			sub.Add(path+"."+k, AdditionalPropMsg)
			continue
		}
		if nv, ok := checkProp(path+"."+k, p, v, sub); ok {
			res[k] = nv
		}
	}
	for k, p := range format {
		if p.Optional == 0 {
			if _, ok := res[k]; !ok {
				sub.Add(path+"."+k, "property is missing and it is not optional")
			}
		}
	}
	if len(sub) > 0 {
		for k, v := range sub {
			errs.Add(k, v)
		}
		return "", "format error"
	}
	return PrintPropertyString(format, res), ""
}

// PrintPropertyString is PVE::JSONSchema::print_property_string: the default
// key's value first (without "key="), then required keys, then the rest,
// each group sorted.
func PrintPropertyString(format map[string]*Prop, data map[string]string) string {
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

// SplitPropertyString splits an already validated property string into a
// map (keys without "key=" go to the default key); it checks nothing.
func SplitPropertyString(format map[string]*Prop, data string) map[string]string {
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
	configIDRE  = regexp.MustCompile(`^(?i:[a-z][a-z0-9_-]+)$`) // JSONSchema.pm $CONFIGID_RE, anchored as pve_verify_configid
	volumeIDRE  = regexp.MustCompile(`^(?i:[a-z][a-z0-9\-_.]*[a-z0-9]):.+$`)
	diskSizeRE  = regexp.MustCompile(`^\d+(?:\.\d+)?[KMGT]?$`)
	poolIDRE    = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)
	startupRE   = regexp.MustCompile(`^(?:(?:order=)?\d+)?(?:,?(?:up|down)=\d+)*$`)
)

// CheckNamedFormat implements the PVE named formats the doubles meet;
// unknown formats are accepted. It returns the error text or "".
func CheckNamedFormat(name, v string) string {
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

// UniqueTags is what PVE stores for a guest's tags: pve-guest-common
// src/PVE/GuestHelpers.pm get_unique_tags (called from pve-container
// src/PVE/LXC/Config.pm update_pct_config for 'tags'; read at
// pve-guest-common 6.0.2, pve-container 6.1.10) with datacenter.cfg's
// default tag-style (not case-sensitive, ordering not 'config'): split on
// ',', ';' and white space (pve-common ParseUtils::split_list), lower-cased,
// sorted, duplicates dropped, joined with ';'.
func UniqueTags(tags string) string {
	var out []string
	seen := map[string]bool{}
	for _, t := range strings.FieldsFunc(tags, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' }) {
		t = strings.ToLower(t)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ";")
}

// Embedded is the schema a fixture embeds: its files are loaded once, on
// first use, and merged (a later file adds methods or replaces them).
type Embedded struct {
	files   [][]byte
	once    sync.Once
	methods map[string]*Method
	err     error
}

// NewEmbedded is the schema made of files.
func NewEmbedded(files ...[]byte) *Embedded { return &Embedded{files: files} }

// Methods returns every method by name.
func (e *Embedded) Methods() (map[string]*Method, error) {
	e.once.Do(func() {
		e.methods = map[string]*Method{}
		for _, f := range e.files {
			ms, err := Load(f)
			if err != nil {
				e.err = err
				return
			}
			for k, m := range ms {
				e.methods[k] = m
			}
		}
	})
	return e.methods, e.err
}

// Method returns the method named key, nil when there is none. An
// embedded schema that does not load is a bug of the fixture who: it
// panics.
func (e *Embedded) Method(who, key string) *Method {
	ms, err := e.Methods()
	if err != nil {
		panic(who + ": embedded schema: " + err.Error())
	}
	return ms[key]
}
