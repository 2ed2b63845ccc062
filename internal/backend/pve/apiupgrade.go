package pve

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// apiUpgrade: the upgrade's steps over the REST API (pve-container
// 6.1.10 API2/LXC/Snapshot.pm snapshot/rollback/delsnapshot, API2/LXC/
// Config.pm update_vm, pve-storage API2/Storage/Content.pm delete). The
// config swap is a PUT of the image keys the API has (rootfs,
// entrypoint, env, cmode); the raw lxc.init.* lines it cannot write, so
// the backend refuses an upgrade that would change them (InitChanged).
type apiUpgrade struct{ t *apiTransport }

func (t *apiTransport) upgradeOps() upgradeOps { return &apiUpgrade{t} }

// unsupported refuses what the API cannot write or reach: the raw
// lxc.init.* lines of a changed init, and exec for a health check.
func (u *apiUpgrade) unsupported(next backend.UpgradeTarget) error {
	if len(next.InitChanged) > 0 {
		return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg: fmt.Sprintf("upgrade over the API: the new image changes %s, which PVE keeps in raw lxc.init.*/lxc.signal.halt lines of the CT config, and the API cannot write those (its config schema has no lxc key)",
				strings.Join(next.InitChanged, ", ")),
			Hint: "run `proxcage upgrade` on the CT's node with [pve] transport = \"pct\", or keep them as they were (-u, -w)"}
	}
	if next.Check != nil && next.ExecCheck {
		return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  "upgrade over the API: the health check (--health-cmd, or the image's HEALTHCHECK) runs in the CT (exec), which the API cannot reach",
			Hint: "run `proxcage upgrade` on the CT's node (transport \"pct\"), or pass --no-health-check (the CT must then still run after its start)"}
	}
	return nil
}

func (u *apiUpgrade) snapshot(ctx context.Context, node string, vmid int, name, desc string) error {
	return u.t.task(ctx, "snapshot CT", vmid, http.MethodPost, ctPath(node, vmid)+"/snapshot",
		url.Values{"snapname": {name}, "description": {desc}}, 0, nil)
}

func (u *apiUpgrade) rollback(ctx context.Context, node string, vmid int, name string) error {
	return u.t.task(ctx, "rollback CT", vmid, http.MethodPost, ctPath(node, vmid)+"/snapshot/"+url.PathEscape(name)+"/rollback", nil, 0, nil)
}

func (u *apiUpgrade) delsnapshot(ctx context.Context, node string, vmid int, name string) error {
	return u.t.task(ctx, "delete snapshot", vmid, http.MethodDelete, ctPath(node, vmid)+"/snapshot/"+url.PathEscape(name), nil, 0,
		func(err error) bool { return strings.Contains(err.Error(), "does not exist") })
}

func (u *apiUpgrade) shutdown(ctx context.Context, node string, vmid int, grace time.Duration) error {
	secs := int(grace / time.Second)
	if secs < 1 {
		secs = 1
	}
	return u.t.task(ctx, "shutdown CT", vmid, http.MethodPost, ctPath(node, vmid)+"/status/shutdown",
		url.Values{"timeout": {strconv.Itoa(secs)}, "forceStop": {"1"}}, 0, notRunning)
}

// render is a CT's config as pct's file would hold its keys, one
// "key: value" line each, sorted (no raw lxc lines: the API has none),
// and its digest.
func (u *apiUpgrade) render(ctx context.Context, node string, vmid int) (string, string, error) {
	conf, err := u.t.config(ctx, node, vmid)
	if err != nil {
		return "", "", err
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		if k != "digest" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s: %s\n", k, conf[k])
	}
	return sb.String(), conf["digest"], nil
}

func (u *apiUpgrade) readOne(ctx context.Context, node string, vmid int) (string, error) {
	c, _, err := u.render(ctx, node, vmid)
	return c, err
}

// swap PUTs, per CT, the image keys that differ between what it read
// and fn's text (those set, a delete= of those gone), with the digest it
// read: PVE refuses the PUT if the config changed meanwhile
// (update_vm's digest check). The scratch CT first, as over pct.
func (u *apiUpgrade) swap(ctx context.Context, node string, a, b int, fn func(ca, cb string) (string, string, error)) (string, string, error) {
	ca, da, err := u.render(ctx, node, a)
	if err != nil {
		return "", "", err
	}
	var cb, db string
	if b != 0 {
		if cb, db, err = u.render(ctx, node, b); err != nil {
			return "", "", err
		}
	}
	na, nb, err := fn(ca, cb)
	if err != nil {
		return ca, cb, err
	}
	for _, w := range []struct {
		vmid             int
		old, new, digest string
	}{{b, cb, nb, db}, {a, ca, na, da}} {
		if w.vmid == 0 {
			continue
		}
		params := imageKeyChanges(w.old, w.new)
		if len(params) == 0 {
			continue
		}
		if w.digest != "" {
			params.Set("digest", w.digest)
		}
		if err := u.t.c.call(ctx, "change the CT config", w.vmid, http.MethodPut, ctPath(node, w.vmid)+"/config", params, nil); err != nil {
			return ca, cb, err
		}
	}
	return ca, cb, nil
}

// imageKeyChanges are the PUT parameters that turn the image keys of
// old into new's.
func imageKeyChanges(old, new string) url.Values {
	o, n := keyValues(old), keyValues(new)
	params := url.Values{}
	var del []string
	for _, k := range imageKeys {
		ov, inOld := o[k]
		nv, inNew := n[k]
		switch {
		case inNew && nv != ov:
			params.Set(k, nv)
		case inOld && !inNew && k != "rootfs":
			del = append(del, k)
		}
	}
	if len(del) > 0 {
		params.Set("delete", strings.Join(del, ","))
	}
	return params
}

func keyValues(conf string) map[string]string {
	head, _ := mainSection(conf)
	out := map[string]string{}
	for _, l := range head {
		if k, v, ok := strings.Cut(l, ": "); ok {
			out[k] = v
		}
	}
	return out
}

func (u *apiUpgrade) deleteKey(ctx context.Context, node string, vmid int, key string) error {
	return u.t.c.call(ctx, "change the CT config", vmid, http.MethodPut, ctPath(node, vmid)+"/config", url.Values{"delete": {key}}, nil)
}

func (u *apiUpgrade) free(ctx context.Context, node, volid string) error {
	storage, _, _ := strings.Cut(volid, ":")
	parts := strings.Split(volid, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	path := nodePath(node) + "/storage/" + url.PathEscape(storage) + "/content/" + strings.Join(parts, "/")
	return u.t.task(ctx, "free volume", 0, http.MethodDelete, path, nil, 0, func(error) bool { return false })
}
