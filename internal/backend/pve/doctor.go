package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/proxcage/proxcage/internal/backend"
)

// Doctor implements backend.Doctor: what the pct transport needs from the
// node.
func (b *Backend) Doctor(ctx context.Context) []backend.Check {
	var checks []backend.Check
	t := &b.tools
	missing := []string{}
	for _, bin := range []string{t.pct, t.pvesh, t.pvesm, t.pveversion, t.lxcInfo, t.lxcAttach} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	c := backend.Check{Name: "pve: tools", OK: len(missing) == 0, Detail: "pct pvesh pvesm pveversion lxc-info lxc-attach found"}
	if !c.OK {
		c.Detail = "not found: " + strings.Join(missing, ", ")
		c.Hint = "run proxcage on a Proxmox VE node, or set their paths in [pve.tools]"
		return append(checks, c)
	}
	checks = append(checks, c)

	c = backend.Check{Name: "pve: version"}
	if node, err := b.nodeInfo(ctx); err != nil {
		c.Detail, c.Hint = err.Error(), "pveversion must work on this node"
	} else {
		c.OK = true
		c.Detail = "pve-manager " + node.Version.String()
		if node.Version.AtLeast(9, 1) {
			c.Detail += " (application containers supported)"
		} else {
			c.Detail += " (system containers only: application containers need 9.1)"
		}
	}
	checks = append(checks, c)
	checks = append(checks,
		b.checkStorage(ctx, b.cfg.TemplateStorage, "vztmpl", "template_storage"),
		b.checkStorage(ctx, b.cfg.RootfsStorage, "rootdir", "rootfs_storage"),
		b.checkBridge(ctx),
	)
	c = backend.Check{Name: "pve: vmid range", OK: true, Detail: "any VMID from /cluster/nextid"}
	if b.vmids != nil {
		c.Detail = fmt.Sprintf("%d-%d", b.vmids.first, b.vmids.last)
	}
	return append(checks, c)
}

func (b *Backend) checkStorage(ctx context.Context, storage, content, key string) backend.Check {
	c := backend.Check{Name: fmt.Sprintf("pve: storage %s (%s)", storage, content)}
	out, err := b.tools.run(ctx, 0, b.tools.pvesm, "status", "--content", content)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && f[0] == storage {
			c.OK, c.Detail = true, "allows "+content
			return c
		}
	}
	c.Detail = fmt.Sprintf("storage %q does not exist or does not allow content %s", storage, content)
	c.Hint = fmt.Sprintf("set [pve] %s to a storage listed by `pvesm status --content %s`", key, content)
	return c
}

func (b *Backend) checkBridge(ctx context.Context) backend.Check {
	c := backend.Check{Name: "pve: bridge " + b.cfg.Bridge}
	out, err := b.tools.run(ctx, 0, b.tools.pvesh, "get", "/nodes/localhost/network", "--type", "any_bridge", "--output-format", "json")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	var rows []struct {
		Iface string `json:"iface"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		c.Detail = "cannot parse pvesh network output: " + err.Error()
		return c
	}
	for _, r := range rows {
		if r.Iface == b.cfg.Bridge {
			c.OK, c.Detail = true, "exists"
			return c
		}
	}
	c.Detail = "no such bridge on this node"
	c.Hint = "set [pve] bridge to one of the node's bridges (pvesh get /nodes/localhost/network --type any_bridge)"
	return c
}
