//go:build seccomp

package lxc

import (
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

const seccompBuilt = true

// compileSeccomp turns an OCI seccomp profile into a BPF program (the
// kernel's sock_filter array), which the stand-in loads right before it
// execs the container's process, where runc loads it. LXC's own
// lxc.seccomp.profile is loaded before LXC's and init.lxc's setup, so a
// strict allowlist breaks the start itself.
func compileSeccomp(s *specs.LinuxSeccomp, out *os.File) error {
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return fmt.Errorf("defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return err
	}
	defer f.Release()
	// The filter must not set no_new_privs itself: that is the spec's call
	// (lxc.no_new_privs), as with runc.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return err
	}
	for _, a := range s.Architectures {
		arch, err := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
		if err != nil {
			return fmt.Errorf("architecture %s: %w", a, err)
		}
		if err := f.AddArch(arch); err != nil {
			return fmt.Errorf("architecture %s: %w", a, err)
		}
	}
	for i, rule := range s.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		if act == def {
			continue // libseccomp refuses rules that repeat the default
		}
		var conds []libseccomp.ScmpCondition
		for _, a := range rule.Args {
			op, err := compareOp(a.Op)
			if err != nil {
				return fmt.Errorf("syscalls[%d]: %w", i, err)
			}
			vals := []uint64{a.Value}
			if a.Op == specs.OpMaskedEqual {
				vals = append(vals, a.ValueTwo)
			}
			c, err := libseccomp.MakeCondition(a.Index, op, vals...)
			if err != nil {
				return fmt.Errorf("syscalls[%d]: %w", i, err)
			}
			conds = append(conds, c)
		}
		for _, name := range rule.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown on this kernel/libseccomp: runc skips it too
			}
			switch {
			case len(conds) == 0:
				err = f.AddRule(call, act)
			case sameArgTwice(rule.Args):
				// libseccomp takes one check per argument in a rule: as
				// runc does, each check becomes a rule of its own.
				for _, c := range conds {
					if err = f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = f.AddRuleConditional(call, act, conds)
			}
			if err != nil {
				return fmt.Errorf("syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	// ExportBPF, not ExportBPFMem: that needs libseccomp 2.6 (Debian 12
	// has 2.5.4).
	return f.ExportBPF(out)
}

func action(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActErrno:
		ret := int16(1) // EPERM, as runc
		if errno != nil {
			ret = int16(*errno)
		}
		return libseccomp.ActErrno.SetReturnCode(ret), nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	}
	// The translator refuses every other action (seccompAction).
	return libseccomp.ActInvalid, fmt.Errorf("action %s is not supported by the lxc backend", a)
}

func compareOp(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("operator %s is unknown", op)
}

func sameArgTwice(args []specs.LinuxSeccompArg) bool {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			return true
		}
		seen[a.Index] = true
	}
	return false
}
