package native

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opencontainers/runc/libcontainer/specconv"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/spec"
)

// specFor returns the spec libcontainer gets for container c: a copy of
// c's (the caller's is not changed), with the paths specconv would resolve
// against the working directory (the rootfs, relative bind sources) made
// absolute against the bundle, so that nothing needs to chdir, and
// normalized (normalizeSpec).
func specFor(log *slog.Logger, c *backend.Container) (*specs.Spec, error) {
	data, err := json.Marshal(c.Spec)
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	s.Root.Path = c.Rootfs
	for i := range s.Mounts {
		if m := &s.Mounts[i]; spec.IsBind(*m) && m.Source != "" && !filepath.IsAbs(m.Source) {
			m.Source = filepath.Join(c.Bundle, m.Source)
		}
	}
	normalizeSpec(log, &s)
	return &s, nil
}

// bundleLabel is the label runc's specconv sets from its working directory:
// it is the bundle's, as runc's state reports it.
func bundleLabel(labels []string, bundle string) {
	for i, l := range labels {
		if strings.HasPrefix(l, "bundle=") {
			labels[i] = "bundle=" + bundle
		}
	}
}

// normalizeSpec smooths over places where libcontainer 1.5 is stricter than
// the runtime spec and than the runc releases engines were tested with. Each
// change keeps the container's meaning; each is logged at debug.
func normalizeSpec(log *slog.Logger, s *specs.Spec) {
	if s.Linux == nil {
		return
	}
	if allowStatxWithStat(s.Linux.Seccomp) {
		log.Debug("seccomp profile allows stat but not statx: allowing statx too (libcontainer needs it)")
	}
	// A FIFO has no device number: the spec says major/minor apply to
	// c, b and u only. libcontainer checks the created inode against them
	// and fails on a FIFO given numbers; runc 1.1 ignored them.
	for i := range s.Linux.Devices {
		d := &s.Linux.Devices[i]
		if d.Type == "p" && (d.Major != 0 || d.Minor != 0) {
			log.Debug("ignoring major:minor of a FIFO device", "path", d.Path)
			d.Major, d.Minor = 0, 0
		}
	}
	// A bind mount takes no filesystem data (mode=, size=, ...): the kernel
	// ignores it. libcontainer 1.5 refuses such a mount outright, runc 1.1
	// dropped the data; drop it, as the kernel would.
	known := specconv.KnownMountOptions()
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if !spec.IsBind(*m) {
			continue
		}
		kept := m.Options[:0:0]
		for _, o := range m.Options {
			if slices.Contains(known, o) {
				kept = append(kept, o)
			} else {
				log.Debug("ignoring filesystem data on a bind mount", "destination", m.Destination, "option", o)
			}
		}
		m.Options = kept
	}
}
