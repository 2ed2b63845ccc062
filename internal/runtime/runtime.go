// Package runtime orchestrates every proxcage command: it loads the bundle,
// picks the backend, keeps the state store consistent and rolls back a
// failed create. It holds no backend-specific code.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/route"
	"github.com/proxcage/proxcage/internal/spec"
	"github.com/proxcage/proxcage/internal/store"
)

// Runtime is one invocation's view of the world.
type Runtime struct {
	Store    *store.Store
	Config   *config.Config
	Backends *backend.Registry
	Log      *slog.Logger
}

// State is what `state` prints: the OCI state plus runc's extra fields
// (rootfs, created, owner), so both runtime-tools and engines that decode
// runc's output read it, plus the backend that runs the container.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
	Backend string    `json:"backend"`
	// Node is the PVE cluster node of a pve container over the API.
	Node string `json:"node,omitempty"`
	// Image and ImageDigest are the provenance of a container made from
	// an image: the name it was made from and the manifest digest it runs
	// (also in Annotations, as imagespec sets them); empty for a bundle's.
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
}

// BundleRequest names a bundle and the operator's annotations
// (--annotation), which are merged over the bundle's own before routing.
type BundleRequest struct {
	Dir         string
	Annotations map[string]string
}

// Route decides the backend for a new container without creating anything.
func (r *Runtime) Route(id string, req BundleRequest) (route.Decision, error) {
	b, err := spec.Load(req.Dir)
	if err != nil {
		return route.Decision{}, err
	}
	d := route.Pick(r.Config, id, mergeAnnotations(b.Spec.Annotations, req.Annotations))
	// The CLI prefixes "route ID"; only the reason is added here.
	if err := r.Backends.Check(d.Backend); err != nil {
		return d, chosenBy(err, d)
	}
	return d, nil
}

// mergeAnnotations returns base with over applied, as a new map.
func mergeAnnotations(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// backendFor returns the backend d chose, refusing before anything is
// made what it cannot do: a foreground run needs a backend that can wait
// for the container's end.
func (r *Runtime) backendFor(d route.Decision, foreground bool) (backend.Backend, error) {
	be, err := r.Backends.Get(d.Backend)
	if err != nil {
		return nil, chosenBy(err, d)
	}
	if _, ok := be.(backend.Attacher); foreground && !ok {
		return nil, chosenBy(errdefs.WithHint(backend.Unsupported(be, "running in the foreground"),
			"run it with --detach (-d), then follow it with `proxcage state` and `proxcage exec`"), d)
	}
	return be, nil
}

// chosenBy adds to a backend's error which rule picked that backend.
func chosenBy(err error, d route.Decision) error {
	hint := "chosen by " + d.Reason
	if h := errdefs.Hint(err); h != "" {
		hint = h + "; " + hint
	}
	return errdefs.WithHint(err, hint)
}

// CheckBackends fails when default_backend or a rule names a backend this
// build does not have: a typo there would otherwise surface only at the
// first container it routes, and `list` would look fine meanwhile.
func CheckBackends(cfg *config.Config, reg *backend.Registry) error {
	check := func(where, name string) error {
		if err := reg.Check(name); err != nil {
			return errdefs.Context(err, where, "")
		}
		return nil
	}
	if err := check("default_backend", cfg.DefaultBackend); err != nil {
		return cfg.Errorf(err)
	}
	for i, rule := range cfg.Routes {
		if err := check(fmt.Sprintf("rule %d (%s)", i+1, rule.Describe()), rule.Backend); err != nil {
			return cfg.Errorf(err)
		}
	}
	return nil
}

func (r *Runtime) container(rec *store.Record, s *specs.Spec) *backend.Container {
	return &backend.Container{
		ID: rec.ID, Bundle: rec.Bundle, Rootfs: rec.Rootfs, Spec: s,
		StateDir: r.Store.Dir(rec.ID), Private: rec.Private,
	}
}

// Create makes a container in the "created" state. Anything a failed create
// made is removed before the error is returned.
func (r *Runtime) Create(ctx context.Context, id string, req BundleRequest, opts backend.CreateOpts) error {
	p, b, err := r.placeBundle(id, req, false)
	if err != nil {
		return err
	}
	h, _, err := r.create(ctx, p, b, opts)
	if err != nil {
		return err
	}
	h.Unlock()
	return nil
}

// placement is where a new container goes, decided once per create
// before anything is made: its id checked, the route picked and the
// backend able to do what the create asks.
type placement struct {
	id       string
	decision route.Decision
	backend  backend.Backend
}

// place routes the new container id by the annotations that route it:
// a bundle's with the operator's over them; for an image, the operator's
// alone (its labels never route). foreground is `run` without --detach,
// which the backend must support. The caller has checked id.
func (r *Runtime) place(id string, annotations map[string]string, foreground bool) (placement, error) {
	d := route.Pick(r.Config, id, annotations)
	be, err := r.backendFor(d, foreground)
	if err != nil {
		return placement{}, err
	}
	return placement{id: id, decision: d, backend: be}, nil
}

// placeBundle checks id, loads the bundle with the operator's annotations
// merged over its own, and places the container.
func (r *Runtime) placeBundle(id string, req BundleRequest, foreground bool) (placement, *spec.Bundle, error) {
	if err := identifiers.Validate(id); err != nil {
		return placement{}, nil, err
	}
	b, err := spec.Load(req.Dir)
	if err != nil {
		return placement{}, nil, err
	}
	b.Spec.Annotations = mergeAnnotations(b.Spec.Annotations, req.Annotations)
	p, err := r.place(id, b.Spec.Annotations, foreground)
	if err != nil {
		return placement{}, nil, err
	}
	return p, b, nil
}

// create makes the container of bundle b where p placed it. It returns
// the container locked.
func (r *Runtime) create(ctx context.Context, p placement, b *spec.Bundle, opts backend.CreateOpts) (*store.Handle, *backend.Container, error) {
	be, d := p.backend, p.decision
	rec := &store.Record{
		ID: p.id, Backend: d.Backend, RouteReason: d.Reason, Bundle: b.Path, Rootfs: b.Rootfs,
		Annotations: b.Spec.Annotations, Created: time.Now().UTC(), Owner: owner(),
	}
	h, err := r.Store.Reserve(rec)
	if err != nil {
		return nil, nil, err
	}
	r.Log.Debug("creating container", "id", p.id, "backend", d.Backend, "reason", d.Reason, "bundle", b.Path)
	c := r.container(rec, b.Spec)
	c.Persist = func() error {
		rec.Private = c.Private
		return h.Save(rec)
	}
	if err := be.Create(ctx, c, opts); err != nil {
		return nil, nil, r.rollback(ctx, be, c, h, err)
	}
	rec.Status = store.StatusCreated
	rec.Private = c.Private
	if err := h.Save(rec); err != nil {
		return nil, nil, r.rollback(ctx, be, c, h, err)
	}
	return h, c, nil
}

// rollback removes what a failed create left: the backend's objects first,
// then the state directory, and returns cause. When the backend cannot
// clean up (its API unreachable, say), the state is kept, so that
// `delete --force` can finish the job, and the error says so.
func (r *Runtime) rollback(ctx context.Context, be backend.Backend, c *backend.Container, h *store.Handle, cause error) error {
	c.DeleteVolumes = true // made by this create (a volume of this host's outlives it: releaseImageBundle keeps it)
	c.RollBack = true
	if err := be.Delete(context.WithoutCancel(ctx), c, true); err != nil {
		r.Log.Debug("rollback: backend cleanup failed", "id", c.ID, "err", err)
		h.Unlock()
		return errdefs.WithHint(cause, fmt.Sprintf("the rollback could not remove what was made (%s); `proxcage delete --force %s` retries it", errdefs.OneLine(err), c.ID))
	}
	if err := h.Remove(); err != nil {
		r.Log.Warn("rollback: remove state failed", "id", c.ID, "err", err)
	}
	r.releaseImageBundle(c.ID, c.Bundle, keepVolumes)
	return cause
}

// Run is create + start; without Detach it waits for the container, deletes
// it and returns its exit status.
func (r *Runtime) Run(ctx context.Context, id string, req BundleRequest, opts backend.CreateOpts) (int, error) {
	p, b, err := r.placeBundle(id, req, !opts.Detach)
	if err != nil {
		return -1, err
	}
	return r.run(ctx, p, b, opts, func() {})
}

// run is Run of the placed bundle b (placed for the foreground unless
// opts.Detach); created is called once the container exists and started.
func (r *Runtime) run(ctx context.Context, p placement, b *spec.Bundle, opts backend.CreateOpts, created func()) (int, error) {
	opts.Foreground = !opts.Detach
	h, c, err := r.create(ctx, p, b, opts)
	if err != nil {
		created()
		return -1, err
	}
	be := p.backend
	if err := be.Start(ctx, c); err != nil {
		err = r.rollback(ctx, be, c, h, err)
		created()
		return -1, err
	}
	h.Unlock()
	created()
	if opts.Detach {
		return 0, nil
	}
	// backendFor made sure it is an Attacher.
	status, werr := be.(backend.Attacher).Wait(ctx, c)
	// The container is gone or going: remove it like runc run does.
	if h, err := r.Store.Lock(p.id); err == nil {
		// Its anonymous volumes go with it, as podman's run --rm (a backend
		// that frees volumes with the container refused named ones).
		c.DeleteVolumes = true
		if err := be.Delete(context.WithoutCancel(ctx), c, true); err != nil {
			r.Log.Warn("remove finished container", "id", p.id, "err", err)
		}
		_ = h.Remove()
		r.releaseImageBundle(p.id, c.Bundle, removeAnonymous)
	}
	return status, werr
}

// load returns the record, its backend and the container (spec not loaded:
// most commands don't need it).
func (r *Runtime) load(id string) (*store.Record, backend.Backend, *backend.Container, error) {
	rec, err := r.Store.Load(id)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := r.Backends.Get(rec.Backend)
	if err != nil {
		return nil, nil, nil, err
	}
	return rec, be, r.container(rec, nil), nil
}

// locked runs fn under the container lock with the fresh record.
func (r *Runtime) locked(id string, fn func(rec *store.Record, be backend.Backend, c *backend.Container, h *store.Handle) error) error {
	h, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer h.Unlock()
	rec, be, c, err := r.load(id)
	if err != nil {
		return err
	}
	c.Persist = func() error {
		rec.Private = c.Private
		return h.Save(rec)
	}
	return fn(rec, be, c, h)
}

// Start runs the user program of a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.locked(id, func(rec *store.Record, be backend.Backend, c *backend.Container, _ *store.Handle) error {
		if rec.Status == store.StatusCreating {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container %q was never fully created", id)
		}
		return be.Start(ctx, c)
	})
}

// State reports a container's live state.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	rec, be, c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.state(ctx, rec, be, c)
}

func (r *Runtime) state(ctx context.Context, rec *store.Record, be backend.Backend, c *backend.Container) (*State, error) {
	st := &State{
		State: specs.State{
			Version: specs.Version, ID: rec.ID, Bundle: rec.Bundle,
			Annotations: rec.Annotations,
		},
		Rootfs: rec.Rootfs, Created: rec.Created, Owner: rec.Owner, Backend: rec.Backend,
	}
	st.Image, st.ImageDigest, _ = ImageOf(rec.Annotations)
	if rec.Status == store.StatusCreating {
		st.Status = specs.StateCreating
		// A creator that died leaves its lock free: report the leftover as
		// stopped so `delete` cleans it up.
		if h, ok, _ := r.Store.TryLock(rec.ID); ok {
			h.Unlock()
			st.Status = specs.StateStopped
		}
		return st, nil
	}
	bs, err := be.State(ctx, c)
	if errors.Is(err, errdefs.ErrNotFound) {
		st.Status = specs.StateStopped
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Status = specs.ContainerState(bs.Status)
	st.Pid = bs.Pid
	st.Node = bs.Node
	if len(bs.Annotations) > 0 {
		merged := make(map[string]string, len(rec.Annotations)+len(bs.Annotations))
		for k, v := range rec.Annotations {
			merged[k] = v
		}
		for k, v := range bs.Annotations {
			merged[k] = v
		}
		st.Annotations = merged
	}
	return st, nil
}

// List reports every container's state.
func (r *Runtime) List(ctx context.Context) ([]*State, error) {
	recs, err := r.Store.List()
	if err != nil {
		return nil, err
	}
	out := make([]*State, 0, len(recs))
	for _, rec := range recs {
		be, err := r.Backends.Get(rec.Backend)
		if err != nil {
			return nil, err
		}
		st, err := r.state(ctx, rec, be, r.container(rec, nil))
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, errdefs.Context(err, "state", rec.ID)
		}
		out = append(out, st)
	}
	return out, nil
}

// Kill sends sig to the container's init (all its processes with all).
func (r *Runtime) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	return r.locked(id, func(rec *store.Record, be backend.Backend, c *backend.Container, _ *store.Handle) error {
		if rec.Status == store.StatusCreating {
			return errdefs.New(errdefs.ErrFailedPrecondition, "container not running")
		}
		return be.Kill(ctx, c, sig, all)
	})
}

// Delete removes a stopped container, or any container with force. With
// force, an id the store does not know is looked up in the backends whose
// objects carry it (a CT left by a crash that lost the state directory).
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	return r.DeleteVolumes(ctx, id, force, false)
}

// DeleteVolumes is Delete; with volumes (delete --volumes) the
// container's volumes that no other container uses go too.
func (r *Runtime) DeleteVolumes(ctx context.Context, id string, force, volumes bool) error {
	err := r.delete(ctx, id, force, volumes)
	if !force || !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	for _, name := range r.Config.Backends() {
		if !r.Backends.Has(name) {
			continue
		}
		be, berr := r.Backends.Get(name)
		if berr != nil {
			continue // a backend that cannot start here holds nothing to reclaim
		}
		if rc, ok := be.(backend.Reclaimer); ok {
			found, rerr := rc.ReclaimByID(ctx, id)
			if rerr != nil {
				return rerr
			}
			if found {
				r.Log.Info("removed a container left without state", "id", id, "backend", name)
				return nil
			}
		}
	}
	return err
}

func (r *Runtime) delete(ctx context.Context, id string, force, volumes bool) error {
	return r.locked(id, func(rec *store.Record, be backend.Backend, c *backend.Container, h *store.Handle) error {
		c.DeleteVolumes = volumes
		// A "creating" record whose lock we hold was left by a creator
		// that died: clean it up whatever force says.
		if err := be.Delete(ctx, c, force || rec.Status == store.StatusCreating); err != nil {
			return err
		}
		if err := h.Remove(); err != nil {
			return err
		}
		pol := keepVolumes
		if volumes {
			pol = removeVolumes
		}
		r.releaseImageBundle(rec.ID, rec.Bundle, pol)
		return nil
	})
}

// ExecRequest is exec's command line, applied over the container's own
// process (like runc exec) unless a process file replaces it.
type ExecRequest struct {
	// Base replaces the bundle's process as the one the flags apply to
	// (upgrade's health check: the new image's, before the bundle says so).
	Base        *specs.Process
	ProcessFile string
	Args        []string
	Env         []string
	Cwd         string
	User        string // uid[:gid]
	AddGids     []uint32
	Tty         bool
	Opts        backend.ExecOpts
}

// Exec runs a process in a running container.
func (r *Runtime) Exec(ctx context.Context, id string, req ExecRequest) (int, error) {
	rec, be, c, err := r.load(id)
	if err != nil {
		return -1, err
	}
	p, err := r.execProcess(rec, req)
	if err != nil {
		return -1, err
	}
	return be.Exec(ctx, c, p, req.Opts)
}

func (r *Runtime) execProcess(rec *store.Record, req ExecRequest) (*specs.Process, error) {
	if req.ProcessFile != "" {
		return spec.LoadProcess(req.ProcessFile)
	}
	if len(req.Args) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "exec needs a command or --process")
	}
	if req.Base != nil {
		return BuildExecProcess(req.Base, req)
	}
	b, err := spec.Load(rec.Bundle)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Category(err), err, "reload bundle for exec")
	}
	return BuildExecProcess(b.Spec.Process, req)
}

// BuildExecProcess applies exec's flags to a copy of base, as runc exec does.
func BuildExecProcess(base *specs.Process, req ExecRequest) (*specs.Process, error) {
	p := *base
	p.Args = req.Args
	p.Env = append(append([]string(nil), base.Env...), req.Env...)
	p.Terminal = req.Tty
	if req.Cwd != "" {
		p.Cwd = req.Cwd
	}
	if req.User != "" {
		uid, gid, hasGid := strings.Cut(req.User, ":")
		u, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "--user %q: uid must be a number", req.User)
		}
		p.User.UID = uint32(u)
		if hasGid {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "--user %q: gid must be a number", req.User)
			}
			p.User.GID = uint32(g)
		}
	}
	p.User.AdditionalGids = append(append([]uint32(nil), base.User.AdditionalGids...), req.AddGids...)
	if err := spec.ValidateProcess(&p); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "exec")
	}
	return &p, nil
}

// Pids lists the host pids of the container's processes.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) {
	_, be, c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	l, ok := be.(backend.Lister)
	if !ok {
		return nil, backend.Unsupported(be, "ps")
	}
	return l.Pids(ctx, c)
}

// Pause freezes the container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.locked(id, func(_ *store.Record, be backend.Backend, c *backend.Container, _ *store.Handle) error {
		p, ok := be.(backend.Pauser)
		if !ok {
			return backend.Unsupported(be, "pause")
		}
		return p.Pause(ctx, c)
	})
}

// Resume thaws the container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.locked(id, func(_ *store.Record, be backend.Backend, c *backend.Container, _ *store.Handle) error {
		p, ok := be.(backend.Pauser)
		if !ok {
			return backend.Unsupported(be, "resume")
		}
		return p.Resume(ctx, c)
	})
}

// Update changes the container's resource limits.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return r.locked(id, func(_ *store.Record, be backend.Backend, c *backend.Container, _ *store.Handle) error {
		u, ok := be.(backend.Updater)
		if !ok {
			return backend.Unsupported(be, "update")
		}
		return u.Update(ctx, c, res)
	})
}

// ParseResources decodes `update --resources` JSON.
func ParseResources(data []byte) (*specs.LinuxResources, error) {
	var res specs.LinuxResources
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "resources JSON")
	}
	return &res, nil
}

func owner() string {
	if uid := os.Geteuid(); uid != 0 {
		return strconv.Itoa(uid)
	}
	return "root"
}

// templateBackends yields each registered-and-configured backend that
// caches templates, with the containers it owns.
func (r *Runtime) templateBackends() (map[string]backend.TemplateManager, map[string][]*backend.Container, error) {
	recs, err := r.Store.List()
	if err != nil {
		return nil, nil, err
	}
	live := map[string][]*backend.Container{}
	for _, rec := range recs {
		live[rec.Backend] = append(live[rec.Backend], r.container(rec, nil))
	}
	mgrs := map[string]backend.TemplateManager{}
	for _, name := range r.Config.Backends() {
		if !r.Backends.Has(name) {
			continue
		}
		be, err := r.Backends.Get(name)
		if err != nil {
			return nil, nil, err
		}
		if m, ok := be.(backend.TemplateManager); ok {
			mgrs[name] = m
		}
	}
	if len(mgrs) == 0 {
		return nil, nil, errdefs.New(errdefs.ErrFailedPrecondition, "no configured backend caches templates (the pve backend does: route containers to it)")
	}
	return mgrs, live, nil
}

// Templates lists the cached templates of every backend that has them.
func (r *Runtime) Templates(ctx context.Context) (map[string][]backend.Template, error) {
	mgrs, live, err := r.templateBackends()
	if err != nil {
		return nil, err
	}
	out := map[string][]backend.Template{}
	for name, m := range mgrs {
		ts, err := m.Templates(ctx, live[name])
		if err != nil {
			return nil, err
		}
		out[name] = ts
	}
	return out, nil
}

// PruneTemplates removes cached templates no container uses.
func (r *Runtime) PruneTemplates(ctx context.Context) ([]string, error) {
	mgrs, live, err := r.templateBackends()
	if err != nil {
		return nil, err
	}
	var removed []string
	for name, m := range mgrs {
		rm, err := m.PruneTemplates(ctx, live[name])
		if err != nil {
			return removed, err
		}
		removed = append(removed, rm...)
	}
	return removed, nil
}
