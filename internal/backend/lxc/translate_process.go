package lxc

// Translation of spec.process: args, env, cwd, user, rlimits.

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (t *translator) process() {
	p := t.s.Process
	t.initCmd(p.Args)
	for i, e := range p.Env {
		// Without '=' LXC would copy the variable from lxc-start's own
		// environment (the host's).
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			t.fail("process.env[%d]: %q is not NAME=VALUE", i, e)
			return
		}
		t.add(fmt.Sprintf("process.env[%d]", i), "lxc.environment", e)
	}
	if p.Cwd != "" {
		if !path.IsAbs(p.Cwd) {
			t.fail("process.cwd: %q is not an absolute path", p.Cwd)
			return
		}
		t.add("process.cwd", "lxc.init.cwd", p.Cwd)
	}
	t.add("process.user.uid", "lxc.init.uid", strconv.FormatUint(uint64(p.User.UID), 10))
	t.add("process.user.gid", "lxc.init.gid", strconv.FormatUint(uint64(p.User.GID), 10))
	if len(p.User.AdditionalGids) > 0 {
		gids := make([]string, len(p.User.AdditionalGids))
		for i, g := range p.User.AdditionalGids {
			gids[i] = strconv.FormatUint(uint64(g), 10)
		}
		t.add("process.user.additionalGids", "lxc.init.groups", strings.Join(gids, ","))
	}
	if p.User.Umask != nil {
		// Not a boundary: the process may set any umask itself.
		t.warn("process.user.umask: LXC has no umask setting; the process inherits lxc-start's umask instead of %04o", *p.User.Umask)
	}
	if p.User.Username != "" {
		t.warn("process.user.username: %q is a Windows field, ignored", p.User.Username)
	}
	t.capabilities(p)
	if p.NoNewPrivileges {
		t.add("process.noNewPrivileges", "lxc.no_new_privs", "1")
	}
	t.rlimits(p)
	if p.OOMScoreAdj != nil {
		if *p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000 {
			t.fail("process.oomScoreAdj: %d is outside -1000..1000", *p.OOMScoreAdj)
			return
		}
		t.add("process.oomScoreAdj", "lxc.proc.oom_score_adj", strconv.Itoa(*p.OOMScoreAdj))
	}
	// No profile in the spec means no AppArmor confinement, as with runc;
	// LXC would otherwise apply its own lxc-container-default-cgns, which
	// the spec did not ask for. Where AppArmor is off LXC ignores the key.
	prof := p.ApparmorProfile
	if prof == "" {
		prof = "unconfined"
	}
	t.add("process.apparmorProfile", "lxc.apparmor.profile", prof)
	if p.SelinuxLabel != "" {
		t.add("process.selinuxLabel", "lxc.selinux.context", p.SelinuxLabel)
	}
	if p.Scheduler != nil {
		t.warn("process.scheduler: LXC has no scheduling-policy setting; the process runs with lxc-start's policy instead of %s", p.Scheduler.Policy)
	}
	if p.IOPriority != nil {
		t.warn("process.ioPriority: LXC has no I/O-priority setting; %s %d is not applied", p.IOPriority.Class, p.IOPriority.Priority)
	}
	if p.ExecCPUAffinity != nil {
		t.warn("process.execCPUAffinity: LXC has no CPU-affinity setting; it is not applied")
	}
	if p.CommandLine != "" {
		t.warn("process.commandLine: a Windows field, ignored (process.args is run)")
	}
	// process.terminal and process.consoleSize: the backend gives the
	// process its terminal itself.
}

// initCmd: lxc.init.cmd is what lxc-start runs as the container's pid 1,
// with no LXC init in between (lxc.execute.cmd is for lxc-execute, which
// runs init.lxc as pid 1). LXC splits lxc.init.cmd at spaces, with no
// quoting or escapes (lxccontainer.c split_init_cmd), and execvp()s it.
func (t *translator) initCmd(args []string) {
	cmd, err := joinInitCmd(args)
	if err != nil {
		if !t.set.ArgsOnCommandLine {
			t.fail("process.args%v (if the backend passes the args to LXC itself, it sets Settings.ArgsOnCommandLine)", err)
		}
		return
	}
	t.add("process.args", "lxc.init.cmd", cmd)
}

// joinInitCmd writes args as lxc.init.cmd, or says why it cannot.
func joinInitCmd(args []string) (string, error) {
	for i, a := range args {
		switch {
		case a == "":
			return "", fmt.Errorf("[%d]: an empty argument cannot be written in lxc.init.cmd, which LXC splits at spaces without quoting", i)
		case strings.Contains(a, " "):
			return "", fmt.Errorf("[%d]: %q has a space, and LXC splits lxc.init.cmd at spaces without quoting", i, a)
		case strings.ContainsAny(a, "\n\r\x00"):
			return "", fmt.Errorf("[%d]: %q has a line break or NUL, which an LXC config line cannot hold", i, a)
		}
	}
	cmd := strings.Join(args, " ")
	if cmd != strings.Trim(cmd, " \t") || strings.HasPrefix(args[len(args)-1], "\t") {
		return "", errors.New(": lxc.init.cmd cannot begin or end with a tab (LXC trims the value)")
	}
	if len(cmd) >= 4096 {
		return "", fmt.Errorf(": the command is %d bytes; lxc.init.cmd holds fewer than 4096 (PATH_MAX)", len(cmd))
	}
	return cmd, nil
}

var rlimitNames = []string{"AS", "CORE", "CPU", "DATA", "FSIZE", "LOCKS", "MEMLOCK", "MSGQUEUE",
	"NICE", "NOFILE", "NPROC", "RSS", "RTPRIO", "RTTIME", "SIGPENDING", "STACK"}

// rlimits: lxc.prlimit.NAME = SOFT:HARD (names lower case without RLIMIT_,
// "unlimited" for RLIM_INFINITY).
func (t *translator) rlimits(p *specs.Process) {
	seen := map[string]bool{}
	lim := func(v uint64) string {
		if v == math.MaxUint64 {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	for i, r := range p.Rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		name, ok := strings.CutPrefix(r.Type, "RLIMIT_")
		if !ok || !slices.Contains(rlimitNames, name) {
			t.fail("%s: unknown rlimit %q", field, r.Type)
			return
		}
		if seen[name] {
			t.fail("%s: %s given twice", field, r.Type)
			return
		}
		seen[name] = true
		if r.Soft > r.Hard {
			t.fail("%s: %s soft limit %d is above the hard limit %d", field, r.Type, r.Soft, r.Hard)
			return
		}
		t.add(field, "lxc.prlimit."+strings.ToLower(name), lim(r.Soft)+":"+lim(r.Hard))
	}
}
