// Package imagespec turns an OCI image's config into an OCI runtime spec,
// as podman and umoci do: args are Entrypoint+Cmd, with the image's Env,
// WorkingDir and User (resolved against the image's own /etc/passwd and
// /etc/group), StopSignal and labels as annotations (but none under
// OperatorPrefix), and the command-line overrides a podman user expects
// (--env, --workdir, --user, a command, --annotation).
// It is pure but for reading those two files inside the rootfs.
package imagespec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations set on a container made from an image.
const (
	AnnotationImageName   = "org.opencontainers.image.ref.name" // as named by the user
	AnnotationImageDigest = "org.proxcage.image.digest"         // manifest digest
	AnnotationStopSignal  = "org.opencontainers.image.stopSignal"
)

// OperatorPrefix is the annotation namespace proxcage acts on: the backend
// (org.proxcage.backend), the VMID, privileges, features, mounts, network.
// Only the operator sets these (the bundle they wrote, --annotation, config
// rules): an image's labels under it are dropped, so an image pulled from
// anywhere cannot choose where it runs or with what rights.
const OperatorPrefix = "org.proxcage."

// IgnoredLabels lists the labels of cfg that Generate drops (under
// OperatorPrefix), sorted, for a log line.
func IgnoredLabels(cfg *v1.ConfigFile) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	for k := range cfg.Config.Labels {
		if strings.HasPrefix(k, OperatorPrefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// DefaultPath is set when the image's Env has no PATH (as podman does).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Overrides are the command line's changes to the image's defaults.
type Overrides struct {
	// Args replaces the image's Cmd (Entrypoint stays), like the command
	// after the image in `podman run IMAGE CMD...`.
	Args       []string
	Entrypoint []string // replaces Entrypoint when non-nil (and drops Cmd unless Args)
	Env        []string // KEY=VALUE, added or replacing the image's
	Workdir    string
	User       string // user[:group], names or numbers
	Tty        bool
	Hostname   string
	// Annotations are the operator's (--annotation KEY=VALUE): set last,
	// over the image's labels, and the only way to set OperatorPrefix keys.
	Annotations map[string]string
}

// Image is what Generate needs to know about the image.
type Image struct {
	Name   string
	Digest string
	Config *v1.ConfigFile
}

// Generate builds the spec for a container of img whose root filesystem
// is at rootfs (the spec's root.path is left as "rootfs": the caller
// places it). Only the names in /etc/passwd and /etc/group are read, each
// resolved inside rootfs so that a hostile image's symlinks cannot point
// them at the host's files.
func Generate(img Image, rootfs string, o Overrides) (*specs.Spec, error) {
	var base *v1.Config
	if img.Config != nil {
		base = &img.Config.Config
	}
	cfg, err := Merge(base, o)
	if err != nil {
		return nil, err
	}
	s := specconv.Example()
	s.Root.Readonly = false
	s.Process.Terminal = o.Tty
	s.Hostname = o.Hostname
	s.Process.Args = append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	s.Process.Env = cfg.Env
	s.Process.Cwd = "/"
	if cfg.WorkingDir != "" {
		s.Process.Cwd = cfg.WorkingDir
	}
	u, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	s.Process.User = u
	if u.UID != 0 {
		// runc's example grants the default capabilities to root only in
		// effect; a non-root process keeps them bounded, not effective.
		s.Process.Capabilities.Effective = nil
		s.Process.Capabilities.Permitted = nil
	}

	ann := map[string]string{}
	keys := make([]string, 0, len(cfg.Labels))
	for k := range cfg.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, OperatorPrefix) {
			ann[k] = cfg.Labels[k]
		}
	}
	if cfg.StopSignal != "" {
		ann[AnnotationStopSignal] = cfg.StopSignal
	}
	if img.Name != "" {
		ann[AnnotationImageName] = img.Name
	}
	for k, v := range o.Annotations {
		ann[k] = v
	}
	if img.Digest != "" {
		// Not the operator's either: the store's release of the image
		// reads it.
		ann[AnnotationImageDigest] = img.Digest
	}
	s.Annotations = ann
	return s, nil
}

// Merge applies the process overrides of o (command, entrypoint, env,
// working directory, user) to the image config c (nil: none) and returns
// the result as an image config would say it: what Generate runs, and
// what a derived image config carries to a runtime that maps the config
// itself (PVE's OCI templates), so the two cannot disagree. The Env is
// the merged one, with PATH defaulted and TERM for a tty; the WorkingDir
// is absolute and clean. The other fields are c's.
func Merge(c *v1.Config, o Overrides) (v1.Config, error) {
	var cfg v1.Config
	if c != nil {
		cfg = *c.DeepCopy()
	}
	if o.Entrypoint != nil {
		cfg.Entrypoint, cfg.Cmd = o.Entrypoint, nil
	}
	if len(o.Args) > 0 {
		cfg.Cmd = o.Args
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return v1.Config{}, errors.New("the image has no command (no Entrypoint or Cmd): give one after --")
	}
	env, err := mergeEnv(cfg.Env, o.Env)
	if err != nil {
		return v1.Config{}, err
	}
	if o.Tty && !hasKey(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	cfg.Env = env
	if o.Workdir != "" {
		cfg.WorkingDir = o.Workdir
	}
	if cfg.WorkingDir != "" {
		if !path.IsAbs(cfg.WorkingDir) {
			return v1.Config{}, fmt.Errorf("working directory %q is not absolute", cfg.WorkingDir)
		}
		cfg.WorkingDir = path.Clean(cfg.WorkingDir)
	}
	if o.User != "" {
		cfg.User = o.User
	}
	return cfg, nil
}

// mergeEnv applies overrides to the image's Env by key; PATH defaults.
func mergeEnv(image, over []string) ([]string, error) {
	out := append([]string{}, image...)
	for _, kv := range over {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	if !hasKey(out, "PATH") {
		out = append([]string{DefaultPath}, out...)
	}
	return out, nil
}

func hasKey(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

// resolveUser maps "user[:group]" to ids with the image's passwd and group
// files, as runc does at exec time; an empty spec is root.
func resolveUser(rootfs, spec string) (specs.User, error) {
	open := func(name string) (io.ReadCloser, error) {
		p, err := securejoin.SecureJoin(rootfs, name)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return f, err
	}
	passwd, err := open("/etc/passwd")
	if err != nil {
		return specs.User{}, fmt.Errorf("read the image's /etc/passwd: %w", err)
	}
	group, err := open("/etc/group")
	if err != nil {
		if passwd != nil {
			passwd.Close()
		}
		return specs.User{}, fmt.Errorf("read the image's /etc/group: %w", err)
	}
	var pr, gr io.Reader
	if passwd != nil {
		defer passwd.Close()
		pr = passwd
	}
	if group != nil {
		defer group.Close()
		gr = group
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, pr, gr)
	if err != nil {
		return specs.User{}, fmt.Errorf("user %q: %w", spec, err)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	for _, g := range eu.Sgids {
		if uint32(g) != u.GID {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}
