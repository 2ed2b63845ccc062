package lxc

// Translation of capabilities and seccomp.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capNames are the capabilities LXC 5.0 knows, by number.
var capNames = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_BOOT": unix.CAP_SYS_BOOT,
	"CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG,
	"CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// capabilities: the bounding set becomes lxc.cap.keep (LXC drops every
// other capability from the bounding set; "none" drops them all). LXC
// sets no other set, and needs not to: the process is exec'd, and an
// exec recomputes them. As root the process gets its whole bounding set
// (runc's process too), except that with no_new_privs runc's gets only
// bounding ∩ permitted: lxc.cap.keep is that intersection then. A non-root
// process keeps only ambient capabilities across the exec, which LXC
// cannot raise; inheritable ones matter only for file capabilities.
// process.capabilities absent: no lxc.cap.* line, LXC keeps them all, as
// runc changes nothing.
func (t *translator) capabilities(p *specs.Process) {
	c := p.Capabilities
	if c == nil {
		return
	}
	known := func(field string, list []string) []string {
		var out []string
		for _, n := range list {
			if _, ok := capNames[n]; !ok {
				t.warn("process.capabilities.%s: unknown capability %q ignored", field, n)
				continue
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	keep := known("bounding", c.Bounding)
	permitted := known("permitted", c.Permitted)
	root := p.User.UID == 0
	if root && p.NoNewPrivileges {
		keep = slices.DeleteFunc(keep, func(n string) bool { return !slices.Contains(permitted, n) })
	}
	if len(keep) == 0 {
		t.add("process.capabilities.bounding", "lxc.cap.keep", "none")
	} else {
		names := make([]string, len(keep))
		for i, n := range keep {
			names[i] = strings.ToLower(strings.TrimPrefix(n, "CAP_"))
		}
		t.add("process.capabilities.bounding", "lxc.cap.keep", strings.Join(names, " "))
	}
	known("effective", c.Effective)
	if inh := known("inheritable", c.Inheritable); len(inh) > 0 {
		t.warn("process.capabilities.inheritable: LXC does not set the inheritable set (%s), which only matters for programs with file capabilities", strings.Join(inh, ","))
	}
	if amb := known("ambient", c.Ambient); len(amb) > 0 && !root {
		t.warn("process.capabilities.ambient: LXC cannot raise ambient capabilities, so the process (uid %d) runs without %s", p.User.UID, strings.Join(amb, ","))
	}
}

// ----------------------------------------------------------------------
// seccomp

// seccomp: an LXC version 2 policy (seccomp.c parse_config_v2). Line 2
// is "denylist" (default allow) or "allowlist ACTION"; then one rule per
// syscall name: "NAME ACTION [IDX,VALUE,OP]..." or, for a masked
// comparison, "[IDX,DATUM,SCMP_CMP_MASKED_EQ,MASK]". The action is always
// written (LXC would read an argument list as an action otherwise). LXC
// adds every rule to the host's native and compat architectures (x86 and
// x32 with x86_64, arm with arm64, ...), so the rules need no [arch]
// sections; syscalls a kernel does not know are skipped, as runc does.
func (t *translator) seccomp() {
	sc := t.lx.Seccomp
	if sc == nil {
		return
	}
	def, ok := t.seccompAction("linux.seccomp.defaultAction", sc.DefaultAction, sc.DefaultErrnoRet)
	if !ok {
		return
	}
	var b strings.Builder
	b.WriteString("2\n")
	if def == "allow" {
		b.WriteString("denylist\n")
	} else {
		b.WriteString("allowlist " + def + "\n")
	}
	t.seccompArchs(sc.Architectures)
	for _, f := range sc.Flags {
		t.warn("linux.seccomp.flags: %s is not applied (LXC loads its filter without flags)", f)
	}
	if sc.ListenerPath != "" || sc.ListenerMetadata != "" {
		t.warn("linux.seccomp.listenerPath: no SCMP_ACT_NOTIFY rule uses the listener; ignored")
	}
	for i, call := range sc.Syscalls {
		field := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
		act, ok := t.seccompAction(field+".action", call.Action, call.ErrnoRet)
		if !ok {
			return
		}
		if len(call.Names) == 0 {
			t.fail("%s: no syscall names", field)
			return
		}
		// libseccomp refuses a rule whose action is the default; runc
		// skips it, and it changes nothing.
		if act == def {
			continue
		}
		argSets, err := seccompArgs(call.Args)
		if err != nil {
			t.fail("%s.args: %v", field, err)
			return
		}
		for _, name := range call.Names {
			if !syscallName.MatchString(name) {
				t.fail("%s.names: %q is not a syscall name", field, name)
				return
			}
			for _, args := range argSets {
				b.WriteString(name + " " + act + args + "\n")
			}
		}
	}
	t.seccompNeeds(def, sc.Syscalls)
	t.cfg.Seccomp = b.String()
}

// lxcAfterLoad are the syscalls LXC's do_start makes after it loads the
// filter (start.c: lxc_seccomp_load, then setsid, chdir to lxc.init.cwd,
// a sync with the monitor, dropping groups, setresgid/setresuid, clearing
// ambient capabilities, execve). runc loads it just before execve.
var lxcAfterLoad = []string{"read", "write", "close", "setsid", "chdir", "capget", "capset",
	"prctl", "setgroups", "setresgid", "setresuid", "execve"}

// seccompNeeds warns when the policy refuses a syscall LXC itself needs
// after loading it: the container would not start.
func (t *translator) seccompNeeds(def string, calls []specs.LinuxSyscall) {
	var blocked []string
	for _, name := range lxcAfterLoad {
		allowed := def == "allow"
		for _, c := range calls {
			if !slices.Contains(c.Names, name) {
				continue
			}
			if c.Action == specs.ActAllow || c.Action == specs.ActLog {
				allowed = true // possibly only for some arguments
			} else if len(c.Args) == 0 {
				allowed = false
				break
			}
		}
		if !allowed {
			blocked = append(blocked, name)
		}
	}
	if len(blocked) > 0 {
		t.warn("linux.seccomp: LXC loads the filter before it has finished starting the process (runc loads it just before execve), and the policy does not allow %s, which LXC calls after loading it: the start will fail", strings.Join(blocked, ", "))
	}
}

var syscallName = regexp.MustCompile(`^[a-z0-9_]+$`)

// seccompAction maps an OCI action to LXC's words: kill, errno N, allow,
// trap (notify exists too, but with LXC's own proxy protocol, not OCI's
// listener).
func (t *translator) seccompAction(field string, a specs.LinuxSeccompAction, errnoRet *uint) (string, bool) {
	if errnoRet != nil && a != specs.ActErrno {
		t.fail("%s: errnoRet is only for SCMP_ACT_ERRNO, not %s", field, a)
		return "", false
	}
	switch a {
	case specs.ActAllow:
		return "allow", true
	case specs.ActErrno:
		n := uint(unix.EPERM) // runc's default errno
		if errnoRet != nil {
			n = *errnoRet
		}
		return "errno " + strconv.FormatUint(uint64(n), 10), true
	case specs.ActKill, specs.ActKillThread:
		return "kill", true
	case specs.ActKillProcess:
		t.warn("%s: SCMP_ACT_KILL_PROCESS becomes LXC's kill, which kills the calling thread, not the whole process", field)
		return "kill", true
	case specs.ActTrap:
		return "trap", true
	case specs.ActLog:
		t.warn("%s: SCMP_ACT_LOG becomes allow (LXC has no log action): the calls are allowed but not logged", field)
		return "allow", true
	case specs.ActTrace:
		t.fail("%s: action SCMP_ACT_TRACE has no LXC equivalent", field)
	case specs.ActNotify:
		t.fail("%s: action SCMP_ACT_NOTIFY has no LXC equivalent (LXC's notify forwards to its own seccomp proxy, not to an OCI listener)", field)
	default:
		t.fail("%s: unknown action %q", field, a)
	}
	return "", false
}

// seccompArgs writes a rule's argument comparisons: one rule with all of
// them (they must all hold), or, when one argument is compared twice,
// which libseccomp cannot hold in one rule, one rule per comparison, as
// runc does.
func seccompArgs(args []specs.LinuxSeccompArg) ([]string, error) {
	if len(args) == 0 {
		return []string{""}, nil
	}
	var conds []string
	count := map[uint]int{}
	for _, a := range args {
		if a.Index >= 6 {
			return nil, fmt.Errorf("argument index %d: a syscall has 6 arguments", a.Index)
		}
		count[a.Index]++
		switch a.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan:
			// valueTwo means nothing to these (libseccomp ignores it).
			conds = append(conds, fmt.Sprintf(" [%d,%d,%s]", a.Index, a.Value, a.Op))
		case specs.OpMaskedEqual:
			// OCI (as libseccomp): value is the mask, valueTwo the datum.
			// LXC: [index,datum,op,mask].
			conds = append(conds, fmt.Sprintf(" [%d,%d,%s,%d]", a.Index, a.ValueTwo, a.Op, a.Value))
		default:
			return nil, fmt.Errorf("unknown operator %q", a.Op)
		}
	}
	for _, n := range count {
		if n > 1 {
			return conds, nil
		}
	}
	return []string{strings.Join(conds, "")}, nil
}

// archFamilies are the architecture sets LXC 5.0 filters on each host:
// the native one and, on some, its compat ones (seccomp.c
// parse_config_v2).
var archFamilies = [][]specs.Arch{
	{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	{specs.ArchAARCH64, specs.ArchARM},
	{specs.ArchPPC64, specs.ArchPPC},
	{specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPS},
	{specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchMIPSEL},
	{specs.ArchX86}, {specs.ArchARM}, {specs.ArchPPC64LE}, {specs.ArchPPC},
	{specs.ArchS390X}, {specs.ArchS390}, {specs.ArchMIPS}, {specs.ArchMIPSEL},
}

// seccompArchs: LXC picks the architectures from the host, not the
// policy; a list that is one of its sets is exactly what it filters.
func (t *translator) seccompArchs(archs []specs.Arch) {
	if len(archs) == 0 {
		return
	}
	want := slices.Clone(archs)
	slices.Sort(want)
	want = slices.Compact(want)
	for _, f := range archFamilies {
		got := slices.Clone(f)
		slices.Sort(got)
		if slices.Equal(want, got) {
			return
		}
	}
	names := make([]string, len(archs))
	for i, a := range archs {
		names[i] = string(a)
	}
	t.warn("linux.seccomp.architectures: LXC filters the host's native architecture and its compat ones (x86_64: x86, x32; aarch64: arm; ...), not exactly %s", strings.Join(names, ","))
}
