package native

import (
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/cgroups"

	"github.com/proxcage/proxcage/internal/backend"
)

// Doctor implements backend.Doctor: what libcontainer needs from the host.
func (b *Backend) Doctor(ctx context.Context) []backend.Check {
	return []backend.Check{
		backend.RootCheck(Name, "namespaces, cgroups and mounts"),
		checkNamespaces(),
		checkCgroups(),
		checkSeccomp(),
		checkPivotRoot(),
	}
}

func checkNamespaces() backend.Check {
	c := backend.Check{Name: "native: namespaces"}
	var missing []string
	for _, ns := range []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			missing = append(missing, ns)
		}
	}
	if len(missing) > 0 {
		c.Detail = "missing: " + strings.Join(missing, ", ")
		c.Hint = "use a kernel built with CONFIG_NAMESPACES and the missing namespace options"
		return c
	}
	c.OK, c.Detail = true, "mnt uts ipc pid net user cgroup"
	return c
}

func checkCgroups() backend.Check {
	c := backend.Check{Name: "native: cgroups"}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		c.Detail = err.Error()
		c.Hint = "mount cgroupfs at /sys/fs/cgroup (v2: mount -t cgroup2 none /sys/fs/cgroup)"
		return c
	}
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		c.OK, c.Detail = true, "v2 (unified)"
	case cgroups.IsCgroup2HybridMode():
		c.OK, c.Detail = true, "v1 hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
	default:
		c.OK, c.Detail = true, "v1 (legacy)"
	}
	if !c.OK {
		return c
	}
	var missing []string
	if !cgroups.IsCgroup2UnifiedMode() {
		for _, ctrl := range []string{"memory", "cpu", "pids", "freezer", "devices"} {
			if _, err := os.Stat("/sys/fs/cgroup/" + ctrl); err != nil {
				missing = append(missing, ctrl)
			}
		}
	}
	if len(missing) > 0 {
		c.OK = false
		c.Detail += "; controllers not mounted: " + strings.Join(missing, ", ")
		c.Hint = "mount the missing v1 controllers under /sys/fs/cgroup, or boot with cgroup v2"
	}
	return c
}

func checkSeccomp() backend.Check {
	c := backend.Check{Name: "native: seccomp"}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil || !strings.Contains(string(data), "\nSeccomp:") {
		c.Detail = "kernel without seccomp support"
		c.Hint = "profiles in config.json will fail; use a kernel with CONFIG_SECCOMP_FILTER"
		return c
	}
	if !seccompCompiledIn {
		c.Detail = "kernel supports it, but this proxcage was built without libseccomp"
		c.Hint = "rebuild with `make build` (needs libseccomp-dev; builds with -tags seccomp)"
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("kernel filter support, libseccomp %s", seccompVersion())
	return c
}

func checkPivotRoot() backend.Check {
	c := backend.Check{Name: "native: pivot_root"}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		c.Detail = err.Error()
		return c
	}
	const ramfsMagic = 0x858458f6
	if st.Type == ramfsMagic {
		c.Detail = "/ is on ramfs (initramfs): pivot_root fails there"
		c.Hint = "use `proxcage create --no-pivot`, or switch_root to a real root filesystem"
		return c
	}
	c.OK, c.Detail = true, "/ is not ramfs"
	return c
}
