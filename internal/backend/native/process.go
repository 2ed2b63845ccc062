package native

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
)

// newProcess converts an OCI process into a libcontainer one. It mirrors
// runc's own newProcess (package main in runc, so not importable), including
// the rlimits that specconv leaves to the caller.
func newProcess(p *specs.Process) (*libcontainer.Process, error) {
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		Label:           p.SelinuxLabel,
		NoNewPrivileges: &p.NoNewPrivileges,
		AppArmorProfile: p.ApparmorProfile,
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
	}
	if p.ConsoleSize != nil {
		lp.ConsoleWidth = uint16(p.ConsoleSize.Width)
		lp.ConsoleHeight = uint16(p.ConsoleSize.Height)
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding:    c.Bounding,
			Effective:   c.Effective,
			Inheritable: c.Inheritable,
			Permitted:   c.Permitted,
			Ambient:     c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		r, err := convertRlimit(rl)
		if err != nil {
			return nil, err
		}
		lp.Rlimits = append(lp.Rlimits, r)
	}
	aff, err := configs.ConvertCPUAffinity(p.ExecCPUAffinity)
	if err != nil {
		return nil, err
	}
	lp.CPUAffinity = aff
	return lp, nil
}

var rlimitTypes = map[string]int{
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
}

func convertRlimit(rl specs.POSIXRlimit) (configs.Rlimit, error) {
	t, ok := rlimitTypes[rl.Type]
	if !ok {
		return configs.Rlimit{}, fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
	}
	if rl.Soft > rl.Hard {
		return configs.Rlimit{}, fmt.Errorf("process.rlimits: %s soft limit %d is above hard limit %d", rl.Type, rl.Soft, rl.Hard)
	}
	return configs.Rlimit{Type: t, Hard: rl.Hard, Soft: rl.Soft}, nil
}

// takeAddressSpaceLimit removes RLIMIT_AS from the rlimits libcontainer's
// init applies to itself. The init is a Go program that reserves more than a
// GiB of address space before it has loaded the seccomp filter, so a
// container asking for, say, RLIMIT_AS=1GiB could never start ("error
// adding seccomp filter rule: cannot allocate memory"). The limit is set from
// outside with prlimit(2) once the init is created, before the user program
// is exec'd, which is what the spec requires of it.
func takeAddressSpaceLimit(p *libcontainer.Process) *configs.Rlimit {
	for i, rl := range p.Rlimits {
		if rl.Type == unix.RLIMIT_AS {
			p.Rlimits = append(p.Rlimits[:i:i], p.Rlimits[i+1:]...)
			return &rl
		}
	}
	return nil
}

func applyAddressSpaceLimit(p *libcontainer.Process, rl *configs.Rlimit) error {
	if rl == nil {
		return nil
	}
	pid, err := p.Pid()
	if err != nil {
		return err
	}
	lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, &lim, nil); err != nil {
		return fmt.Errorf("set RLIMIT_AS on init %d: %w", pid, err)
	}
	return nil
}
