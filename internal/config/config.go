// Package config loads proxcage's TOML configuration: the default backend
// and the routing rules. Unknown keys are errors that name the key, so a
// typo never silently changes where containers run.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
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
			keys := make([]string, 0, len(strict.Errors))
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
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
