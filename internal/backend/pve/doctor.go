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
	return b.tr.doctor(ctx, b.tr.version)
}

// doctor checks the API: the url, TLS and login (through /version),
// then the node: a configured one must be in the cluster and online; with
// "auto", the node placement would pick, which needs both storages and the
// bridge. Last, the template cache, which needs no root but must be
// writable.
func (t *apiTransport) doctor(ctx context.Context, version func(context.Context) (Version, error)) []backend.Check {
	var checks []backend.Check
	if t.c.urlNote != "" {
		checks = append(checks, backend.Check{Name: "pve: url", Warn: true, Detail: t.c.urlNote})
	}
	c := backend.Check{Name: "pve: api " + t.cfg.URL}
	v, err := version(ctx)
	if err != nil {
		c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
		return append(checks, c)
	}
	c.OK, c.Detail = true, "pve-manager "+v.String()
	checks = append(checks, c)
	c = backend.Check{Name: "pve: node (" + cmpOr(t.cfg.Node, "auto") + ")"}
	var node string
	if t.cfg.Node != "" && t.cfg.Node != "auto" {
		if err := t.checkNode(ctx, t.cfg.Node); err != nil {
			c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
		} else {
			node = t.cfg.Node
			c.OK, c.Detail = true, "new CTs go to "+t.cfg.Node+" (in the cluster, online)"
		}
	} else if node, _, err = t.place(ctx); err != nil {
		c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
	} else {
		c.OK, c.Detail = true, "new CTs go to "+node
		c.Detail += " (most free memory with storages " + t.cfg.RootfsStorage + ", " + t.cfg.TemplateStorage + " and bridge " + t.cfg.Bridge + ")"
	}
	checks = append(checks, c)
	if node != "" {
		// What a create reads next: the node's package versions, which
		// need Sys.Audit on the node.
		c = backend.Check{Name: "pve: versions on " + node}
		if mv, cv, err := t.versions(ctx, node); err != nil {
			c.Detail, c.Hint = errdefs.Text(err), errdefs.Hint(err)
		} else {
			c.OK, c.Detail = true, "pve-manager "+mv.String()+", pve-container "+cv.String()
		}
		checks = append(checks, c)
	}
	return append(checks, backend.WritableCheck("pve: template_cache", t.cacheDir, "set [pve] template_cache to a directory the user running proxcage can write, or run proxcage as root"))
}

func cmpOr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// doctor checks what the pct transport needs from the node.
func (t *pctTransport) doctor(ctx context.Context, version func(context.Context) (Version, error)) []backend.Check {
	checks := []backend.Check{backend.RootCheck(Name, "pct and lxc-attach")}
	missing := []string{}
	for _, bin := range []string{t.tools.pct, t.tools.pvesh, t.tools.pvesm, t.tools.pveversion, t.tools.lxcInfo, t.tools.lxcAttach} {
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
	if v, err := version(ctx); err != nil {
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
		t.checkStorage(ctx, t.cfg.TemplateStorage, "vztmpl", "template_storage"),
		t.checkStorage(ctx, t.cfg.RootfsStorage, "rootdir", "rootfs_storage"),
		t.checkBridge(ctx),
	)
	c = backend.Check{Name: "pve: vmid range", OK: true, Detail: "any VMID from /cluster/nextid"}
	if t.vmids != nil {
		c.Detail = fmt.Sprintf("%d-%d", t.vmids.first, t.vmids.last)
	}
	return append(checks, c)
}

func (t *pctTransport) checkStorage(ctx context.Context, storage, content, key string) backend.Check {
	c := backend.Check{Name: fmt.Sprintf("pve: storage %s (%s)", storage, content)}
	out, err := t.tools.run(ctx, 0, t.tools.pvesm, "status", "--content", content)
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

func (t *pctTransport) checkBridge(ctx context.Context) backend.Check {
	c := backend.Check{Name: "pve: bridge " + t.cfg.Bridge}
	out, err := t.tools.run(ctx, 0, t.tools.pvesh, "get", "/nodes/localhost/network", "--type", "any_bridge", "--output-format", "json")
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
		if r.Iface == t.cfg.Bridge {
			c.OK, c.Detail = true, "exists"
			return c
		}
	}
	c.Detail = "no such bridge on this node"
	c.Hint = bridgeHint(t.cfg.Bridge)
	return c
}
