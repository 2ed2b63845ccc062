package lxc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/lxctools"
)

// Doctor implements backend.Doctor: the tools, their version, the cgroup
// layout and, for veth networking, a bridge.
func (b *Backend) Doctor(ctx context.Context) []backend.Check {
	checks := []backend.Check{backend.RootCheck(Name, "lxc-execute, cgroups and the container's mounts")}
	var missing []string
	for _, tool := range []string{"lxc-execute", "lxc-info", "lxc-attach", "lxc-stop", "lxc-wait", "lxc-freeze", "lxc-unfreeze"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	c := backend.Check{Name: "lxc: tools", OK: len(missing) == 0, Detail: "lxc-execute lxc-info lxc-attach lxc-stop lxc-wait lxc-freeze found"}
	if !c.OK {
		c.Detail, c.Hint = "not found: "+strings.Join(missing, ", "), "apt-get install lxc"
	}
	checks = append(checks, c)

	// The version needs lxc-execute; the checks after it run either way,
	// so one doctor run names every problem.
	if c.OK {
		c = backend.Check{Name: "lxc: version"}
		out, err := lxctools.Tools{}.Run(ctx, "lxc-execute", "--version")
		v := strings.TrimSpace(out)
		var major int
		_, _ = fmt.Sscanf(v, "%d.", &major) // major stays 0 when v is not a version: reported below
		switch {
		case err != nil:
			c.Detail = err.Error()
		case major < 4:
			c.Detail, c.Hint = "LXC "+v, "LXC 4.0 or later is needed (lxc.namespace.*, lxc.init.cwd)"
		default:
			c.OK, c.Detail = true, "LXC "+v
		}
		checks = append(checks, c)
	}

	c = backend.Check{Name: "lxc: init.lxc", OK: true, Detail: "init.lxc.static found (lxc-execute's pid 1)"}
	found := false
	for _, p := range []string{"/usr/sbin/init.lxc.static", "/usr/lib/x86_64-linux-gnu/lxc/init.lxc.static", "/usr/libexec/lxc/init.lxc.static"} {
		if _, err := os.Stat(p); err == nil {
			found = true
		}
	}
	if !found {
		c.OK, c.Detail, c.Hint = false, "init.lxc.static not found", "install the lxc package (it ships init.lxc.static)"
	}
	checks = append(checks, c)

	c = backend.Check{Name: "lxc: " + InitHelper, OK: true}
	if p, err := b.initHelper(); err != nil {
		c.OK, c.Detail, c.Hint = false, errdefs.Text(err), errdefs.Hint(err)
	} else {
		c.Detail = p + " (holds a created container's process until start)"
	}
	checks = append(checks, c)

	c = backend.Check{Name: "lxc: cgroups", OK: true}
	if cgroupV2() {
		c.Detail = "cgroup v2 (unified): lxc.cgroup2.* limits"
	} else {
		c.Detail = "cgroup v1 (or hybrid): lxc.cgroup.* limits"
	}
	checks = append(checks, c)

	c = backend.Check{Name: "lxc: bridge lxcbr0", OK: true}
	if _, err := os.Stat("/sys/class/net/lxcbr0/bridge"); err == nil {
		c.Detail = "exists; note that proxcage gives lxc containers no network yet (a new, empty network namespace, as runc does)"
	} else {
		c.Detail = "absent (lxc-net creates it); proxcage gives lxc containers no network yet (as runc does), so nothing needs it"
	}
	return append(checks, c)
}
