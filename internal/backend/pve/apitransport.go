package pve

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/vztmpl"
)

// apiTransport drives PVE over its REST API, from any host. The API has
// no exec and reports no pid: the host pid, signals and lxc-attach work
// only when proxcage runs on the CT's node (local).
type apiTransport struct {
	c        *apiClient
	cfg      config.PVE
	cacheDir string    // where templates are built before upload
	hostname string    // this host's short name: a PVE node is named so
	host     *nodeHost // this host's, handed out for CTs on it
}

func newAPITransport(cfg config.PVE, c *apiClient, host *nodeHost) *apiTransport {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	dir := cfg.TemplateCache
	if dir == "" {
		dir = config.TemplateCacheDefault
	}
	return &apiTransport{c: c, cfg: cfg, cacheDir: dir, hostname: h, host: host}
}

func (t *apiTransport) name() string { return "api" }

// local: this host is node when it bears node's name and has the LXC
// tools a PVE node has.
func (t *apiTransport) local(node string) *nodeHost {
	if node == "" || node != t.hostname {
		return nil
	}
	if _, err := exec.LookPath(t.host.tools.lxcInfo); err != nil {
		return nil
	}
	return t.host
}

func (t *apiTransport) reachesAllNodes() bool { return true }

func (t *apiTransport) setsRawLines() bool { return false }

// clearsStaleLocks: no API call clears a lock (`pct unlock` runs on the
// CT's node only).
func (t *apiTransport) clearsStaleLocks() bool { return false }

func nodePath(node string) string { return "/nodes/" + url.PathEscape(node) }

func ctPath(node string, vmid int) string {
	return nodePath(node) + "/lxc/" + strconv.Itoa(vmid)
}

func (t *apiTransport) version(ctx context.Context) (Version, error) {
	var v struct {
		Version string `json:"version"`
	}
	if err := t.c.call(ctx, "GET /version", 0, http.MethodGet, "/version", nil, &v); err != nil {
		return Version{}, err
	}
	return parseVersion(v.Version, "GET /version")
}

// versions reads pve-manager's and pve-container's versions from the
// node's package list (pve-manager API2/APT.pm versions; Sys.Audit on the
// node).
func (t *apiTransport) versions(ctx context.Context, node string) (Version, Version, error) {
	var pkgs []struct {
		Package string `json:"Package"`
		Version string `json:"Version"`
	}
	path := nodePath(node) + "/apt/versions"
	if err := t.c.call(ctx, "GET "+path, 0, http.MethodGet, path, nil, &pkgs); err != nil {
		return Version{}, Version{}, t.unknownNode(ctx, node, err)
	}
	var vs [2]Version
	for i, name := range []string{"pve-manager", "pve-container"} {
		j := slices.IndexFunc(pkgs, func(p struct {
			Package string `json:"Package"`
			Version string `json:"Version"`
		}) bool {
			return p.Package == name
		})
		if j < 0 {
			return Version{}, Version{}, errdefs.New(errdefs.ErrInternal, "GET %s lists no %s package", path, name)
		}
		v, err := parseVersion(pkgs[j].Version, "GET "+path)
		if err != nil {
			return Version{}, Version{}, err
		}
		vs[i] = v
	}
	return vs[0], vs[1], nil
}

// clusterRow is a row of /cluster/resources of any type.
type clusterRow struct {
	resource
	MaxMem  int64  `json:"maxmem"`
	Mem     int64  `json:"mem"`
	Storage string `json:"storage"`
	Content string `json:"content"`
}

// place returns the configured node, or with node = "auto" (or unset) the
// online node with the most free memory that has both storages (with the
// right content) and the bridge. One /cluster/resources call gives nodes
// and storages (and the guests, returned for the caller's checks); only the
// chosen node's bridges are asked for. A configured node is not checked
// here (that would cost a call per create): a node PVE does not know fails
// the first call on it, and checkNode explains.
func (t *apiTransport) place(ctx context.Context) (string, []resource, error) {
	if t.cfg.Node != "" && t.cfg.Node != "auto" {
		return t.cfg.Node, nil, nil
	}
	var rows []clusterRow
	if err := t.c.call(ctx, "placement (GET /cluster/resources)", 0, http.MethodGet, "/cluster/resources", nil, &rows); err != nil {
		return "", nil, err
	}
	has := map[string]bool{} // "node/storage/content"
	var nodes []clusterRow
	guests := []resource{}
	making := map[string]int64{} // by node: the memory of guests being created
	for _, r := range rows {
		switch r.Type {
		case "lxc", "qemu":
			guests = append(guests, r.resource)
			if r.Lock == "create" && r.Status != "running" {
				making[r.Node] += r.MaxMem
			}
		case "node":
			if r.Status == "online" {
				nodes = append(nodes, r)
			}
		case "storage":
			if r.Status == "available" {
				for _, c := range strings.Split(r.Content, ",") {
					has[r.Node+"/"+r.Storage+"/"+c] = true
				}
			}
		}
	}
	// A node's free memory, less what the CTs other creators are making
	// there will take when they start.
	free := func(n clusterRow) int64 { return n.MaxMem - n.Mem - making[n.Node] }
	slices.SortStableFunc(nodes, func(a, b clusterRow) int { return cmp.Compare(free(b), free(a)) })
	if len(nodes) == 0 {
		return "", nil, &errdefs.Error{Cat: errdefs.ErrUnavailable, Msg: "no node can take the CT: no node is online",
			Hint: "wait for the cluster's nodes to come back (the PVE UI shows their status)"}
	}
	// Creators that read the cluster at the same moment see the same
	// numbers: among the nodes within 1/8 of the best, a random order,
	// so that they spread instead of all landing on one node.
	near := 1
	for near < len(nodes) && free(nodes[near]) >= free(nodes[0])-free(nodes[0])/8 {
		near++
	}
	rand.Shuffle(near, func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	var why []string
	lacks := map[string]int{} // what each node lacks, by [pve] key
	for _, n := range nodes {
		if !has[n.Node+"/"+t.cfg.RootfsStorage+"/rootdir"] {
			why = append(why, fmt.Sprintf("%s: no storage %s for rootdir", n.Node, t.cfg.RootfsStorage))
			lacks["rootfs_storage"]++
			continue
		}
		if !has[n.Node+"/"+t.cfg.TemplateStorage+"/vztmpl"] {
			why = append(why, fmt.Sprintf("%s: no storage %s for vztmpl", n.Node, t.cfg.TemplateStorage))
			lacks["template_storage"]++
			continue
		}
		if t.cfg.Bridge != "" {
			ok, err := t.hasBridge(ctx, n.Node)
			if err != nil {
				return "", nil, err
			}
			if !ok {
				why = append(why, fmt.Sprintf("%s: no bridge %s", n.Node, t.cfg.Bridge))
				lacks["bridge"]++
				continue
			}
		}
		t.c.log.Debug("placement", "node", n.Node, "free", free(n), "near-best", near, "skipped", why)
		return n.Node, guests, nil
	}
	// Every online node was refused for what the config names: a config
	// fault, as the same problem is over pct.
	err := &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
		Msg:  "no node can take the CT (" + strings.Join(why, "; ") + ")",
		Hint: "fix [pve] rootfs_storage, template_storage or bridge (`pvesh get /cluster/resources --type storage` shows each node's storages), or set [pve] node to a node name"}
	switch len(nodes) {
	case lacks["rootfs_storage"]:
		err.Hint = placementHint("rootfs_storage", t.cfg.RootfsStorage, "rootdir")
	case lacks["template_storage"]:
		err.Hint = placementHint("template_storage", t.cfg.TemplateStorage, "vztmpl")
	case lacks["bridge"]:
		err.Hint = bridgeHint(t.cfg.Bridge)
	}
	return "", nil, err
}

// placementHint: no online node has the storage key names with content.
func placementHint(key, storage, content string) string {
	return fmt.Sprintf("[pve] %s = %q: no online node has that storage with content %s; set %s to one that `pvesm status --content %s` lists, or add %s to the storage's content (Datacenter > Storage)",
		key, storage, content, key, content, content)
}

// checkNode confirms that node is a node of the cluster and online, with
// one /cluster/resources call: a create or doctor on a node PVE does not
// know then says so instead of PVE's "hostname lookup failed".
func (t *apiTransport) checkNode(ctx context.Context, node string) error {
	var rows []clusterRow
	if err := t.c.call(ctx, "GET /cluster/resources", 0, http.MethodGet, "/cluster/resources", url.Values{"type": {"node"}}, &rows); err != nil {
		return err
	}
	var names []string
	for _, r := range rows {
		if r.Type != "node" {
			continue
		}
		names = append(names, r.Node)
		if r.Node == node {
			if r.Status != "online" {
				return &errdefs.Error{Cat: errdefs.ErrUnavailable, Msg: fmt.Sprintf("node %q is %s", node, cmpOr(r.Status, "not online")),
					Hint: "wait for it to come back, or set [pve] node to another node or to \"auto\""}
			}
			return nil
		}
	}
	slices.Sort(names)
	return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
		Msg:  fmt.Sprintf("node %q is not in the cluster (nodes: %s)", node, strings.Join(names, ", ")),
		Hint: "set [pve] node to one of them, or to \"auto\""}
}

// unknownNode turns PVE's answer for a node it cannot resolve into
// checkNode's message naming the cluster's nodes.
func (t *apiTransport) unknownNode(ctx context.Context, node string, err error) error {
	if err == nil || !strings.Contains(err.Error(), "hostname lookup '"+node+"' failed") {
		return err
	}
	if cerr := t.checkNode(ctx, node); cerr != nil {
		return cerr
	}
	return err
}

func (t *apiTransport) hasBridge(ctx context.Context, node string) (bool, error) {
	var ifaces []struct {
		Iface string `json:"iface"`
	}
	if err := t.c.call(ctx, "placement (GET network)", 0, http.MethodGet, nodePath(node)+"/network",
		url.Values{"type": {"any_bridge"}}, &ifaces); err != nil {
		return false, err
	}
	for _, i := range ifaces {
		if i.Iface == t.cfg.Bridge {
			return true, nil
		}
	}
	return false, nil
}

// ensureTemplate builds the template in the local cache (reused by
// digest), then uploads it unless the node's storage already has it.
func (t *apiTransport) ensureTemplate(ctx context.Context, node, rootfs string) (string, bool, error) {
	if err := os.MkdirAll(t.cacheDir, 0o755); err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "[pve] template_cache")
	}
	path, digest, cached, err := vztmpl.Ensure(ctx, rootfs, t.cacheDir)
	if err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "build template from %s", rootfs)
	}
	t.c.log.Debug("template", "path", path, "digest", digest, "cached", cached)
	return t.upload(ctx, node, path)
}

// ensureFile writes the file into the local cache once, then uploads it
// unless the node's storage already has it.
func (t *apiTransport) ensureFile(ctx context.Context, node, name string, write func(io.Writer) error) (string, bool, error) {
	if err := os.MkdirAll(t.cacheDir, 0o755); err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "[pve] template_cache")
	}
	path := filepath.Join(t.cacheDir, name)
	if _, err := writeOnce(path, write); err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "write template %s", name)
	}
	return t.upload(ctx, node, path)
}

// upload puts a local template file on node's template storage, unless a
// file of that name is there already (names carry digests); fresh: it was
// uploaded now. (The local cache keeps its copy either way.)
func (t *apiTransport) upload(ctx context.Context, node, path string) (volid string, fresh bool, err error) {
	name := filepath.Base(path)
	volid = t.cfg.TemplateStorage + ":vztmpl/" + name
	storage := nodePath(node) + "/storage/" + url.PathEscape(t.cfg.TemplateStorage)
	var vols []struct {
		Volid string `json:"volid"`
	}
	if err := t.c.call(ctx, "template lookup", 0, http.MethodGet, storage+"/content", url.Values{"content": {"vztmpl"}}, &vols); err != nil {
		return "", false, t.unknownNode(ctx, node, err)
	}
	for _, v := range vols {
		if v.Volid == volid {
			return volid, false, nil
		}
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "checksum template")
	}
	fields := url.Values{"content": {"vztmpl"}, "checksum-algorithm": {"sha256"}, "checksum": {sum}}
	var upid string
	if err := t.c.upload(ctx, "template upload", storage+"/upload", fields, "filename", path, &upid); err != nil {
		return "", false, err
	}
	if err := t.c.waitTask(ctx, "template upload", 0, upid, 0); err != nil {
		return "", false, err
	}
	return volid, true, nil
}

// templates lists proxcage's templates on the template storage of every
// node where it is available: one listing per node, or one in all for a
// shared storage (every node sees the same files).
func (t *apiTransport) templates(ctx context.Context) ([]storedTemplate, error) {
	var rows []struct {
		clusterRow
		Shared int `json:"shared"`
	}
	if err := t.c.call(ctx, "GET /cluster/resources", 0, http.MethodGet, "/cluster/resources", url.Values{"type": {"storage"}}, &rows); err != nil {
		return nil, err
	}
	var out []storedTemplate
	for _, r := range rows {
		if r.Storage != t.cfg.TemplateStorage || r.Status != "available" {
			continue
		}
		var vols []struct {
			Volid string `json:"volid"`
			Size  int64  `json:"size"`
		}
		storage := nodePath(r.Node) + "/storage/" + url.PathEscape(r.Storage)
		if err := t.c.call(ctx, "template listing", 0, http.MethodGet, storage+"/content", url.Values{"content": {"vztmpl"}}, &vols); err != nil {
			return nil, err
		}
		for _, v := range vols {
			if _, name, ok := strings.Cut(v.Volid, ":vztmpl/"); ok && isTemplateName(name) {
				out = append(out, storedTemplate{Node: r.Node, Volid: v.Volid, Name: name, Size: v.Size})
			}
		}
		if r.Shared == 1 {
			break
		}
	}
	return out, nil
}

// removeTemplate deletes a template volume (an imgdel task). A second try
// after an uncertain failure is harmless: a missing file is a warning.
func (t *apiTransport) removeTemplate(ctx context.Context, st storedTemplate) error {
	storage, _, _ := strings.Cut(st.Volid, ":")
	// Volume ids hold a '/': PVE takes the rest of the path as the volume
	// (pve-storage API2/Storage/Status.pm, fragmentDelimiter '').
	parts := strings.Split(st.Volid, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	path := nodePath(st.Node) + "/storage/" + url.PathEscape(storage) + "/content/" + strings.Join(parts, "/")
	return t.task(ctx, "template delete", 0, http.MethodDelete, path, nil, 0, func(error) bool { return false })
}

// pruneScratch prunes the local template cache, where templates are built
// before they are uploaded.
func (t *apiTransport) pruneScratch(_ context.Context, drop func(string) bool) ([]string, error) {
	return pruneDir(t.cacheDir, drop)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (t *apiTransport) guests(ctx context.Context) ([]resource, error) {
	var rows []resource
	err := t.c.call(ctx, "GET /cluster/resources", 0, http.MethodGet, "/cluster/resources", url.Values{"type": {"vm"}}, &rows)
	return rows, err
}

// nextID asks /cluster/nextid (a token may not see every guest, so
// guests cannot stand in for the vmlist nextid reads), then probes upwards
// past VMIDs another creator is about to take.
func (t *apiTransport) nextID(ctx context.Context, _ []resource, avoid map[int]bool) (int, error) {
	var raw json.RawMessage
	if err := t.c.call(ctx, "GET /cluster/nextid", 0, http.MethodGet, "/cluster/nextid", nil, &raw); err != nil {
		return 0, err
	}
	n, err := parseNextID(string(raw))
	if err != nil || !avoid[n] {
		return n, err
	}
	for c := n + 1; c <= maxVMID; c++ {
		if !avoid[c] {
			if ok, err := t.vmidFree(ctx, c); err != nil || ok {
				return c, err
			}
		}
	}
	return 0, errdefs.New(errdefs.ErrUnavailable, "no free VMID above %d", n)
}

func (t *apiTransport) vmidFree(ctx context.Context, n int) (bool, error) {
	err := t.c.call(ctx, "GET /cluster/nextid", n, http.MethodGet, "/cluster/nextid", url.Values{"vmid": {strconv.Itoa(n)}}, nil)
	return nextIDAnswer(err)
}

// task posts an action that answers with a UPID and waits for the task.
// The POST is repeated only when PVE refused it before acting (inside
// call), or, for actions whose second run is harmless, after an uncertain
// failure (a gateway 5xx, a dropped connection): then done(err) tells
// whether the repeat's failure means the first attempt did it ("CT N
// already running" after a start). A task that ran and failed transiently
// (a lock held by another task) is posted again. At most three posts.
func (t *apiTransport) task(ctx context.Context, step string, vmid int, method, path string, params url.Values, grace time.Duration, done func(error) bool) error {
	delay := 300 * time.Millisecond
	wasUncertain := false
	for attempt := 1; ; attempt++ {
		var upid string
		err := t.c.call(ctx, step, vmid, method, path, params, &upid)
		if err == nil {
			err = t.c.waitTask(ctx, step, vmid, upid, grace)
			if err == nil {
				return nil
			}
		}
		if wasUncertain && done != nil && done(err) {
			t.c.log.Debug("an earlier attempt did it", "step", step, "reason", err.Error())
			return nil
		}
		var te *toolError
		again := errors.As(err, &te) && te.Retry
		if upid == "" && uncertain(err) {
			if done == nil {
				return err
			}
			wasUncertain, again = true, true
		}
		if !again || attempt >= 3 {
			return err
		}
		t.c.log.Debug("posting again", "step", step, "attempt", attempt, "reason", err.Error())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// errCreateUncertain marks a create whose outcome could not be read back
// (a gateway 5xx or a dropped connection, then no answer to the read-back
// either): a CT may exist at the VMID, nothing says whose it is.
var errCreateUncertain = errors.New("the create may have happened")

// createPending is a create PVE accepted (we hold its task) that did not
// finish within [pve] timeout: the CT is ours.
type createPending struct {
	err  error
	upid string
}

func (e *createPending) Error() string { return e.err.Error() }
func (e *createPending) Unwrap() error { return e.err }

// resetEntrypoint sets the plan's entrypoint again once the CT exists,
// when the image's config replaced it (Plan.ResetEntrypoint). A PUT of the
// config is synchronous and harmless to repeat; its failure is the
// create's (the lifecycle removes the CT).
func (t *apiTransport) resetEntrypoint(ctx context.Context, node string, vmid int, plan *Plan) error {
	if !plan.ResetEntrypoint {
		return nil
	}
	for _, o := range plan.Options {
		if o.Key == "entrypoint" {
			return t.c.call(ctx, "set the entrypoint", vmid, http.MethodPut,
				fmt.Sprintf("%s/lxc/%d/config", nodePath(node), vmid), url.Values{"entrypoint": {o.Value}}, nil)
		}
	}
	return nil
}

// createPosts bounds the POSTs of one create: a repeat happens only when
// the read-back shows that PVE did nothing, or that a task of ours failed
// on something transient (a cluster lock) and cleaned up after itself.
const createPosts = 3

// create posts the CT. After an uncertain failure (a gateway's 5xx, a
// dropped connection) it reads back what the node did (readBack) and then
// waits for our task, adopts our CT, posts again, or reports the VMID
// taken; it fails as uncertain only when even the read-back gets no answer.
// A create task that failed left nothing (PVE's create worker removes its
// disks and config): a transient failure is posted again, and a template
// gone from the storage is uploaded again first.
func (t *apiTransport) create(ctx context.Context, node string, vmid int, volid string, plan *Plan) error {
	params := url.Values{"vmid": {strconv.Itoa(vmid)}, "ostemplate": {volid}}
	for _, o := range plan.Options {
		params.Set(o.Key, o.Value)
	}
	const step = "create CT"
	since := time.Now()
	wasUncertain, reuploaded := false, false
	for attempt := 1; ; attempt++ {
		var upid string
		err := t.c.call(ctx, step, vmid, http.MethodPost, nodePath(node)+"/lxc", params, &upid)
		if err != nil && (noAnswer(err) || wasUncertain && errdefs.Category(err) == errdefs.ErrAlreadyExists) {
			// An "already exists" after an uncertain post may be our own
			// first post, landed late.
			wasUncertain = true
			postErr := err
			var adopt bool
			if upid, adopt, err = t.readBack(ctx, node, vmid, params.Get("description"), since, postErr); adopt {
				return t.resetEntrypoint(ctx, node, vmid, plan)
			}
			if err == nil && upid == "" {
				if attempt >= createPosts {
					// Each read-back said nothing happened: the node
					// did nothing, the post's failure stands.
					return postErr
				}
				t.c.log.Debug("the node did nothing with the create: posting again", "vmid", vmid, "attempt", attempt)
				continue
			}
		}
		if err != nil {
			return t.unknownNode(ctx, node, err)
		}
		err = t.c.waitTask(ctx, step, vmid, upid, 0)
		var tr *taskRunning
		var te *toolError
		switch {
		case err == nil:
			return t.resetEntrypoint(ctx, node, vmid, plan)
		case errors.As(err, &tr):
			return &createPending{err: err, upid: upid}
		case errdefs.Category(err) == errdefs.ErrNotFound && strings.Contains(err.Error(), ":vztmpl/") && !reuploaded:
			// The template went between our upload check and the task.
			reuploaded = true
			_, name, _ := strings.Cut(volid, ":vztmpl/")
			if _, _, uerr := t.upload(ctx, node, filepath.Join(t.cacheDir, name)); uerr != nil {
				return err
			}
			t.c.log.Debug("template uploaded again", "volid", volid)
		case errors.As(err, &te) && te.Retry && attempt < createPosts:
			t.c.log.Debug("create task failed transiently: posting again", "vmid", vmid, "reason", err.Error())
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
		}
	}
}

// readBackSkew is how much earlier than our post (by this host's clock) a
// task may have started and still be ours: the node's clock may differ.
// Generous on purpose: missing our running task would post again and then
// take our own CT for another creator's; an older task of ours only counts
// when it fits what the node shows (running with the CT locked, or failed
// with no CT left), and then the worst is an old failure reported.
const readBackSkew = 2 * time.Minute

// readBack finds out what a create post with an uncertain answer did: the
// CT at vmid (its description names the container once the create is
// done; until then it holds only the create lock) and the node's task list
// for a vzcreate of vmid by us since the post (pve-manager
// PVE/API2/Tasks.pm node_tasks; source=all, as running tasks are not in
// the default archive). It returns our task to wait for, or adopt when
// our CT is complete, or ("", false, nil) when the node did nothing (post
// again), or an error: the VMID taken by someone else (already exists),
// our task's failure, or the state unknown.
func (t *apiTransport) readBack(ctx context.Context, node string, vmid int, description string, since time.Time, postErr error) (upid string, adopt bool, err error) {
	// create_vm (pve-container API2/LXC.pm) writes the config under the
	// create lock before fork_worker registers the task: a read in
	// between sees a locked CT and no task of ours, which may yet be our
	// own create. Look again for a while before calling it another's.
	deadline := time.Now().Add(readBackWindow)
	for {
		upid, adopt, locked, err := t.readBackOnce(ctx, node, vmid, description, since, postErr)
		if !locked || time.Now().After(deadline) {
			return upid, adopt, err
		}
		t.c.log.Debug("read back: a CT under its create lock and no task of ours yet; looking again", "vmid", vmid)
		select {
		case <-ctx.Done():
			return "", false, t.uncertainCreate(node, vmid, postErr)
		case <-time.After(readBackPoll):
		}
	}
}

// readBackWindow is how long a CT under its create lock with no task of
// ours is looked at again (the gap between create_and_lock_config and
// fork_worker is a config write and a fork); readBackPoll how often.
const (
	readBackWindow = 5 * time.Second
	readBackPoll   = 500 * time.Millisecond
)

// readBackOnce is one read of readBack; locked: the verdict is "taken"
// only because a CT under its create lock shows no task of ours yet.
func (t *apiTransport) readBackOnce(ctx context.Context, node string, vmid int, description string, since time.Time, postErr error) (upid string, adopt, locked bool, err error) {
	want, _ := OCIIDFromDescription(description)
	cfg, cerr := t.config(ctx, node, vmid)
	exists := cerr == nil
	if cerr != nil && errdefs.Category(cerr) != errdefs.ErrNotFound {
		return "", false, false, t.uncertainCreate(node, vmid, postErr)
	}
	if exists {
		if id, ok := OCIIDFromDescription(cfg["description"]); ok && want != "" {
			if id == want {
				t.c.log.Debug("the create happened: adopting the CT", "vmid", vmid)
				return "", true, false, nil
			}
			return "", false, false, vmidTaken(node, vmid)
		}
	}
	var tasks []struct {
		UPID      string `json:"upid"`
		User      string `json:"user"`
		TokenID   string `json:"tokenid"`
		StartTime int64  `json:"starttime"`
		Status    string `json:"status"`
	}
	q := url.Values{"source": {"all"}, "typefilter": {"vzcreate"}, "vmid": {strconv.Itoa(vmid)},
		"since": {strconv.FormatInt(since.Add(-readBackSkew).Unix(), 10)}}
	if err := t.c.call(ctx, "create CT (read back the task list)", vmid, http.MethodGet, nodePath(node)+"/tasks", q, &tasks); err != nil {
		return "", false, false, t.uncertainCreate(node, vmid, postErr)
	}
	me := t.c.identity()
	for _, tk := range tasks {
		who := tk.User
		if tk.TokenID != "" {
			who += "!" + tk.TokenID
		}
		if who != me {
			continue
		}
		switch {
		case tk.Status == "RUNNING" && exists:
			t.c.log.Debug("the create happened: waiting for its task", "vmid", vmid, "task", tk.UPID)
			return tk.UPID, false, false, nil
		case tk.Status != "RUNNING" && tk.Status != "OK" && !strings.HasPrefix(tk.Status, "WARNINGS:") && !exists:
			// It ran and failed, and its worker removed what it made.
			return tk.UPID, false, false, nil
		}
	}
	if exists {
		return "", false, cfg["lock"] == "create", vmidTaken(node, vmid)
	}
	return "", false, false, nil
}

// vmidTaken: another creator holds vmid; the backend picks another VMID.
func vmidTaken(node string, vmid int) error {
	return &errdefs.Error{Cat: errdefs.ErrAlreadyExists,
		Msg:  fmt.Sprintf("VMID %d on node %s was taken by another create at the same time", vmid, node),
		Hint: "drop the org.proxcage.vmid annotation to let proxcage pick a free one, or choose another"}
}

// uncertainCreate: neither the post nor the read-back told what the node
// did. The message says what to run to find out.
func (t *apiTransport) uncertainCreate(node string, vmid int, cause error) error {
	return &errdefs.Error{Cat: errdefs.ErrUnavailable,
		Msg: fmt.Sprintf("create CT %d on node %s: %v; the node's config and task list did not answer either", vmid, node, cause),
		Hint: fmt.Sprintf("on %s, `pvesh get /nodes/%s/tasks --vmid %d --typefilter vzcreate --source all` shows whether a create ran, and `pct config %d` whose CT it is; "+
			"`proxcage delete --force ID` removes it if it is this container's", node, node, vmid, vmid),
		Cause: errCreateUncertain}
}

// waitCreate waits for a pending create task of ours to end.
func (t *apiTransport) waitCreate(ctx context.Context, vmid int, upid string) error {
	return t.c.waitTask(ctx, "create CT", vmid, upid, 0)
}

func (t *apiTransport) start(ctx context.Context, node string, vmid int) error {
	return t.task(ctx, "start CT", vmid, http.MethodPost, ctPath(node, vmid)+"/status/start", nil, 0, alreadyRunning)
}

func (t *apiTransport) stop(ctx context.Context, node string, vmid int) error {
	return t.task(ctx, "stop CT", vmid, http.MethodPost, ctPath(node, vmid)+"/status/stop", nil, 0, notRunning)
}

func alreadyRunning(err error) bool { return strings.Contains(err.Error(), "already running") }

func notRunning(err error) bool { return strings.Contains(err.Error(), "not running") }

// shutdownGrace is how long kill TERM waits for the shutdown task: a
// signal does not wait for the process to end, but a task that fails at
// once (CT not running) must not be reported as delivered.
const shutdownGrace = 2 * time.Second

func (t *apiTransport) shutdown(ctx context.Context, node string, vmid int) error {
	return t.task(ctx, "shutdown CT", vmid, http.MethodPost, ctPath(node, vmid)+"/status/shutdown",
		url.Values{"forceStop": {"1"}}, shutdownGrace, notRunning)
}

func (t *apiTransport) destroy(ctx context.Context, node string, vmid int, force bool) error {
	params := url.Values{"purge": {"1"}}
	if force {
		params.Set("force", "1")
	}
	// No repeat after an uncertain failure here: the VMID may hold another
	// CT by then; Backend.destroy checks the owner before a second try.
	return t.task(ctx, "destroy CT", vmid, http.MethodDelete, ctPath(node, vmid), params, 0, nil)
}

// unlock: the API cannot clear a lock (pct unlock is a node-local command).
func (t *apiTransport) unlock(_ context.Context, node string, vmid int) error {
	return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
		Msg:  fmt.Sprintf("CT %d on node %s keeps a stale lock", vmid, node),
		Hint: fmt.Sprintf("the API cannot clear it: run `pct unlock %d` on %s", vmid, node)}
}

func (t *apiTransport) status(ctx context.Context, node string, vmid int) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := t.c.call(ctx, "CT status", vmid, http.MethodGet, ctPath(node, vmid)+"/status/current", nil, &st); err != nil {
		return "", err
	}
	if st.Status != "running" && st.Status != "stopped" {
		return "", errdefs.New(errdefs.ErrInternal, "CT %d on %s has status %q", vmid, node, st.Status)
	}
	return st.Status, nil
}

func (t *apiTransport) config(ctx context.Context, node string, vmid int) (map[string]string, error) {
	var raw map[string]any
	if err := t.c.call(ctx, "CT config", vmid, http.MethodGet, ctPath(node, vmid)+"/config", nil, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}
