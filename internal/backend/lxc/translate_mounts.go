package lxc

// Translation of spec.mounts, devices, readonly and masked paths.

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/lxctools"
	"github.com/proxcage/proxcage/internal/spec"
)

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
	esc := lxctools.EscapeMountPath // getmntent decodes the octal escapes
	return fmt.Sprintf("%s %s %s %s 0 0", esc(src), esc(strings.TrimPrefix(dest, "/")), esc(typ), esc(o))
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
		t.add("linux.readonlyPaths", "lxc.mount.entry", fmt.Sprintf("%s %s none rbind,ro,relative,optional 0 0", lxctools.EscapeMountPath(rel), lxctools.EscapeMountPath(rel)))
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
		rel := lxctools.EscapeMountPath(strings.TrimPrefix(d, "/"))
		dir, known := maskedKind[d]
		if !known || !dir {
			t.add("linux.maskedPaths", "lxc.mount.entry", fmt.Sprintf("/dev/null %s none bind,optional 0 0", rel))
		}
		if !known || dir {
			t.add("linux.maskedPaths", "lxc.mount.entry", fmt.Sprintf("tmpfs %s tmpfs ro,optional 0 0", rel))
		}
	}
}
