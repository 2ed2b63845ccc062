package lxc

// Translation of the platform, namespaces, id maps, hostname, rootfs,
// network, /dev and namespaced sysctls.

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/identifiers"
)

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
		h = identifiers.Hostname(t.id)
	}
	// LXC copies it into utsname.nodename (65 bytes with the NUL).
	if len(h) > 64 {
		t.fail("hostname: %q is longer than the kernel's 64 characters", h)
		return
	}
	t.add("hostname", "lxc.uts.name", h)
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
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid < 1 {
			t.fail("linux.namespaces: %s namespace path %q: bad pid", n.oci, p)
			return
		}
		if t.set.KeeperInit != nil {
			// An engine names another container by the pid it got for it
			// (podman's pod infra): an lxc keeper is in the host's
			// namespaces, its init in the container's.
			pid = t.set.KeeperInit(pid)
		}
		t.add("linux.namespaces", "lxc.namespace.share."+n.lxc, strconv.Itoa(pid))
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
		// Not lxc.sysctl: LXC 5.0 writes those through the container's
		// /proc after proc:mixed made /proc/sys read-only, and fails
		// ("Read-only file system") even for net.* in a private network
		// namespace. The mount hook writes them (hooks.go).
		if t.cfg.Sysctl == nil {
			t.cfg.Sysctl = map[string]string{}
		}
		t.cfg.Sysctl[k] = sc[k]
	}
}
