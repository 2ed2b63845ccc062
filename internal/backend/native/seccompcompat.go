package native

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// statFamily are the syscalls that return what statx returns.
var statFamily = []string{"stat", "lstat", "fstat", "newfstatat", "fstatat64", "stat64", "lstat64", "fstat64"}

// allowStatxWithStat adds an ALLOW rule for statx to a seccomp profile that
// already allows the stat family but does not mention statx.
//
// Why: libcontainer >= 1.4 installs the profile before it closes its fds
// and, to do that safely, calls statx(STATX_MNT_ID) on /proc. Profiles
// written before statx existed (docker's before 2018, runtime-tools
// v0.9.0's default) make that call fail with ENOSYS, and the container never
// starts ("error closing exec fds ... could not get mount id: function not
// implemented"; runc issue #5059). statx reveals nothing the allowed stat
// calls do not, so allowing it grants no new capability. A profile that
// denies the stat family, or says anything about statx, is left alone.
func allowStatxWithStat(s *specs.LinuxSeccomp) bool {
	if s == nil || s.DefaultAction == specs.ActAllow || s.DefaultAction == specs.ActLog {
		return false
	}
	allowsStat := false
	for _, r := range s.Syscalls {
		if slices.Contains(r.Names, "statx") {
			return false
		}
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			for _, n := range r.Names {
				if slices.Contains(statFamily, n) {
					allowsStat = true
				}
			}
		}
	}
	if !allowsStat {
		return false
	}
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"statx"}, Action: specs.ActAllow})
	return true
}
