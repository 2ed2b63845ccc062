package lxc

// The translator: an OCI runtime spec becomes an LXC 5.0 container config
// (lxc.container.conf(5)). It is pure: it reads nothing but its arguments.
//
// Every spec field is translated, refused with an error (when ignoring it
// would change the container's security or what it runs), or accepted
// with a warning (when the difference is harmless or only cosmetic);
// nothing is dropped silently. Where LXC's man page is silent the choices
// follow LXC 5.0's source (confile.c, conf.c, seccomp.c, start.c), and
// where OCI leaves things to the runtime they follow runc, so the lxc
// backend behaves like the native one.

import (
	"errors"
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/proxcage/proxcage/internal/lxctools"
)

// Settings is what translation needs from the host and the backend.
type Settings struct {
	// CgroupV2 is the host's cgroup layout: true = unified (lxc.cgroup2.*),
	// false = v1 or hybrid (lxc.cgroup.*).
	CgroupV2 bool
	// HookRunner is the absolute path of the proxcage binary; OCI hooks
	// become `lxc.hook.X = HookRunner lxc-hook STATEDIR KIND`.
	HookRunner string
	// StateDir is the container's state directory (it holds hooks.json).
	StateDir string
	// SourceIsFile reports whether a bind mount's source (a host path) is
	// a file rather than a directory, so that LXC creates the mount point
	// as a file (create=file) instead of a directory (create=dir). It is
	// asked about bind sources only; nil means every source is a directory.
	SourceIsFile func(path string) bool `json:"-"`
	// KeeperInit maps the pid of another lxc container's keeper (what its
	// pid file and state name: lxc-execute) to its init's, and any other
	// pid to itself. nil: pids are taken as they are.
	KeeperInit func(pid int) int `json:"-"`
	// ArgsOnCommandLine says the backend passes process.args to LXC itself
	// (`lxc-start ... -- ARGS` or `lxc-execute ... -- ARGS`), which takes
	// precedence over lxc.init.cmd. lxc.init.cmd is then still written when
	// it can hold the args, but args it cannot hold (an argument with a
	// space, an empty one) are no longer an error.
	ArgsOnCommandLine bool
	// HostHostname is what a new UTS namespace starts with under runc:
	// a copy of the host's name. Without a spec hostname the container
	// gets it (LXC would otherwise name it after the container); empty
	// means the id made a label.
	HostHostname string
	// InitHelper and InitDir are the host paths of the stand-in
	// (cmd/proxcage-lxc-init) and of its directory (process.json, the
	// exec fifo), bind-mounted at CtrInitHelper and CtrInitDir; "" leaves
	// them out (translation-only tests).
	InitHelper, InitDir string
}

// Inside the container, under autodev's /dev tmpfs (so a read-only rootfs
// stays untouched).
const (
	CtrInitHelper = "/dev/.proxcage-init"
	CtrInitDir    = "/dev/.proxcage"
)

// Line is one `key = value` of an LXC config.
type Line struct{ Key, Value string }

// Config is a translated bundle.
type Config struct {
	Lines []Line
	// StandIn is what the stand-in applies itself.
	StandIn StandIn
	// Warnings are what was accepted but not applied exactly, one line
	// each, for the backend to log.
	Warnings []string
	// PostStart and PostStop are hooks the backend runs itself: LXC has no
	// hook point that matches them.
	PostStart, PostStop []specs.Hook
	// Sysctl are the checked linux.sysctl (dotted names): the mount hook
	// writes them in the container's namespaces, before pivot_root.
	Sysctl map[string]string
}

// StandIn is what the stand-in (cmd/proxcage-lxc-init) applies itself,
// because LXC cannot, or not at the right moment: the inheritable and
// ambient capability sets (lxc.cap.keep covers the bounding, permitted
// and effective ones) and the seccomp filter, loaded right before exec as
// runc does (LXC's lxc.seccomp.profile is loaded before LXC's own setup,
// so a strict allowlist would break the start itself).
type StandIn struct {
	Inheritable, Ambient []int // capability numbers
	// Seccomp is the checked profile; the backend compiles it to BPF
	// (libseccomp, as runc).
	Seccomp *specs.LinuxSeccomp
	// NoNewPrivs before the filter: loading one needs no_new_privs or
	// CAP_SYS_ADMIN, and LXC has dropped the capabilities by then (runc
	// loads it before dropping them when the spec leaves no_new_privs
	// off).
	NoNewPrivs bool
}

// Render writes the config as LXC reads it ("key = value\n").
func (c *Config) Render() string {
	var b strings.Builder
	for _, l := range c.Lines {
		b.WriteString(l.Key + " = " + l.Value + "\n")
	}
	return b.String()
}

// Translate maps an OCI spec to an LXC config. rootfs is the absolute
// rootfs path. Pure: reads nothing but its arguments.
func Translate(id string, s *specs.Spec, rootfs string, set Settings) (*Config, error) {
	if s == nil {
		return nil, errors.New("spec: missing")
	}
	t := &translator{id: id, s: s, rootfs: rootfs, set: set, cfg: &Config{}}
	t.lx = s.Linux
	if t.lx == nil {
		t.lx = &specs.Linux{}
	}
	steps := []func(){
		t.platform, t.readNamespaces, t.readMounts,
		t.hostname, t.root, t.personality, t.namespaces, t.network, t.dev,
		t.mounts, t.devices, t.readonlyPaths, t.maskedPaths,
		t.process, t.sysctl, t.cgroups, t.seccomp, t.hooks, t.others, t.standIn,
	}
	for _, step := range steps {
		step()
		if t.err != nil {
			return nil, t.err
		}
	}
	t.cfg.Lines = t.lines
	t.cfg.Warnings = t.warns
	return t.cfg, nil
}

type translator struct {
	id     string
	s      *specs.Spec
	lx     *specs.Linux
	rootfs string
	set    Settings
	cfg    *Config
	lines  []Line
	warns  []string
	err    error

	ns map[specs.LinuxNamespaceType]string // "" = new, else the joined path; absent = the host's
	mp mountPlan
}

// mountPlan is what readMounts makes of spec.mounts.
type mountPlan struct {
	autodev    bool
	devSize    int64 // /dev tmpfs size in bytes, 0 = LXC's default
	ptyMax     int   // > 0: a new devpts instance
	auto       []string
	entries    []string // lxc.mount.entry values, in order
	createsOut bool     // an entry creates its mount point outside /dev
}

// fail records the first error; the step returns and Translate stops.
func (t *translator) fail(format string, a ...any) {
	if t.err == nil {
		t.err = fmt.Errorf(format, a...)
	}
}

func (t *translator) warn(format string, a ...any) {
	t.warns = append(t.warns, fmt.Sprintf(format, a...))
}

// add appends a config line. LXC reads a config line by line, splits it
// at the first '=' and trims blanks around key and value
// (confile.c:parse_line), so a value cannot hold a line break or start or
// end with a blank, nor be empty: field names the spec field such a value
// came from.
func (t *translator) add(field, key, value string) {
	if value == "" {
		// An empty value clears a list key (lxc.cgroup2, lxc.sysctl, ...)
		// in LXC instead of setting it.
		t.fail("%s: an empty value cannot be written (LXC reads `%s =` as clearing it)", field, key)
		return
	}
	if bad := strings.ContainsAny(value, "\n\r\x00"); bad || value != strings.Trim(value, " \t") {
		what := "a line break or NUL"
		if !bad {
			what = "leading or trailing blanks"
		}
		t.fail("%s: %q has %s, which an LXC config line cannot hold", field, value, what)
		return
	}
	if key == "" || strings.ContainsAny(key, "= \t\n\r\x00") {
		t.fail("%s: %q cannot be part of an LXC config key", field, key)
		return
	}
	t.lines = append(t.lines, Line{key, value})
}

// ----------------------------------------------------------------------
// the rest

func (t *translator) others() {
	if r := t.lx.IntelRdt; r != nil {
		// Cache and memory-bandwidth allocation is resource control the
		// spec asks for; running without it would be a different container.
		t.fail("linux.intelRdt: LXC has no Intel RDT (resctrl) support")
		return
	}
	if t.lx.MemoryPolicy != nil {
		t.warn("linux.memoryPolicy: LXC has no NUMA memory-policy setting; %s is not applied", t.lx.MemoryPolicy.Mode)
	}
	if t.lx.MountLabel != "" {
		t.warn("linux.mountLabel: LXC has no mount-label setting; %q is not applied to the container's mounts", t.lx.MountLabel)
	}
	// spec.annotations are metadata for the caller, not configuration;
	// spec.root.path is the bundle's rootfs, given as rootfs.
}

// standIn bind-mounts the stand-in and its directory (last, as the
// backend has always written them).
func (t *translator) standIn() {
	if t.set.InitHelper == "" && t.set.InitDir == "" {
		return
	}
	if !path.IsAbs(t.set.InitHelper) || !path.IsAbs(t.set.InitDir) {
		t.fail("the lxc backend needs the stand-in and its directory as absolute paths (got %q, %q)", t.set.InitHelper, t.set.InitDir)
		return
	}
	t.add("stand-in", "lxc.mount.entry", lxctools.EscapeMountPath(t.set.InitHelper)+" "+CtrInitHelper[1:]+" none bind,ro,create=file 0 0")
	t.add("stand-in", "lxc.mount.entry", lxctools.EscapeMountPath(t.set.InitDir)+" "+CtrInitDir[1:]+" none bind,create=dir 0 0")
}
