package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// Doctor implements backend.Doctor: what the transport needs.
func (b *Backend) Doctor(ctx context.Context) []backend.Check {
	if t, ok := b.tr.(*apiTransport); ok {
		return b.apiDoctor(ctx, t)
	}
	return b.pctDoctor(ctx)
}

// apiDoctor checks the API: the url, TLS and login (through /version),
// then the node: a configured one must be in the cluster and online; with
// "auto", the node placement would pick, which needs both storages and the
// bridge. Last, the template cache, which needs no root but must be
// writable.
func (b *Backend) apiDoctor(ctx context.Context, t *apiTransport) []backend.Check {
	var checks []backend.Check
	if t.c.urlNote != "" {
		checks = append(checks, backend.Check{Name: "pve: url", Warn: true, Detail: t.c.urlNote})
	}
	c := backend.Check{Name: "pve: api " + b.cfg.URL}
	v, err := b.version(ctx)
	if err != nil {
		c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
		return append(checks, c)
	}
	c.OK, c.Detail = true, "pve-manager "+v.String()
	checks = append(checks, c)
	c = backend.Check{Name: "pve: node (" + cmpOr(b.cfg.Node, "auto") + ")"}
	if b.cfg.Node != "" && b.cfg.Node != "auto" {
		if err := t.checkNode(ctx, b.cfg.Node); err != nil {
			c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
		} else {
			c.OK, c.Detail = true, "new CTs go to "+b.cfg.Node+" (in the cluster, online)"
		}
	} else if node, _, err := t.place(ctx); err != nil {
		c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
	} else {
		c.OK, c.Detail = true, "new CTs go to "+node
		c.Detail += " (most free memory with storages " + b.cfg.RootfsStorage + ", " + b.cfg.TemplateStorage + " and bridge " + b.cfg.Bridge + ")"
	}
	checks = append(checks, c)
	return append(checks, backend.WritableCheck("pve: template_cache", t.cacheDir, "set [pve] template_cache to a directory the user running proxcage can write, or run proxcage as root"))
}

func cmpOr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// pctDoctor checks what the pct transport needs from the node.
func (b *Backend) pctDoctor(ctx context.Context) []backend.Check {
	checks := []backend.Check{backend.RootCheck(Name, "pct and lxc-attach")}
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
	if v, err := b.version(ctx); err != nil {
		c.Detail, c.Hint = err.Error(), "pveversion must work on this node"
	} else {
		c.OK = true
		c.Detail = "pve-manager " + v.String()
		if v.AtLeast(9, 1) {
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
	c.Hint = bridgeHint(b.cfg.Bridge)
	return c
}
