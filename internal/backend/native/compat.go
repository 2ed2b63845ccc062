package native

import (
	"log/slog"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opencontainers/runc/libcontainer/specconv"

	"github.com/proxcage/proxcage/internal/spec"
)

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
