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
// other capability from the bounding set; "none" drops them all). The
// permitted and effective sets need no line: the process is exec'd, and
// an exec recomputes them. As root the process gets its whole bounding
// set (runc's process too), except that with no_new_privs runc's gets
// only bounding ∩ permitted: lxc.cap.keep is that intersection then. The
// inheritable and ambient sets go to the stand-in.
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
	// LXC sets neither the inheritable nor the ambient set: the stand-in
	// does, before it execs the process.
	numbers := func(names []string) []int {
		var out []int
		for _, n := range names {
			out = append(out, capNames[n])
		}
		return out
	}
	t.cfg.StandIn.Inheritable = numbers(known("inheritable", c.Inheritable))
	t.cfg.StandIn.Ambient = numbers(known("ambient", c.Ambient))
}

// ----------------------------------------------------------------------
// seccomp

// seccomp: the profile is checked here and compiled to BPF by the
// backend (libseccomp, as runc does), and the stand-in loads it right
// before exec (see StandIn). What libseccomp and the stand-in cannot do
// is refused or warned about here, so a bad profile fails at create.
func (t *translator) seccomp() {
	sc := t.lx.Seccomp
	if sc == nil {
		return
	}
	def, ok := t.seccompAction("linux.seccomp.defaultAction", sc.DefaultAction, sc.DefaultErrnoRet)
	if !ok {
		return
	}
	for _, f := range sc.Flags {
		t.warn("linux.seccomp.flags: %s is not applied (the filter is loaded without flags)", f)
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
		// libseccomp refuses a rule whose action is the default; the
		// compiler skips it, as runc does, and it changes nothing.
		if act == def {
			continue
		}
		if err := checkSeccompArgs(call.Args); err != nil {
			t.fail("%s.args: %v", field, err)
			return
		}
		for _, name := range call.Names {
			if !syscallName.MatchString(name) {
				t.fail("%s.names: %q is not a syscall name", field, name)
				return
			}
		}
	}
	t.cfg.StandIn.Seccomp = sc
	t.cfg.StandIn.NoNewPrivs = !t.s.Process.NoNewPrivileges
	if t.cfg.StandIn.NoNewPrivs {
		t.warn("process.noNewPrivileges is false but linux.seccomp is set: no_new_privs is set before the filter is loaded (the process has no CAP_SYS_ADMIN to load it otherwise)")
	}
}

var syscallName = regexp.MustCompile(`^[a-z0-9_]+$`)

// seccompAction checks an OCI action and returns it in one spelling per
// filter action, so a rule can be compared with the default (KILL and
// KILL_THREAD are the same action).
func (t *translator) seccompAction(field string, a specs.LinuxSeccompAction, errnoRet *uint) (string, bool) {
	if errnoRet != nil && a != specs.ActErrno {
		t.fail("%s: errnoRet is only for SCMP_ACT_ERRNO, not %s", field, a)
		return "", false
	}
	switch a {
	case specs.ActAllow, specs.ActKillProcess, specs.ActTrap, specs.ActLog:
		return string(a), true
	case specs.ActErrno:
		n := uint(unix.EPERM) // runc's default errno
		if errnoRet != nil {
			n = *errnoRet
		}
		return "errno " + strconv.FormatUint(uint64(n), 10), true
	case specs.ActKill, specs.ActKillThread:
		return string(specs.ActKillThread), true
	case specs.ActTrace:
		t.fail("%s: action SCMP_ACT_TRACE is not supported by the lxc backend", field)
	case specs.ActNotify:
		t.fail("%s: action SCMP_ACT_NOTIFY is not supported by the lxc backend (it has no seccomp listener)", field)
	default:
		t.fail("%s: unknown action %q", field, a)
	}
	return "", false
}

// checkSeccompArgs checks a rule's argument comparisons: a syscall has six
// arguments, and the operators are libseccomp's.
func checkSeccompArgs(args []specs.LinuxSeccompArg) error {
	for _, a := range args {
		if a.Index >= 6 {
			return fmt.Errorf("argument index %d: a syscall has 6 arguments", a.Index)
		}
		switch a.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return fmt.Errorf("unknown operator %q", a.Op)
		}
	}
	return nil
}
