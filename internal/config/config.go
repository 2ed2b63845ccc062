// Package config loads proxcage's TOML configuration: the default backend
// and the routing rules. Unknown keys are errors that name the key, so a
// typo never silently changes where containers run.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// DefaultPath is read when neither --config nor PROXCAGE_CONFIG is set. A
// missing file there means "all defaults"; a missing file named explicitly
// is an error.
const DefaultPath = "/etc/proxcage/config.toml"

// EnvVar overrides DefaultPath.
const EnvVar = "PROXCAGE_CONFIG"

// Config is the whole configuration file.
type Config struct {
	DefaultBackend string  `toml:"default_backend"`
	Routes         []Route `toml:"routes"`
	PVE            PVE     `toml:"pve"`
	// DataDir holds images and the bundles made from them
	// (default /var/lib/proxcage).
	DataDir string `toml:"data_dir"`

	// Path is where the config was read from ("" for built-in defaults).
	Path string `toml:"-"`
}

// Route is one routing rule. A rule matches when every matcher it sets
// matches; a rule with no matcher is rejected at load time.
type Route struct {
	MatchID         string `toml:"match_id"`
	MatchAnnotation string `toml:"match_annotation"`
	Backend         string `toml:"backend"`

	idRE       *regexp.Regexp
	annotKey   string
	annotValue string
}

// PVE configures the Proxmox VE backend.
type PVE struct {
	// Transport is how proxcage talks to PVE: "pct" (the local CLI on a
	// PVE node) or "api" (the REST API, from any host).
	Transport       string `toml:"transport"`
	TemplateStorage string `toml:"template_storage"` // storage with content vztmpl
	RootfsStorage   string `toml:"rootfs_storage"`   // storage with content rootdir
	Bridge          string `toml:"bridge"`
	// VMIDRange limits new VMIDs, "FIRST-LAST"; empty means anything
	// /cluster/nextid gives.
	VMIDRange       string `toml:"vmid_range"`
	AllowPrivileged bool   `toml:"allow_privileged"`
	// Features applied to every CT, e.g. "nesting=1"; a bundle annotation
	// org.proxcage.features overrides it.
	Features string `toml:"features"`
	// Timeout bounds every pct/pvesh call, e.g. "2m".
	Timeout string   `toml:"timeout"`
	Tools   PVETools `toml:"tools"`

	// The REST API transport (transport = "api").
	URL             string `toml:"url"`               // https://pve1.example:8006
	TokenID         string `toml:"token_id"`          // user@realm!tokenid
	TokenSecretFile string `toml:"token_secret_file"` // 0600 file; or $PROXCAGE_PVE_TOKEN_SECRET
	User            string `toml:"user"`              // ticket login, e.g. root@pam
	PasswordFile    string `toml:"password_file"`     // 0600 file
	Fingerprint     string `toml:"fingerprint"`       // SHA-256 of the server certificate, AB:CD:...
	CAFile          string `toml:"ca_file"`           // or a CA bundle
	Insecure        bool   `toml:"insecure"`          // skip TLS verification (warns on every call)
	Node            string `toml:"node"`              // a node name, or "auto"
	// TemplateCache is where the api transport builds templates before
	// uploading them (default /var/cache/proxcage/vztmpl).
	TemplateCache string `toml:"template_cache"`
}

// PVETools names the PVE and LXC tools; empty means look them up in PATH.
type PVETools struct {
	Pct        string `toml:"pct"`
	Pvesh      string `toml:"pvesh"`
	Pvesm      string `toml:"pvesm"`
	Pveversion string `toml:"pveversion"`
	LxcInfo    string `toml:"lxc_info"`
	LxcAttach  string `toml:"lxc_attach"`
	// CTConfigDir and LockDir are pct's own files on the node, where the
	// pct transport writes a CT's env (pct's argv cannot carry it).
	CTConfigDir string `toml:"ct_config_dir"`
	LockDir     string `toml:"lock_dir"`
	// DpkgStatus is dpkg's status file, where the pct transport reads the
	// node's pve-manager and pve-container versions (pveversion's source).
	DpkgStatus string `toml:"dpkg_status"`
}

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{DefaultBackend: "native", DataDir: "/var/lib/proxcage", PVE: PVE{
		Transport: "pct", TemplateStorage: "local", RootfsStorage: "local-lvm",
		Bridge: "vmbr0", Timeout: "2m",
	}}
}

// Resolve returns the config path to use: the flag, else the environment,
// else DefaultPath; explicit reports whether the user named it.
func Resolve(flagPath string) (path string, explicit bool) {
	if flagPath != "" {
		return flagPath, true
	}
	if p := os.Getenv(EnvVar); p != "" {
		return p, true
	}
	return DefaultPath, false
}

// Load reads and validates the config at path. When explicit is false and
// the file does not exist, the defaults are returned.
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return Default(), nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "config %s does not exist", path)
		}
		return nil, errdefs.WrapOS(errdefs.ErrInvalidArgument, err, readHint(path), "read config")
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "config %s", path)
	}
	cfg.Path = path
	return cfg, nil
}

// readHint is what to do when the config file is not readable.
func readHint(path string) string {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("proxcage runs as uid %d, which cannot read %s: run proxcage as root, or pass a config that user can read with --config FILE (or $%s)", uid, path, EnvVar)
	}
	return fmt.Sprintf("check the owner and mode of %s, or pass another with --config FILE", path)
}

// Parse decodes and validates TOML config text.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			return nil, unknownKeys(strict.Errors)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// unknownKeys names each unknown key with its line, and hints at the key
// meant: the nearest known key of the same table, or the table a known key
// belongs in, or else that table's keys.
func unknownKeys(errs []toml.DecodeError) error {
	root := reflect.TypeFor[Config]()
	var msgs, hints []string
	for i := range errs {
		key := errs[i].Key()
		row, _ := errs[i].Position()
		msgs = append(msgs, fmt.Sprintf("line %d: unknown key %s", row, strings.Join(key, ".")))
		// The first component that is not a known key is the typo
		// ("backends" in [backends.pve]).
		n := 0
		for n < len(key)-1 && tableKeys(root, key[:n+1]) != nil {
			n++
		}
		parent, last := key[:n], key[n]
		known := tableKeys(root, parent)
		switch m := errdefs.Closest(last, known); {
		case m != "":
			hints = append(hints, "did you mean "+strings.Join(append(parent[:n:n], m), ".")+"?")
		case len(parent) > 0 && slices.Contains(tableKeys(root, nil), last):
			hints = append(hints, last+" belongs at the top level, before the first [table]")
		case tableOf(root, nil, last) != "" && tableOf(root, nil, last) != strings.Join(parent, "."):
			hints = append(hints, fmt.Sprintf("%s belongs in [%s]", last, tableOf(root, nil, last)))
		default:
			hints = append(hints, fmt.Sprintf("keys of %s: %s", tableName(root, parent), strings.Join(known, ", ")))
		}
	}
	// Two unknown keys of one table would give its key list twice.
	var once []string
	for _, h := range hints {
		if !slices.Contains(once, h) {
			once = append(once, h)
		}
	}
	return &errdefs.Error{Cat: errdefs.ErrInvalidArgument, Msg: strings.Join(msgs, "; "), Hint: strings.Join(once, "; ")}
}

// tableName spells the table at path as it is written in the file.
func tableName(t reflect.Type, path []string) string {
	if len(path) == 0 {
		return "the top level"
	}
	if f, ok := fieldByKey(t, path[0]); ok && len(path) == 1 && f.Type.Kind() == reflect.Slice {
		return "[[" + path[0] + "]]"
	}
	return "[" + strings.Join(path, ".") + "]"
}

// tableKeys lists the keys of the table at path in t ([[routes]] is the
// table of one rule), or nil when path is no table of t.
func tableKeys(t reflect.Type, path []string) []string {
	for _, p := range path {
		f, ok := fieldByKey(t, p)
		if !ok {
			return nil
		}
		t = elem(f.Type)
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		if k := tomlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// tableOf returns the table below t (path so far) that has key, or "".
func tableOf(t reflect.Type, path []string, key string) string {
	for i := range t.NumField() {
		f := t.Field(i)
		k := tomlKey(f)
		if ft := elem(f.Type); k != "" && ft.Kind() == reflect.Struct {
			sub := append(slices.Clone(path), k)
			if _, ok := fieldByKey(ft, key); ok {
				return strings.Join(sub, ".")
			}
			if found := tableOf(ft, sub, key); found != "" {
				return found
			}
		}
	}
	return ""
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if tomlKey(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func tomlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if k == "-" || !f.IsExported() {
		return ""
	}
	return k
}

// elem is the type a TOML table or array of tables decodes into.
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func (c *Config) validate() error {
	if c.DefaultBackend == "" {
		return errors.New("default_backend must not be empty")
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Backend == "" {
			return fmt.Errorf("routes[%d]: backend is required", i)
		}
		if r.MatchID == "" && r.MatchAnnotation == "" {
			return fmt.Errorf("routes[%d]: set match_id or match_annotation (a rule without a matcher would catch everything; use default_backend for that)", i)
		}
		if r.MatchID != "" {
			re, err := regexp.Compile(r.MatchID)
			if err != nil {
				return fmt.Errorf("routes[%d].match_id: %w", i, err)
			}
			r.idRE = re
		}
		if r.MatchAnnotation != "" {
			k, v, ok := strings.Cut(r.MatchAnnotation, "=")
			if !ok || k == "" {
				return fmt.Errorf("routes[%d].match_annotation %q: want key=value", i, r.MatchAnnotation)
			}
			r.annotKey, r.annotValue = k, v
		}
	}
	return nil
}

// Errorf puts err in the config's context ("config PATH: ..."), as Load
// does for what it finds itself. It keeps err's category and hint.
func (c *Config) Errorf(err error) error {
	if c.Path == "" {
		return errdefs.Context(err, "built-in config", "")
	}
	return errdefs.Context(err, "config", c.Path)
}

// Backends lists every backend name the config refers to, default first.
func (c *Config) Backends() []string {
	seen := map[string]bool{c.DefaultBackend: true}
	out := []string{c.DefaultBackend}
	for _, r := range c.Routes {
		if !seen[r.Backend] {
			seen[r.Backend] = true
			out = append(out, r.Backend)
		}
	}
	return out
}

// Matches reports whether the rule selects a container with this id and
// these annotations.
func (r *Route) Matches(id string, annotations map[string]string) bool {
	if r.idRE != nil && !r.idRE.MatchString(id) {
		return false
	}
	if r.annotKey != "" {
		v, ok := annotations[r.annotKey]
		if !ok || v != r.annotValue {
			return false
		}
	}
	return true
}

// Describe renders the rule as its matchers, for `proxcage route`.
func (r *Route) Describe() string {
	var parts []string
	if r.MatchID != "" {
		parts = append(parts, fmt.Sprintf("match_id=%q", r.MatchID))
	}
	if r.MatchAnnotation != "" {
		parts = append(parts, fmt.Sprintf("match_annotation=%q", r.MatchAnnotation))
	}
	return strings.Join(parts, " ")
}
