// Package spec loads and validates an OCI bundle once, so every backend
// gets a spec it can trust and every bad bundle gets one precise error
// before anything is created.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// ConfigName is the bundle's configuration file.
const ConfigName = "config.json"

// Bundle is a loaded, validated bundle.
type Bundle struct {
	Path   string // absolute bundle directory
	Rootfs string // absolute rootfs directory
	Spec   *specs.Spec
}

// Load reads dir/config.json and validates it. dir may be relative; the
// returned Bundle.Path is absolute and has no symlinks resolved away (like
// runc, the bundle path in state is what the caller gave, made absolute).
func Load(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "bundle %s", dir)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "bundle %s does not exist", abs)
		}
		return nil, errdefs.WrapOS(errdefs.ErrInvalidArgument, err, accessHint(abs), "bundle %s", abs)
	}
	if !fi.IsDir() {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "bundle %s is not a directory", abs)
	}
	data, err := os.ReadFile(filepath.Join(abs, ConfigName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  fmt.Sprintf("bundle %s has no %s", abs, ConfigName),
				Hint: "generate one with `proxcage spec --bundle " + abs + "`"}
		}
		return nil, errdefs.WrapOS(errdefs.ErrInvalidArgument, err, accessHint(filepath.Join(abs, ConfigName)), "read %s", ConfigName)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "bundle %s: %s", abs, ConfigName)
	}
	b := &Bundle{Path: abs, Spec: s}
	if err := b.checkRootfs(); err != nil {
		return nil, err
	}
	return b, nil
}

// FromSpec is Load for a spec already in memory, written as dir's
// config.json by its maker (the bundle of an image container): validated
// and its rootfs resolved the same way, without reading the file back.
func FromSpec(dir string, s *specs.Spec) (*Bundle, error) {
	if err := Validate(s); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "bundle %s: %s", dir, ConfigName)
	}
	b := &Bundle{Path: dir, Spec: s}
	if err := b.checkRootfs(); err != nil {
		return nil, err
	}
	return b, nil
}

// accessHint is what to do when the bundle (or a file given with it) is
// not readable by the user proxcage runs as.
func accessHint(path string) string {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("proxcage runs as uid %d, which cannot read %s: make it readable by that user (chmod/chown), or run proxcage as root", uid, path)
	}
	return fmt.Sprintf("check the owner and mode of %s and its parent directories", path)
}

// Parse decodes config.json text and checks what every backend relies on.
// It does not touch the filesystem.
func Parse(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, describeJSONError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid JSON: trailing data after the top-level object")
	}
	if err := Validate(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

func describeJSONError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("not valid JSON (line %d): %s", line, se.Error())
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: %s is not a %s", te.Field, te.Value, te.Type)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("not valid JSON: empty file")
	}
	return fmt.Errorf("not valid JSON: %w", err)
}

// Validate checks the spec fields every backend needs.
func Validate(s *specs.Spec) error {
	if s.Version == "" {
		return errors.New("ociVersion is missing")
	}
	major, _, _ := strings.Cut(s.Version, ".")
	if major != "1" {
		return fmt.Errorf("ociVersion %q is not supported (this runtime implements 1.x, up to %s)", s.Version, specs.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is missing")
	}
	if s.Process == nil {
		return errors.New("process is missing")
	}
	return ValidateProcess(s.Process)
}

// ValidateProcess checks a process (config.json's or exec's --process).
func ValidateProcess(p *specs.Process) error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("process.args must not be empty")
	}
	if p.Cwd == "" {
		return errors.New("process.cwd must not be empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	for _, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("process.env entry %q is not KEY=VALUE", e)
		}
	}
	return nil
}

// checkRootfs resolves root.path against the bundle, refuses a relative
// path that climbs out of the bundle, and requires a directory.
func (b *Bundle) checkRootfs() error {
	p := b.Spec.Root.Path
	if !filepath.IsAbs(p) {
		clean := filepath.Clean(p)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return errdefs.New(errdefs.ErrInvalidArgument,
				"bundle %s: root.path %q is outside the bundle (a relative rootfs must stay inside it)", b.Path, p)
		}
		p = filepath.Join(b.Path, clean)
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  fmt.Sprintf("bundle %s: rootfs %s does not exist", b.Path, p),
				Hint: "unpack the image into it, or point root.path at the rootfs"}
		}
		return errdefs.WrapOS(errdefs.ErrInvalidArgument, err, accessHint(b.Path), "bundle %s: rootfs", b.Path)
	}
	if !fi.IsDir() {
		return errdefs.New(errdefs.ErrInvalidArgument, "bundle %s: rootfs %s is not a directory", b.Path, p)
	}
	// A rootfs reached through a symlink is used at its real place, as
	// runc's specconv does: a backend that walks it (pve's template) would
	// otherwise see the link, not the tree.
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return errdefs.WrapOS(errdefs.ErrInvalidArgument, err, accessHint(b.Path), "bundle %s: rootfs", b.Path)
	}
	b.Rootfs = real
	return nil
}

// LoadProcess reads a process.json for exec --process.
func LoadProcess(path string) (*specs.Process, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errdefs.WrapOS(errdefs.ErrInvalidArgument, err, accessHint(path), "process file")
	}
	var p specs.Process
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, describeJSONError(data, err), "process file %s", path)
	}
	if err := ValidateProcess(&p); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "process file %s", path)
	}
	return &p, nil
}
