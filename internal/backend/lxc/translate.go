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
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/spec"
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
}

// Line is one `key = value` of an LXC config.
type Line struct{ Key, Value string }

// Config is a translated bundle.
type Config struct {
	Lines []Line
	// Seccomp is an LXC seccomp policy (version 2 text), or "" for none.
	// The backend writes it to a file; Render adds lxc.seccomp.profile.
	Seccomp string
	// Warnings are what was accepted but not applied exactly, one line
	// each, for the backend to log.
	Warnings []string
	// PostStart and PostStop are hooks the backend runs itself: LXC has no
	// hook point that matches them.
	PostStart, PostStop []specs.Hook
}

// Render writes the config as LXC reads it ("key = value\n"), with
// lxc.seccomp.profile = seccompPath appended when c.Seccomp != "" and
// seccompPath != "".
func (c *Config) Render(seccompPath string) string {
	var b strings.Builder
	for _, l := range c.Lines {
		b.WriteString(l.Key + " = " + l.Value + "\n")
	}
	if c.Seccomp != "" && seccompPath != "" {
		b.WriteString("lxc.seccomp.profile = " + seccompPath + "\n")
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
		t.process, t.sysctl, t.cgroups, t.seccomp, t.hooks, t.others,
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
// platform, namespaces, hostname, rootfs

func (t *translator) platform() {
	switch {
	case t.s.Windows != nil:
		t.fail("windows: a Windows container cannot run on LXC")
	case t.s.Solaris != nil:
		t.fail("solaris: a Solaris container cannot run on LXC")
	case t.s.VM != nil:
		t.fail("vm: a virtual-machine container cannot run on LXC")
	case t.s.ZOS != nil:
		t.fail("zos: a z/OS container cannot run on LXC")
	case t.s.FreeBSD != nil:
		t.fail("freebsd: a FreeBSD jail cannot run on LXC")
	case t.s.Process == nil:
		t.fail("process: missing (the lxc backend runs the spec's process)")
	case len(t.s.Process.Args) == 0:
		t.fail("process.args: empty")
	}
}

// lxcNS is each OCI namespace's identifier in LXC (the /proc/PID/ns
// names: lxc_namespace_2_cloneflag matches ns_info[].proc_name, "mnt" not
// the man page's "mount"), in the order LXC lists them.
var lxcNS = []struct {
	oci specs.LinuxNamespaceType
	lxc string
}{
	{specs.UserNamespace, "user"}, {specs.MountNamespace, "mnt"}, {specs.PIDNamespace, "pid"},
	{specs.UTSNamespace, "uts"}, {specs.IPCNamespace, "ipc"}, {specs.NetworkNamespace, "net"},
	{specs.CgroupNamespace, "cgroup"}, {specs.TimeNamespace, "time"},
}

func lxcNSName(typ specs.LinuxNamespaceType) string {
	for _, n := range lxcNS {
		if n.oci == typ {
			return n.lxc
		}
	}
	return ""
}

func (t *translator) readNamespaces() {
	t.ns = map[specs.LinuxNamespaceType]string{}
	for i, n := range t.lx.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		if lxcNSName(n.Type) == "" {
			t.fail("%s: unknown namespace type %q", field, n.Type)
			return
		}
		if _, dup := t.ns[n.Type]; dup {
			t.fail("%s: namespace %q listed twice", field, n.Type)
			return
		}
		t.ns[n.Type] = n.Path
	}
	// LXC mounts the rootfs and pivots into it: without a mount namespace
	// of its own that would happen in the host's (or another container's).
	if p, ok := t.ns[specs.MountNamespace]; !ok {
		t.fail("linux.namespaces: the lxc backend needs a new mount namespace (LXC mounts the rootfs and pivots into it)")
	} else if p != "" {
		t.fail("linux.namespaces: joining mount namespace %s is not supported by the lxc backend (LXC sets up the rootfs in a mount namespace of its own)", p)
	}
}

func (t *translator) newNS(typ specs.LinuxNamespaceType) bool {
	p, ok := t.ns[typ]
	return ok && p == ""
}

// hostname: lxc.uts.name, only in a new UTS namespace (in the host's LXC
// would rename the host). Without a hostname the container keeps the
// host's (Settings.HostHostname), as with runc, or else gets one made from
// its id, as a valid DNS label.
func (t *translator) hostname() {
	h := t.s.Hostname
	_, hasUTS := t.ns[specs.UTSNamespace]
	switch {
	case h != "" && !hasUTS:
		t.fail("hostname: setting the hostname needs a new UTS namespace (linux.namespaces has none)")
		return
	case h != "" && !t.newNS(specs.UTSNamespace):
		t.fail("hostname: the lxc backend sets the hostname only in a new UTS namespace, not in the joined %s", t.ns[specs.UTSNamespace])
		return
	case !t.newNS(specs.UTSNamespace):
		return
	case h == "" && t.set.HostHostname != "":
		h = t.set.HostHostname
	case h == "":
		h = labelFromID(t.id)
	}
	// LXC copies it into utsname.nodename (65 bytes with the NUL).
	if len(h) > 64 {
		t.fail("hostname: %q is longer than the kernel's 64 characters", h)
		return
	}
	t.add("hostname", "lxc.uts.name", h)
}

var notLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// labelFromID makes a container id a valid DNS label of at most 63
// characters (containerd's 64-hex ids included).
func labelFromID(id string) string {
	h := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(id), "-"), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "proxcage"
	}
	return h
}

// root: the rootfs is a directory LXC bind-mounts (dir storage). A
// read-only root and the rootfs propagation are mount options of that
// bind (lxc.rootfs.options: dir_mount applies "ro" with a read-only
// remount and parses propagation flags).
func (t *translator) root() {
	if !path.IsAbs(t.rootfs) {
		t.fail("rootfs: %q is not an absolute path", t.rootfs)
		return
	}
	t.add("rootfs", "lxc.rootfs.path", "dir:"+path.Clean(t.rootfs))
	var opts []string
	if t.s.Root != nil && t.s.Root.Readonly {
		opts = append(opts, "ro")
		// LXC mounts the rootfs read-only before the other mounts (runc
		// remounts it read-only after them), so it cannot create a mount
		// point the rootfs lacks.
		if t.mp.createsOut {
			t.warn("root.readonly: LXC makes the rootfs read-only before mounting, so a mount point missing from the rootfs cannot be created (create=) and that mount fails")
		}
	}
	switch p := t.lx.RootfsPropagation; p {
	case "":
	case "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable":
		opts = append(opts, p)
		t.warn("linux.rootfsPropagation: %s is applied to the rootfs mount LXC makes; the rest of the container's mount tree keeps LXC's own propagation", p)
	default:
		t.fail("linux.rootfsPropagation: unknown propagation %q", p)
		return
	}
	if len(opts) > 0 {
		t.add("root.readonly", "lxc.rootfs.options", strings.Join(opts, ","))
	}
}

// personality: lxc.arch sets the personality (lxc_config_parse_arch:
// "linux32" is PER_LINUX32, "linux64" PER_LINUX).
func (t *translator) personality() {
	p := t.lx.Personality
	if p == nil {
		return
	}
	if len(p.Flags) > 0 {
		t.fail("linux.personality.flags: LXC sets only the execution domain (lxc.arch), not flags %v", p.Flags)
		return
	}
	switch p.Domain {
	case specs.PerLinux:
		t.add("linux.personality", "lxc.arch", "linux64")
	case specs.PerLinux32:
		t.add("linux.personality", "lxc.arch", "linux32")
	default:
		t.fail("linux.personality.domain: unknown domain %q", p.Domain)
	}
}

var nsPath = regexp.MustCompile(`^/proc/([0-9]+)/ns/([a-z_]+)$`)

// namespaces: lxc.namespace.clone lists the namespaces the spec creates;
// the others are kept, i.e. inherited from lxc-start (resolve_clone_flags
// clones only the listed ones when lxc.namespace.clone is set). Not
// lxc.namespace.keep as well: LXC refuses a config with both ("Cannot set
// both lxc.namespace.clone and lxc.namespace.keep"). A namespace joined by
// path becomes lxc.namespace.share.NS, which in LXC 5.0 takes a pid, a
// container name or a container path, not a namespace file: the pid of a
// /proc/PID/ns/NS path is taken, other paths are refused.
func (t *translator) namespaces() {
	var clone []string
	for _, n := range lxcNS {
		p, ok := t.ns[n.oci]
		if ok && p == "" {
			clone = append(clone, n.lxc)
		}
	}
	t.add("linux.namespaces", "lxc.namespace.clone", strings.Join(clone, " "))
	for _, n := range lxcNS {
		p := t.ns[n.oci]
		if p == "" {
			continue
		}
		m := nsPath.FindStringSubmatch(p)
		if m == nil {
			t.fail("linux.namespaces: %s namespace path %q: LXC 5.0 joins a namespace only by process (lxc.namespace.share.%s takes a pid or a container name), so the path must be /proc/PID/ns/%s", n.oci, p, n.lxc, n.lxc)
			return
		}
		if m[2] != n.lxc {
			t.fail("linux.namespaces: %s namespace path %q is a process's %s namespace, not its %s one", n.oci, p, m[2], n.lxc)
			return
		}
		if pid, err := strconv.Atoi(m[1]); err != nil || pid < 1 {
			t.fail("linux.namespaces: %s namespace path %q: bad pid", n.oci, p)
			return
		}
		t.add("linux.namespaces", "lxc.namespace.share."+n.lxc, m[1])
	}
	t.idmaps()
	t.timeOffsets()
}

// idmaps: a new user namespace needs both maps (LXC writes uid_map and
// gid_map from lxc.idmap).
func (t *translator) idmaps() {
	um, gm := t.lx.UIDMappings, t.lx.GIDMappings
	_, hasUser := t.ns[specs.UserNamespace]
	switch {
	case !hasUser && (len(um) > 0 || len(gm) > 0):
		t.fail("linux.uidMappings: id mappings need a user namespace (linux.namespaces has none)")
		return
	case hasUser && !t.newNS(specs.UserNamespace) && (len(um) > 0 || len(gm) > 0):
		t.fail("linux.uidMappings: the joined user namespace %s has its own mappings; LXC cannot apply others", t.ns[specs.UserNamespace])
		return
	case t.newNS(specs.UserNamespace) && (len(um) == 0 || len(gm) == 0):
		t.fail("linux.uidMappings: a new user namespace needs both uid and gid mappings")
		return
	}
	for _, x := range []struct {
		kind, field string
		maps        []specs.LinuxIDMapping
	}{{"u", "linux.uidMappings", um}, {"g", "linux.gidMappings", gm}} {
		root := false
		for i, m := range x.maps {
			if m.Size == 0 {
				t.fail("%s[%d]: size 0", x.field, i)
				return
			}
			root = root || m.ContainerID == 0
			t.add(x.field, "lxc.idmap", fmt.Sprintf("%s %d %d %d", x.kind, m.ContainerID, m.HostID, m.Size))
		}
		if len(x.maps) > 0 && !root {
			t.warn("%s: container id 0 is not mapped; LXC needs the container's root mapped to start", x.field)
		}
	}
}

// timeOffsets: lxc.time.offset.{boot,monotonic}; LXC keeps seconds and
// nanoseconds apart (an "s" value sets the seconds, an "ns" value the
// nanoseconds), so a offset with both takes two lines.
func (t *translator) timeOffsets() {
	if len(t.lx.TimeOffsets) == 0 {
		return
	}
	if !t.newNS(specs.TimeNamespace) {
		t.fail("linux.timeOffsets: clock offsets need a new time namespace")
		return
	}
	for _, clock := range slices.Sorted(maps.Keys(t.lx.TimeOffsets)) {
		var key string
		switch clock {
		case "boottime":
			key = "lxc.time.offset.boot"
		case "monotonic":
			key = "lxc.time.offset.monotonic"
		default:
			t.fail("linux.timeOffsets: unknown clock %q (boottime or monotonic)", clock)
			return
		}
		off := t.lx.TimeOffsets[clock]
		if off.Secs != 0 || off.Nanosecs == 0 {
			t.add("linux.timeOffsets", key, fmt.Sprintf("%ds", off.Secs))
		}
		if off.Nanosecs != 0 {
			t.add("linux.timeOffsets", key, fmt.Sprintf("%dns", off.Nanosecs))
		}
	}
}

// network: a new network namespace gets only a loopback interface, up
// (lxc.net.0.type = empty; LXC brings lo up when that interface is flagged
// up), as runc does. linux.netDevices are moved in with LXC's phys type.
func (t *translator) network() {
	if !t.newNS(specs.NetworkNamespace) {
		if len(t.lx.NetDevices) > 0 {
			t.fail("linux.netDevices: moving network devices needs a new network namespace")
		}
		return
	}
	t.add("network", "lxc.net.0.type", "empty")
	t.add("network", "lxc.net.0.flags", "up")
	for i, host := range slices.Sorted(maps.Keys(t.lx.NetDevices)) {
		name := t.lx.NetDevices[host].Name
		if name == "" {
			name = host
		}
		for _, n := range []string{host, name} {
			if !ifName.MatchString(n) {
				t.fail("linux.netDevices: %q is not a valid interface name", n)
				return
			}
		}
		k := fmt.Sprintf("lxc.net.%d.", i+1)
		t.add("linux.netDevices", k+"type", "phys")
		t.add("linux.netDevices", k+"link", host)
		t.add("linux.netDevices", k+"name", name)
		t.add("linux.netDevices", k+"flags", "up")
		t.warn("linux.netDevices %s: moved in with LXC's phys type, which does not carry the interface's addresses over (the kernel drops them on the move)", host)
	}
}

var ifName = regexp.MustCompile(`^[^/\s:]{1,15}$`)

// dev: /dev (lxc.autodev: a tmpfs with the standard device nodes),
// /dev/pts (lxc.pty.max: a new devpts instance), and no LXC ttys or
// console: the backend handles the terminal (process.terminal is allowed;
// nothing here depends on it).
func (t *translator) dev() {
	if t.mp.autodev {
		t.add("mounts /dev", "lxc.autodev", "1")
		if t.mp.devSize > 0 {
			t.add("mounts /dev", "lxc.autodev.tmpfs.size", strconv.FormatInt(t.mp.devSize, 10))
		}
	} else {
		// LXC's default is autodev on.
		t.add("mounts /dev", "lxc.autodev", "0")
	}
	if t.mp.ptyMax > 0 {
		t.add("mounts /dev/pts", "lxc.pty.max", strconv.Itoa(t.mp.ptyMax))
	}
	t.add("process.terminal", "lxc.tty.max", "0")
	t.add("process.terminal", "lxc.console.path", "none")
}

// ----------------------------------------------------------------------
// mounts

// Options LXC's own mount code knows (conf.c mount_opt and
// propagation_opt): anything else goes to the filesystem as data, which a
// bind mount ignores.
var lxcMountFlags = []string{
	"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
	"noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
	"nosuid", "rbind", "relatime", "ro", "rw", "strictatime", "suid", "sync",
	"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable",
}

var propagationOpts = []string{"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable"}

// recursive mount attributes (runc's mount_setattr options) and what they
// are on a single mount.
var recursiveOpts = map[string]string{
	"rro": "ro", "rrw": "rw", "rnosuid": "nosuid", "rsuid": "suid", "rnodev": "nodev", "rdev": "dev",
	"rnoexec": "noexec", "rexec": "exec", "rnoatime": "noatime", "ratime": "atime",
	"rnodiratime": "nodiratime", "rdiratime": "diratime", "rrelatime": "relatime",
	"rnorelatime": "norelatime", "rstrictatime": "strictatime", "rnostrictatime": "nostrictatime",
}

// Options LXC's auto-mounts of /proc and /sys apply or make moot: LXC
// mounts proc nosuid,nodev,noexec; sysfs holds no executables, set-id
// files or device nodes, so those flags do nothing on it.
var autoProcOpts = []string{"nosuid", "noexec", "nodev", "rw", "relatime"}
var autoSysOpts = []string{"nosuid", "noexec", "nodev", "rw", "ro", "relatime"}

// readMounts plans spec.mounts (it runs first: /dev decides lxc.autodev).
// The standard OCI mounts become what LXC does itself, as it expects:
//   - /proc (proc) -> lxc.mount.auto proc:rw. Not proc:mixed: that leaves
//     /proc/sys/net writable and makes /proc/sys read-only whether the spec
//     asks or not; linux.readonlyPaths says which paths are read-only.
//   - /sys (sysfs) -> sys:ro with "ro", else sys:rw (not sys:mixed, which
//     keeps /sys/devices/virtual/net writable).
//   - /sys/fs/cgroup (cgroup, cgroup2) -> cgroup:ro:force with "ro", else
//     cgroup:mixed:force (the container's own cgroup writable, its
//     parents read-only). ":force": LXC skips the cgroup mount in a cgroup
//     namespace otherwise, leaving it to an init that runc's users lack.
//   - /dev (tmpfs) -> lxc.autodev (with its size=), /dev/pts (devpts) ->
//     lxc.pty.max.
//
// A standard mount with options LXC's automount cannot honour becomes an
// ordinary entry; everything else is an lxc.mount.entry.
func (t *translator) readMounts() {
	done := map[string]bool{}
	for i, m := range t.s.Mounts {
		field := fmt.Sprintf("mounts[%d] (%s)", i, m.Destination)
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			t.fail("%s: idmapped mounts (uidMappings, gidMappings) are not supported by the lxc backend", field)
			return
		}
		dest := path.Clean("/" + m.Destination)
		if dest == "/" {
			t.fail("%s: cannot mount over the root", field)
			return
		}
		bind := spec.IsBind(m)
		std := ""
		if !bind && !done[dest] {
			std = dest + " " + m.Type
		}
		switch {
		case std == "/proc proc" && subset(m.Options, autoProcOpts):
			t.mp.auto = append(t.mp.auto, "proc:rw")
		case std == "/sys sysfs" && subset(m.Options, autoSysOpts):
			if slices.Contains(m.Options, "ro") {
				t.mp.auto = append(t.mp.auto, "sys:ro")
			} else {
				t.mp.auto = append(t.mp.auto, "sys:rw")
			}
		case std == "/sys/fs/cgroup cgroup" || std == "/sys/fs/cgroup cgroup2":
			if slices.Contains(m.Options, "ro") {
				t.mp.auto = append(t.mp.auto, "cgroup:ro:force")
			} else {
				t.mp.auto = append(t.mp.auto, "cgroup:mixed:force")
			}
		case !bind && (m.Type == "cgroup" || m.Type == "cgroup2"):
			t.fail("%s: LXC mounts cgroups only at /sys/fs/cgroup", field)
			return
		case std == "/dev tmpfs":
			t.mp.autodev = true
			t.devTmpfs(m)
		case std == "/dev/pts devpts":
			t.devpts(m)
		default:
			t.entry(field, dest, m, bind)
		}
		if t.err != nil {
			return
		}
		done[dest] = true
	}
}

func subset(opts, allowed []string) bool {
	for _, o := range opts {
		if !slices.Contains(allowed, o) {
			return false
		}
	}
	return true
}

// devTmpfs: LXC's autodev tmpfs is mode=755 with lxc.autodev.tmpfs.size
// bytes (mount_autodev: "size=%d,mode=755", no mount flags).
func (t *translator) devTmpfs(m specs.Mount) {
	var other []string
	for _, o := range m.Options {
		switch {
		case strings.HasPrefix(o, "size="):
			n, err := parseSize(strings.TrimPrefix(o, "size="))
			if err != nil || n > math.MaxInt32 {
				t.fail("mounts /dev: size %q: want bytes with an optional k, m or g suffix, below 2 GiB", o)
				return
			}
			t.mp.devSize = n
		case o == "mode=755" || o == "mode=0755" || o == "rw":
		default:
			other = append(other, o)
		}
	}
	if len(other) > 0 {
		t.warn("mounts /dev: LXC's autodev tmpfs is mounted without %s", strings.Join(other, ","))
	}
}

// devpts: LXC mounts a new devpts instance nosuid,noexec with
// "newinstance,ptmxmode=0666,mode=0620,gid=5,max=N" when lxc.pty.max = N.
func (t *translator) devpts(m specs.Mount) {
	t.mp.ptyMax = 1024 // LXC's own default config's value
	var other []string
	for _, o := range m.Options {
		switch {
		case strings.HasPrefix(o, "max="):
			n, err := strconv.Atoi(strings.TrimPrefix(o, "max="))
			if err != nil || n < 1 {
				t.fail("mounts /dev/pts: bad option %q", o)
				return
			}
			t.mp.ptyMax = n
		case slices.Contains([]string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "mode=620", "gid=5", "rw"}, o):
		default:
			other = append(other, o)
		}
	}
	if len(other) > 0 {
		t.warn("mounts /dev/pts: LXC mounts devpts with newinstance,ptmxmode=0666,mode=0620,gid=5, not %s", strings.Join(other, ","))
	}
}

// parseSize reads a tmpfs size: bytes with an optional k, m or g suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, errors.New("bad size")
	}
	return n * mult, nil
}

// entry plans one lxc.mount.entry: "SOURCE DEST TYPE OPTIONS 0 0" in
// fstab syntax (LXC reads the entries with getmntent, which decodes octal
// escapes), DEST relative to the rootfs (LXC resolves it beneath the
// mounted rootfs). The mount point is created as runc creates it: a bind
// of a file gets a file, anything else a directory.
func (t *translator) entry(field, dest string, m specs.Mount, bind bool) {
	typ, src := m.Type, m.Source
	var opts []string
	hasBind := false
	recursive := slices.Contains(m.Options, "rbind")
	for _, o := range m.Options {
		switch {
		case o == "bind" || o == "rbind":
			if !hasBind {
				hasBind = true
				if recursive {
					opts = append(opts, "rbind")
				} else {
					opts = append(opts, "bind")
				}
			}
		case o == "defaults":
		case o == "remount":
			t.fail("%s: option remount makes no sense in a spec mount", field)
			return
		case o == "tmpcopyup" || o == "copy-symlink":
			t.fail("%s: option %s has no LXC equivalent (the mount would start empty)", field, o)
			return
		case o == "idmap" || o == "ridmap" || strings.HasPrefix(o, "idmap=") || strings.HasPrefix(o, "ridmap="):
			t.fail("%s: idmapped mounts are not supported by the lxc backend", field)
			return
		case recursiveOpts[o] != "":
			// Without rbind there are no submounts, so the attribute on the
			// one mount is the same thing; with rbind LXC cannot make it
			// recursive, and the submounts would keep e.g. write access.
			if bind && recursive {
				t.fail("%s: recursive option %s has no LXC equivalent on an rbind (its submounts would not get it)", field, o)
				return
			}
			opts = append(opts, recursiveOpts[o])
		case strings.ContainsAny(o, ", \t\n"):
			t.fail("%s: option %q cannot be written as an fstab option", field, o)
			return
		case slices.Contains(propagationOpts, o):
			// LXC 5.0.2 applies it when it mounts the entry ("Changed mount
			// propagation" in its log), yet the running container's mounts
			// show up shared among themselves: seen on this LXC, not what a
			// spec asking for it expects.
			t.warn("%s: LXC applies propagation %s when it mounts the entry, but its later rootfs setup changes propagation again; not guaranteed", field, o)
			opts = append(opts, o)
		case bind && !strings.Contains(o, "=") && !slices.Contains(lxcMountFlags, o):
			// LXC would pass it to the kernel as data, which a bind
			// ignores: the option would be lost.
			t.fail("%s: option %s is not one LXC 5.0 applies to a bind mount", field, o)
			return
		default:
			opts = append(opts, o)
		}
	}
	if bind {
		if !path.IsAbs(src) {
			t.fail("%s: bind source %q is not an absolute path", field, src)
			return
		}
		typ = "none"
		if !hasBind {
			opts = append([]string{"bind"}, opts...)
		}
		if t.set.SourceIsFile != nil && t.set.SourceIsFile(src) {
			opts = append(opts, "create=file")
		} else {
			opts = append(opts, "create=dir")
		}
	} else {
		if typ == "" {
			t.fail("%s: a mount that is not a bind needs a type", field)
			return
		}
		opts = append(opts, "create=dir")
	}
	if src == "" {
		src = "none"
	}
	if !strings.HasPrefix(dest, "/dev/") {
		t.mp.createsOut = true
	}
	t.mp.entries = append(t.mp.entries, fstabEntry(src, dest, typ, opts))
}

// fstabEntry is an lxc.mount.entry value; dest is absolute in the
// container and written relative to the rootfs.
func fstabEntry(src, dest, typ string, opts []string) string {
	o := "defaults"
	if len(opts) > 0 {
		o = strings.Join(opts, ",")
	}
	return fmt.Sprintf("%s %s %s %s 0 0", escapeFstab(src), escapeFstab(strings.TrimPrefix(dest, "/")), escapeFstab(typ), escapeFstab(o))
}

// escapeFstab octal-escapes what an fstab field cannot hold (getmntent
// decodes \040 space, \011 tab, \012 newline and \134 backslash).
func escapeFstab(s string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(s)
}

func (t *translator) mounts() {
	if len(t.mp.auto) > 0 {
		t.add("mounts", "lxc.mount.auto", strings.Join(t.mp.auto, " "))
	}
	for _, e := range t.mp.entries {
		t.add("mounts", "lxc.mount.entry", e)
	}
}

// autodevNodes are the nodes LXC's autodev creates (lxc_fill_autodev),
// mode 0666, owned by root.
var autodevNodes = map[string][2]int64{
	"/dev/null": {1, 3}, "/dev/zero": {1, 5}, "/dev/full": {1, 7},
	"/dev/random": {1, 8}, "/dev/urandom": {1, 9}, "/dev/tty": {5, 0},
}

// devices: LXC does not mknod spec devices. The ones autodev creates are
// there; /dev/ptmx comes with the devpts instance; any other device is
// bind-mounted from the host's node at the same path (a runtime cannot
// create a device node in a user namespace either, so runc binds too
// there). Access is still governed by the device cgroup.
func (t *translator) devices() {
	for i, d := range t.lx.Devices {
		p := path.Clean(d.Path)
		field := fmt.Sprintf("linux.devices[%d] (%s)", i, d.Path)
		if !path.IsAbs(d.Path) || p == "/" {
			t.fail("%s: the path must be absolute", field)
			return
		}
		switch d.Type {
		case "c", "u", "b":
		case "p":
			t.fail("%s: LXC cannot create a FIFO device", field)
			return
		default:
			t.fail("%s: unknown device type %q", field, d.Type)
			return
		}
		if std, ok := autodevNodes[p]; ok && t.mp.autodev {
			if d.Type == "b" || d.Major != std[0] || d.Minor != std[1] {
				t.fail("%s: LXC's autodev creates %s as c %d:%d, not %s %d:%d", field, p, std[0], std[1], d.Type, d.Major, d.Minor)
				return
			}
			if (d.FileMode != nil && d.FileMode.Perm() != 0o666) || (d.UID != nil && *d.UID != 0) || (d.GID != nil && *d.GID != 0) {
				t.warn("%s: LXC creates it with mode 0666, owned by root", field)
			}
			continue
		}
		if p == "/dev/ptmx" && t.mp.ptyMax > 0 {
			continue
		}
		if p == "/dev/console" {
			t.warn("%s: not created (the lxc backend handles the terminal; lxc.console.path = none)", field)
			continue
		}
		t.add(field, "lxc.mount.entry", fstabEntry(p, p, "none", []string{"bind", "create=file"}))
		t.warn("%s: bind-mounted from the host's %s (LXC cannot create device nodes), with the host node's numbers, mode and owner", field, p)
	}
}

// readonlyPaths: a read-only bind of the path onto itself, "relative" to
// the mounted rootfs, after /proc and /sys are mounted. "optional": runc
// skips a path that does not exist, and so does LXC with it.
func (t *translator) readonlyPaths() {
	for i, p := range t.lx.ReadonlyPaths {
		d := path.Clean("/" + p)
		if !path.IsAbs(p) || d == "/" {
			t.fail("linux.readonlyPaths[%d]: %q is not an absolute path below /", i, p)
			return
		}
		rel := strings.TrimPrefix(d, "/")
		t.add("linux.readonlyPaths", "lxc.mount.entry", fmt.Sprintf("%s %s none rbind,ro,relative,optional 0 0", escapeFstab(rel), escapeFstab(rel)))
	}
}

// maskedKind says whether a well-known masked path (runc's, Docker's,
// containerd's and Podman's defaults) is a file or a directory.
var maskedKind = map[string]bool{ // true = directory
	"/proc/acpi": true, "/proc/asound": true, "/proc/scsi": true, "/proc/bus": true, "/proc/fs": true,
	"/proc/irq": true, "/proc/sys": true, "/sys/firmware": true, "/sys/devices/virtual/powercap": true,
	"/sys/fs/selinux": true, "/sys/dev/block": true,
	"/proc/kcore": false, "/proc/keys": false, "/proc/latency_stats": false, "/proc/timer_list": false,
	"/proc/timer_stats": false, "/proc/sched_debug": false, "/proc/interrupts": false,
	"/proc/sysrq-trigger": false,
}

// maskedPaths: as runc, /dev/null over a file and a read-only tmpfs over a
// directory, "optional" because runc skips a path that does not exist.
// For a path not in maskedKind, translation cannot look at the rootfs, so
// it gets both: a bind of a file fails on a directory (ENOTDIR) and a
// tmpfs fails on a file, so exactly the right one stays (LXC logs the
// other's failure, at error level, and goes on).
func (t *translator) maskedPaths() {
	for i, p := range t.lx.MaskedPaths {
		d := path.Clean("/" + p)
		if !path.IsAbs(p) || d == "/" {
			t.fail("linux.maskedPaths[%d]: %q is not an absolute path below /", i, p)
			return
		}
		rel := escapeFstab(strings.TrimPrefix(d, "/"))
		dir, known := maskedKind[d]
		if !known || !dir {
			t.add("linux.maskedPaths", "lxc.mount.entry", fmt.Sprintf("/dev/null %s none bind,optional 0 0", rel))
		}
		if !known || dir {
			t.add("linux.maskedPaths", "lxc.mount.entry", fmt.Sprintf("tmpfs %s tmpfs ro,optional 0 0", rel))
		}
	}
}

// ----------------------------------------------------------------------
// process

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

// ----------------------------------------------------------------------
// sysctl

var ipcSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

// sysctl: lxc.sysctl.KEY. LXC writes any key it is given, and a sysctl
// that is not namespaced changes the host (the man page says so), so only
// the ones runc allows pass: IPC ones in an IPC namespace, net.* in a
// network namespace that is not the host's, kernel.domainname in a UTS
// namespace. LXC turns every '.' of the key into '/', so a key written
// with '/' must hold no '.' (an interface name like eth0.100).
// spec.domainname is kernel.domainname.
func (t *translator) sysctl() {
	sc := map[string]string{}
	for k, v := range t.lx.Sysctl {
		sc[k] = v
	}
	if d := t.s.Domainname; d != "" {
		if !t.newNS(specs.UTSNamespace) {
			t.fail("domainname: setting the domain name needs a new UTS namespace")
			return
		}
		if v, ok := sc["kernel.domainname"]; ok && v != d {
			t.fail("domainname: %q conflicts with linux.sysctl kernel.domainname %q", d, v)
			return
		}
		sc["kernel.domainname"] = d
	}
	for _, k := range slices.Sorted(maps.Keys(sc)) {
		field := fmt.Sprintf("linux.sysctl %q", k)
		if strings.Contains(k, "/") && strings.Contains(k, ".") {
			t.fail("%s: LXC turns every '.' of a sysctl name into '/', so a name written with '/' cannot hold a '.'", field)
			return
		}
		dotted := strings.ReplaceAll(k, "/", ".")
		_, ipc := t.ns[specs.IPCNamespace]
		_, uts := t.ns[specs.UTSNamespace]
		_, net := t.ns[specs.NetworkNamespace]
		switch {
		case slices.Contains(ipcSysctls, dotted) || strings.HasPrefix(dotted, "fs.mqueue."):
			if !ipc {
				t.fail("%s: not allowed in the host's IPC namespace", field)
				return
			}
		case strings.HasPrefix(dotted, "net."):
			if !net {
				t.fail("%s: not allowed in the host's network namespace", field)
				return
			}
		case dotted == "kernel.domainname" && uts:
		case dotted == "kernel.hostname" && uts:
			t.fail("%s: conflicts with the hostname field", field)
			return
		default:
			t.fail("%s: not in a separate kernel namespace (LXC would change the host's setting)", field)
			return
		}
		t.add(field, "lxc.sysctl."+k, sc[k])
	}
}

// ----------------------------------------------------------------------
// cgroups

// runcDefaultDevices are the device rules runc appends to every
// container's (specconv.AllowedDevices); path is the node a rule is for.
var runcDefaultDevices = []struct {
	rule devRule
	path string
}{
	{devRule{allow: true, typ: 'c', major: -1, minor: -1, access: "m"}, ""},
	{devRule{allow: true, typ: 'b', major: -1, minor: -1, access: "m"}, ""},
	{devRule{allow: true, typ: 'c', major: 1, minor: 3, access: "rwm"}, "/dev/null"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 8, access: "rwm"}, "/dev/random"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 7, access: "rwm"}, "/dev/full"},
	{devRule{allow: true, typ: 'c', major: 5, minor: 0, access: "rwm"}, "/dev/tty"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 5, access: "rwm"}, "/dev/zero"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 9, access: "rwm"}, "/dev/urandom"},
	{devRule{allow: true, typ: 'c', major: 136, minor: -1, access: "rwm"}, ""}, // /dev/pts/*
	{devRule{allow: true, typ: 'c', major: 5, minor: 2, access: "rwm"}, ""},    // /dev/ptmx
	{devRule{allow: true, typ: 'c', major: 10, minor: 200, access: "rwm"}, ""}, // /dev/net/tun
}

func (t *translator) cg(field, key, value string) {
	prefix := "lxc.cgroup."
	if t.set.CgroupV2 {
		prefix = "lxc.cgroup2."
	}
	t.add(field, prefix+key, value)
}

// cgroups: linux.resources on the host's layout (v1: lxc.cgroup.*, v2:
// lxc.cgroup2.*), with runc's conversions for v2.
func (t *translator) cgroups() {
	if p := t.lx.CgroupsPath; p != "" {
		t.warn("linux.cgroupsPath: %q is not applied; LXC creates the container's cgroup itself (lxc.payload.%s)", p, t.id)
	}
	r := t.lx.Resources
	if r == nil {
		r = &specs.LinuxResources{}
	}
	t.memory(r.Memory)
	t.cpu(r.CPU)
	if r.Pids != nil && r.Pids.Limit != nil {
		// As runc: 0 is "1" (systemd cannot set 0), below 0 unlimited.
		v := "max"
		switch l := *r.Pids.Limit; {
		case l > 0:
			v = strconv.FormatInt(l, 10)
		case l == 0:
			v = "1"
		}
		t.cg("linux.resources.pids.limit", "pids.max", v)
	}
	t.blockIO(r.BlockIO)
	for i, h := range r.HugepageLimits {
		field := fmt.Sprintf("linux.resources.hugepageLimits[%d]", i)
		if !hugePageSize.MatchString(h.Pagesize) {
			t.fail("%s: page size %q is not like 2MB or 1GB", field, h.Pagesize)
			return
		}
		if t.set.CgroupV2 {
			t.cg(field, "hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
		} else {
			t.cg(field, "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
		}
	}
	for _, dev := range slices.Sorted(maps.Keys(r.Rdma)) {
		l := r.Rdma[dev]
		v := dev
		if l.HcaHandles != nil {
			v += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			v += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if v != dev {
			t.cg("linux.resources.rdma", "rdma.max", v)
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		if t.set.CgroupV2 {
			// runc ignores them on v2 too: there is no controller.
			t.warn("linux.resources.network: cgroup v2 has no net_cls/net_prio controller; classID and priorities are not applied")
		} else {
			if n.ClassID != nil {
				t.cg("linux.resources.network.classID", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
			}
			for _, p := range n.Priorities {
				t.cg("linux.resources.network.priorities", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
			}
		}
	}
	t.unified(r.Unified)
	t.deviceRules(r.Devices)
}

var hugePageSize = regexp.MustCompile(`^[0-9]+[KMG]B$`)

// memory: v1 limit_in_bytes (before memsw, which the kernel wants no
// smaller), memsw, soft limit; v2 memory.max, memory.swap.max (OCI swap is
// memory+swap: swap alone is the difference), memory.low, with runc's
// rules for -1 (max) and 0 (unset).
func (t *translator) memory(m *specs.LinuxMemory) {
	if m == nil {
		return
	}
	num := func(v int64) string {
		if v == -1 {
			return "max"
		}
		return strconv.FormatInt(v, 10)
	}
	var limit, swap int64
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil {
		swap = *m.Swap
	}
	if t.set.CgroupV2 {
		if limit != 0 {
			t.cg("linux.resources.memory.limit", "memory.max", num(limit))
		}
		switch {
		case limit == -1 && swap == 0:
			t.cg("linux.resources.memory.swap", "memory.swap.max", "max")
		case swap == -1:
			t.cg("linux.resources.memory.swap", "memory.swap.max", "max")
		case swap == 0:
		case limit == -1:
			t.cg("linux.resources.memory.swap", "memory.swap.max", num(swap))
		case limit == 0:
			t.fail("linux.resources.memory.swap: a swap limit needs a memory limit (cgroup v2 limits swap apart from memory)")
			return
		case swap < limit:
			t.fail("linux.resources.memory.swap: %d (memory+swap) is below the memory limit %d", swap, limit)
			return
		default:
			t.cg("linux.resources.memory.swap", "memory.swap.max", strconv.FormatInt(swap-limit, 10))
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			t.cg("linux.resources.memory.reservation", "memory.low", num(*m.Reservation))
		}
		if m.Swappiness != nil {
			t.warn("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness; %d is not applied", *m.Swappiness)
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			t.warn("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer; not applied")
		}
	} else {
		if limit != 0 {
			t.cg("linux.resources.memory.limit", "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
		}
		if swap != 0 {
			t.cg("linux.resources.memory.swap", "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			t.cg("linux.resources.memory.reservation", "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10))
		}
		if m.Swappiness != nil && int64(*m.Swappiness) != -1 {
			if *m.Swappiness > 100 {
				t.fail("linux.resources.memory.swappiness: %d is outside 0..100", *m.Swappiness)
				return
			}
			t.cg("linux.resources.memory.swappiness", "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			t.cg("linux.resources.memory.disableOOMKiller", "memory.oom_control", "1")
		}
	}
	if m.Kernel != nil || m.KernelTCP != nil { //nolint:staticcheck // deprecated, still read to warn
		t.warn("linux.resources.memory.kernel, kernelTCP: kernel memory limits are ignored (as runc does; the kernel dropped them)")
	}
	if m.UseHierarchy != nil {
		t.warn("linux.resources.memory.useHierarchy: not applied (runc ignores it as well; hierarchy is always on in current kernels)")
	}
	if m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate {
		t.warn("linux.resources.memory.checkBeforeUpdate: only meaningful for an update; ignored at create")
	}
}

// cpu: v1 cpu.shares, cfs_period_us, cfs_quota_us, cfs_burst_us,
// rt_period_us, rt_runtime_us; v2 cpu.weight (runc's conversion of
// shares), cpu.max "QUOTA PERIOD", cpu.max.burst. cpuset and cpu.idle
// are the same files on both.
func (t *translator) cpu(c *specs.LinuxCPU) {
	if c == nil {
		return
	}
	var quota int64
	var period uint64
	if c.Quota != nil {
		quota = *c.Quota
	}
	if c.Period != nil {
		period = *c.Period
	}
	if t.set.CgroupV2 {
		if c.Shares != nil && *c.Shares != 0 {
			t.cg("linux.resources.cpu.shares", "cpu.weight", strconv.FormatUint(cpuSharesToWeight(*c.Shares), 10))
		}
		if quota != 0 || period != 0 {
			v := "max"
			if quota > 0 {
				v = strconv.FormatInt(quota, 10)
			}
			if period == 0 {
				period = 100000 // the kernel's default period
			}
			t.cg("linux.resources.cpu.quota", "cpu.max", v+" "+strconv.FormatUint(period, 10))
		}
		if c.Burst != nil {
			t.cg("linux.resources.cpu.burst", "cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
		}
		if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			t.fail("linux.resources.cpu.realtimeRuntime: cgroup v2 has no real-time CPU budget")
			return
		}
	} else {
		if c.Shares != nil && *c.Shares != 0 {
			t.cg("linux.resources.cpu.shares", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		if period != 0 {
			t.cg("linux.resources.cpu.period", "cpu.cfs_period_us", strconv.FormatUint(period, 10))
		}
		if quota != 0 {
			t.cg("linux.resources.cpu.quota", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10))
		}
		if c.Burst != nil {
			t.cg("linux.resources.cpu.burst", "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10))
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			t.cg("linux.resources.cpu.realtimePeriod", "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			t.cg("linux.resources.cpu.realtimeRuntime", "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10))
		}
	}
	if c.Idle != nil {
		t.cg("linux.resources.cpu.idle", "cpu.idle", strconv.FormatInt(*c.Idle, 10))
	}
	if c.Cpus != "" {
		t.cg("linux.resources.cpu.cpus", "cpuset.cpus", c.Cpus)
	}
	if c.Mems != "" {
		t.cg("linux.resources.cpu.mems", "cpuset.mems", c.Mems)
	}
}

// cpuSharesToWeight converts cgroup v1 cpu.shares (2..262144) to v2
// cpu.weight (1..10000) as runc does (opencontainers/cgroups
// ConvertCPUSharesToCgroupV2Value): a quadratic in log2(shares) that maps
// the minimum, the default (1024 -> 100) and the maximum onto each other.
// 0 is unset.
func cpuSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exponent := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exponent)))
}

// blkioToIOWeight converts a v1 blkio weight (10..1000) to a v2 io.weight
// (1..10000) as runc does: linearly.
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// blockIO: v1 blkio.*, v2 io.weight (converted) and io.max.
func (t *translator) blockIO(b *specs.LinuxBlockIO) {
	if b == nil {
		return
	}
	v2 := t.set.CgroupV2
	if b.Weight != nil && *b.Weight != 0 {
		if v2 {
			t.cg("linux.resources.blockIO.weight", "io.weight", strconv.FormatUint(blkioToIOWeight(*b.Weight), 10))
		} else {
			t.cg("linux.resources.blockIO.weight", "blkio.weight", strconv.FormatUint(uint64(*b.Weight), 10))
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if v2 {
			t.warn("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight; not applied")
		} else {
			t.cg("linux.resources.blockIO.leafWeight", "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10))
		}
	}
	for _, d := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		if d.Weight != nil && *d.Weight != 0 {
			if v2 {
				t.cg("linux.resources.blockIO.weightDevice", "io.weight", dev+" "+strconv.FormatUint(blkioToIOWeight(*d.Weight), 10))
			} else {
				t.cg("linux.resources.blockIO.weightDevice", "blkio.weight_device", dev+" "+strconv.FormatUint(uint64(*d.Weight), 10))
			}
		}
		if d.LeafWeight != nil && *d.LeafWeight != 0 {
			if v2 {
				t.warn("linux.resources.blockIO.weightDevice %s: cgroup v2 has no leaf weight; not applied", dev)
			} else {
				t.cg("linux.resources.blockIO.weightDevice", "blkio.leaf_weight_device", dev+" "+strconv.FormatUint(uint64(*d.LeafWeight), 10))
			}
		}
	}
	for _, th := range []struct {
		field, v1, v2 string
		devs          []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range th.devs {
			dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
			if v2 {
				t.cg("linux.resources.blockIO."+th.field, "io.max", fmt.Sprintf("%s %s=%d", dev, th.v2, d.Rate))
			} else {
				t.cg("linux.resources.blockIO."+th.field, th.v1, fmt.Sprintf("%s %d", dev, d.Rate))
			}
		}
	}
}

var unifiedKey = regexp.MustCompile(`^[a-z0-9_]+\.[a-z0-9_.]+$`)

// unified: raw cgroup v2 files, lxc.cgroup2.FILE; on v1 there are none.
func (t *translator) unified(u map[string]string) {
	if len(u) == 0 {
		return
	}
	if !t.set.CgroupV2 {
		t.fail("linux.resources.unified: the host uses cgroup v1, which has no cgroup v2 files to set")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(u)) {
		if !unifiedKey.MatchString(k) || strings.Contains(k, "..") {
			t.fail("linux.resources.unified: %q is not a cgroup file name", k)
			return
		}
		t.cg(fmt.Sprintf("linux.resources.unified %q", k), k, u[k])
	}
}

// devRule is a device cgroup rule in the kernel's v1 syntax; src names
// where it came from.
type devRule struct {
	allow        bool
	typ          byte // 'a', 'b', 'c'
	major, minor int64
	access       string
	src          string
}

func (r devRule) String() string {
	if r.typ == 'a' {
		return "a"
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), r.access)
}

// overlaps: some device and access is in both rules.
func (r devRule) overlaps(o devRule) bool {
	return (r.typ == 'a' || o.typ == 'a' || r.typ == o.typ) &&
		(r.major < 0 || o.major < 0 || r.major == o.major) &&
		(r.minor < 0 || o.minor < 0 || r.minor == o.minor) &&
		strings.ContainsAny(r.access, o.access)
}

// deviceRules: the spec's rules, then the ones runc appends to every
// container (null, zero, full, tty, random, urandom, ptys, tun, mknod of
// any device; a default it drops when linux.devices lists that node),
// starting from "deny all" as runc's device program does. On v1 they are
// devices.deny/allow in order, which the kernel applies in order. On v2
// LXC emulates them with an eBPF program whose semantics differ: "a"
// resets the list and picks allow- or deny-by-default, and a rule of the
// default's own kind is ignored (lxc.container.conf(5), CONTROL GROUPS).
// So on v2 a deny that would take back an earlier allow (or an allow
// that would undo an earlier deny) cannot be expressed and is refused.
func (t *translator) deviceRules(spec []specs.LinuxDeviceCgroup) {
	var rules []devRule
	for i, d := range spec {
		field := fmt.Sprintf("linux.resources.devices[%d]", i)
		r := devRule{allow: d.Allow, major: -1, minor: -1, access: d.Access, src: field}
		switch d.Type {
		case "", "a":
			r.typ = 'a'
		case "b", "c":
			r.typ = d.Type[0]
		default:
			t.fail("%s: unknown device type %q (a, b or c)", field, d.Type)
			return
		}
		if d.Major != nil {
			r.major = *d.Major
		}
		if d.Minor != nil {
			r.minor = *d.Minor
		}
		if r.access == "" || strings.Trim(r.access, "rwm") != "" {
			t.fail("%s: access %q: want letters of rwm", field, d.Access)
			return
		}
		if r.typ == 'a' && (r.major >= 0 || r.minor >= 0 || len(r.access) != 3) {
			t.warn("%s: a rule for type a covers every device and access (as in the kernel); its numbers and access %q are not applied", field, d.Access)
		}
		rules = append(rules, r)
	}
	var nodes []string
	for _, d := range t.lx.Devices {
		nodes = append(nodes, path.Clean(d.Path))
	}
	for _, d := range runcDefaultDevices {
		if d.path != "" && slices.Contains(nodes, d.path) {
			continue
		}
		r := d.rule
		r.src = "runc's default device rule " + r.String()
		rules = append(rules, r)
	}
	if rules[0].typ != 'a' {
		rules = append([]devRule{{typ: 'a', access: "rwm"}}, rules...)
	}
	var local []devRule // v2: the exceptions since the last "a"
	allowAll := false
	for _, r := range rules {
		if t.set.CgroupV2 {
			switch {
			case r.typ == 'a':
				allowAll, local = r.allow, nil
			case r.allow == allowAll:
				// LXC ignores a rule of the default's own kind: fine when
				// it changes nothing, refused when it would take back an
				// earlier exception.
				for _, l := range local {
					if l.overlaps(r) {
						t.fail("%s: on cgroup v2, LXC's device program cannot take back the earlier %s %s after a default %s (it ignores such rules)", r.src, map[bool]string{true: "allow", false: "deny"}[l.allow], l, map[bool]string{true: "allow", false: "deny"}[allowAll])
						return
					}
				}
				continue
			default:
				local = append(local, r)
			}
		}
		key := "devices.deny"
		if r.allow {
			key = "devices.allow"
		}
		t.cg("linux.resources.devices", key, r.String())
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

// ----------------------------------------------------------------------
// hooks

// hooks: prestart and createRuntime run on the host after the container
// is set up (lxc.hook.start-host), createContainer in the container's
// mount namespace before pivot_root, where host paths still resolve
// (lxc.hook.mount). LXC runs a hook line with /bin/sh -c, so the runner
// and state directory are shell-quoted; lxc.hook.version = 1 passes LXC's
// own arguments in the environment instead of appending them to ours.
func (t *translator) hooks() {
	h := t.s.Hooks
	if h == nil {
		return
	}
	if len(h.StartContainer) > 0 {
		t.fail("hooks.startContainer is not supported by the lxc backend (LXC's start hook runs inside the container, where the hook runner does not exist)")
		return
	}
	t.cfg.PostStart, t.cfg.PostStop = h.Poststart, h.Poststop
	type hook struct{ lxc, kind string }
	var want []hook
	if len(h.Prestart)+len(h.CreateRuntime) > 0 { //nolint:staticcheck // prestart is deprecated but still run
		want = append(want, hook{"start-host", "createRuntime"})
	}
	if len(h.CreateContainer) > 0 {
		want = append(want, hook{"mount", "createContainer"})
	}
	if len(want) == 0 {
		return
	}
	if !path.IsAbs(t.set.HookRunner) || !path.IsAbs(t.set.StateDir) {
		t.fail("hooks: the lxc backend needs the hook runner and the state directory as absolute paths (got %q, %q)", t.set.HookRunner, t.set.StateDir)
		return
	}
	t.add("hooks", "lxc.hook.version", "1")
	for _, w := range want {
		t.add("hooks."+w.kind, "lxc.hook."+w.lxc, fmt.Sprintf("%s lxc-hook %s %s", shellQuote(t.set.HookRunner), shellQuote(t.set.StateDir), w.kind))
	}
}

// shellQuote quotes s for /bin/sh when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>(){}*?[]#~!%=") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
