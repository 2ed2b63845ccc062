// Package backend defines the seam between proxcage's orchestration and the
// places a container can run (native namespaces, Proxmox, plain LXC).
//
// The mandatory interface covers the OCI lifecycle; pause/resume, update,
// ps and host checks are optional interfaces checked with a type assertion,
// so a backend that cannot do one says so in one place (Unsupported).
package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// Container is what a backend is given about one container.
type Container struct {
	ID       string
	Bundle   string // absolute bundle path
	Rootfs   string // absolute rootfs path
	Spec     *specs.Spec
	StateDir string // the container's directory under --root, owned by the backend too
	// Private is the backend's own persisted data; a backend may replace it
	// in Create and the runtime saves it with the record.
	Private json.RawMessage
	// Persist saves Private now, before Create returns, so that a crash in
	// the middle of a create still leaves a record of what to clean up
	// (e.g. the VMID just allocated). Nil outside Create.
	Persist func() error
	// DeleteVolumes is set for Delete when the user asked for the
	// container's volumes to go too (delete --volumes); without it a
	// backend whose volumes would die with the container refuses.
	DeleteVolumes bool
	// RollBack is set for the Delete that rolls back a failed create or
	// run: what that create made goes, down to a template it stored.
	RollBack bool
}

// LoadPrivate decodes c.Private, the backend's persisted data, into v; ok
// is false when there is none yet (a create that did not get that far).
func LoadPrivate(c *Container, v any) (ok bool, err error) {
	if len(c.Private) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(c.Private, v); err != nil {
		return false, errdefs.Wrap(errdefs.ErrInternal, err, "read the backend's state of %s", c.ID)
	}
	return true, nil
}

// SavePrivate encodes v as c.Private and, while the runtime asks for it
// (c.Persist, during Create), saves it at once.
func SavePrivate(c *Container, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "encode the backend's state of %s", c.ID)
	}
	c.Private = data
	if c.Persist != nil {
		return c.Persist()
	}
	return nil
}

// Stdio is how the init or exec process gets its standard streams.
type Stdio struct {
	// Detach: proxcage exits after starting the process. Without a
	// terminal the process inherits proxcage's stdio (the engine's pipes);
	// with one, the pty master goes to ConsoleSocket.
	Detach        bool
	ConsoleSocket string // absolute path of an AF_UNIX socket, or ""
	PreserveFDs   int    // extra fds after stdio passed through, like runc
}

// CreateOpts are the create-time options of the runc grammar.
type CreateOpts struct {
	Stdio
	PidFile string // absolute path or ""
	// Foreground: `run` without --detach will Wait for the container
	// (the backend is an Attacher).
	Foreground    bool
	NoPivot       bool
	NoNewKeyring  bool
	SystemdCgroup bool
	// Image is set when the bundle was made from an image (create/run
	// --image), for backends that can take the image itself.
	Image *ImageSource
}

// ImageSource is the image a bundle was made from.
type ImageSource struct {
	Name   string
	Digest string // the image's manifest digest, "sha256:..."
	// ArchiveDigest is the manifest digest of the archive WriteOCIArchive
	// writes: OCI media types only (a Docker image converted), and a
	// config derived from the image's that carries the command-line
	// overrides. Differs from Digest unless neither applies.
	ArchiveDigest string
	// WriteOCIArchive writes that archive as an OCI layout tar.
	WriteOCIArchive func(w io.Writer) error
	// Defaults is the process the archive's config asks for
	// (Entrypoint+Cmd, Env, WorkingDir, User): with the overrides in the
	// derived config, the bundle's own process.
	Defaults *specs.Process
}

// ExecOpts are exec's options.
type ExecOpts struct {
	Stdio
	PidFile string
}

// AnnotationInitPid is the `state` annotation with the host pid of the
// container's init (init.lxc, or a CT's init on pve), whose namespaces
// nsenter wants, where `state`'s own pid is a keeper's: the local process
// an engine waits for, which lives as long as the container's process and
// exits with its status (the init is no child of the engine's).
const AnnotationInitPid = "org.proxcage.init-pid"

// Status is a container's live status.
type Status struct {
	Status string // created | running | paused | stopped (OCI), or creating
	Pid    int    // host pid of init, 0 when stopped or unknown
	// Annotations the backend adds to `state` (e.g. the PVE node).
	Annotations map[string]string
	// Node is where the container runs when that is not this host (a PVE
	// cluster node); `list` shows it.
	Node string
}

// Backend runs containers. Every method gets the container as recorded; the
// runtime holds the container lock around mutating calls.
type Backend interface {
	Name() string
	// Create makes the container and its init process, stopped before the
	// user program (OCI "created"). On error it must leave nothing behind.
	Create(ctx context.Context, c *Container, opts CreateOpts) error
	// Start runs the user program of a created container.
	Start(ctx context.Context, c *Container) error
	State(ctx context.Context, c *Container) (Status, error)
	Kill(ctx context.Context, c *Container, sig unix.Signal, all bool) error
	// Delete removes a stopped container (any state with force).
	Delete(ctx context.Context, c *Container, force bool) error
	// Exec starts p in the running container. Without Detach it waits
	// and returns the exit status; with Detach it returns the pid.
	Exec(ctx context.Context, c *Container, p *specs.Process, opts ExecOpts) (int, error)
}

// Attacher is implemented by backends that can run a container in the
// foreground (`run` without --detach): Wait forwards signals to the init
// process and returns its exit status once it exits.
type Attacher interface {
	Wait(ctx context.Context, c *Container) (int, error)
}

// RootfsReader is implemented by backends that only read a container's
// root filesystem (pve copies it into a template, or takes the image
// itself): an image container's bundle then points at the shared image
// rootfs instead of a private overlay, and CreateOpts.Image tells the
// backend which image it is.
type RootfsReader interface {
	ReadsRootfsOnly() bool
}

// Pauser freezes and thaws a container.
type Pauser interface {
	Pause(ctx context.Context, c *Container) error
	Resume(ctx context.Context, c *Container) error
}

// Updater changes resource limits of a live container.
type Updater interface {
	Update(ctx context.Context, c *Container, r *specs.LinuxResources) error
}

// Lister reports the host pids of a container's processes.
type Lister interface {
	Pids(ctx context.Context, c *Container) ([]int, error)
}

// Check is one line of `proxcage doctor`.
type Check struct {
	Name string
	OK   bool
	// Warn marks a check that is informative: it does not fail doctor.
	Warn   bool
	Detail string // what was found
	Hint   string // what to do when it failed
}

// RootCheck is a backend's doctor line for needing root: why says what
// for. As another user every other check may pass and still nothing runs.
func RootCheck(backendName, why string) Check {
	c := Check{Name: backendName + ": privileges"}
	if uid := os.Geteuid(); uid != 0 {
		c.Detail = fmt.Sprintf("running as uid %d, not root: %s need root", uid, why)
		c.Hint = "run proxcage as root (and `sudo proxcage doctor` to check)"
		return c
	}
	c.OK, c.Detail = true, "running as root"
	return c
}

// WritableCheck is a doctor line for a directory proxcage writes to: dir,
// or its nearest existing parent (proxcage makes the rest), must be
// writable. Nothing is created.
func WritableCheck(name, dir, hint string) Check {
	c := Check{Name: name}
	p := dir
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
		c.Detail, c.Hint = fmt.Sprintf("%s: %s is not writable (%v)", dir, p, err), hint
		return c
	}
	c.OK, c.Detail = true, dir+" is writable"
	if p != dir {
		c.Detail = fmt.Sprintf("%s will be made in %s, which is writable", dir, p)
	}
	return c
}

// Doctor is implemented by backends that can check the host.
type Doctor interface {
	Doctor(ctx context.Context) []Check
}

// Unsupported is the one error shape for an optional capability a backend
// lacks.
func Unsupported(b Backend, what string) error {
	return errdefs.New(errdefs.ErrFailedPrecondition, "the %s backend does not support %s", b.Name(), what)
}

// NotStopped is the one refusal of a plain delete of a live container, in
// runc's words (engines match them), with the two ways out.
func NotStopped(id, status string) error {
	return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
		Msg: fmt.Sprintf("cannot delete container %s that is not stopped: %s", id, status),
		Hint: fmt.Sprintf("stop it first with `proxcage kill %s` (KILL if its process ignores TERM), then delete it; "+
			"or `proxcage delete --force %s` does both", id, id)}
}

// ExecStopped is the one refusal of exec in a container whose process has
// ended (runc's words); what says which container.
func ExecStopped(id, what string) error {
	return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
		Msg:  "cannot exec in a stopped container" + what,
		Hint: fmt.Sprintf("its process has exited: `proxcage delete %s` removes it", id)}
}

// Registry maps backend names to constructors. It is built in main and
// passed down: no package-level registry, so tests can build their own.
type Registry struct {
	factories map[string]func() (Backend, error)
	order     []string // registration order, for messages
	made      map[string]Backend
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]func() (Backend, error){}, made: map[string]Backend{}}
}

// Register adds a backend constructor. Constructors run lazily, once.
func (r *Registry) Register(name string, f func() (Backend, error)) {
	if _, ok := r.factories[name]; !ok {
		r.order = append(r.order, name)
	}
	r.factories[name] = f
}

// aliases are names people reach for that mean a backend of this build.
var aliases = map[string]string{
	"proxmox": "pve", "proxmox-ve": "pve", "pct": "pve", "runc": "native", "libcontainer": "native", "lxd": "lxc",
}

// Check returns nil when name is a backend of this build, else the error
// every place that names a backend uses: the known ones, and the nearest.
func (r *Registry) Check(name string) error {
	if r.Has(name) {
		return nil
	}
	hint := "known backends: " + strings.Join(r.order, ", ")
	if m := aliases[strings.ToLower(name)]; r.Has(m) {
		hint = "did you mean " + m + "? " + hint
	} else if m := errdefs.Closest(name, r.order); m != "" {
		hint = "did you mean " + m + "? " + hint
	}
	return &errdefs.Error{Cat: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf("unknown backend %q", name), Hint: hint}
}

// Names lists registered backends, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.factories))
	for n := range r.factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	_, ok := r.factories[name]
	return ok
}

// Get returns the backend called name, constructing it on first use.
func (r *Registry) Get(name string) (Backend, error) {
	if b, ok := r.made[name]; ok {
		return b, nil
	}
	if err := r.Check(name); err != nil {
		return nil, err
	}
	f := r.factories[name]
	b, err := f()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Category(err), err, "backend %s", name)
	}
	r.made[name] = b
	return b, nil
}

// Template is one cached template of a backend.
type Template struct {
	Name   string
	Size   int64
	InUse  bool
	Detail string
}

// TemplateManager is implemented by backends that cache templates (pve):
// live is every container the store holds for that backend.
type TemplateManager interface {
	Templates(ctx context.Context, live []*Container) ([]Template, error)
	PruneTemplates(ctx context.Context, live []*Container) ([]string, error)
	// RemoveImageTemplates removes the backend's copies of image digest
	// ("sha256:..."), which `rmi` and `images prune` have just removed
	// from the store, unless a live container was made from them.
	RemoveImageTemplates(ctx context.Context, digest string, live []*Container) ([]string, error)
}

// Reclaimer is implemented by backends whose objects outlive the state
// directory (a PVE CT carries its OCI id): `delete --force` of an id the
// store does not know asks them to remove what is left. found says whether
// anything was.
type Reclaimer interface {
	ReclaimByID(ctx context.Context, id string) (found bool, err error)
}

// Upgrader is a backend that upgrades a container in place (pve: the
// CT keeps its VMID, NICs and volumes), where the runtime would make it
// again otherwise.
type Upgrader interface {
	Upgrade(ctx context.Context, c *Container, next UpgradeTarget) error
	// ResumeUpgrade finishes an upgrade a crash left: found is false when
	// there was none; forward says the new image stands (only the
	// clean-up was left), else the container is as before.
	ResumeUpgrade(ctx context.Context, c *Container) (found, forward bool, err error)
}

// UpgradeTarget is what a container is upgraded to.
type UpgradeTarget struct {
	Image  *ImageSource
	Spec   *specs.Spec // the new bundle's
	Rootfs string      // the new image's rootfs (read only)
	// Stop is the grace the old process gets after SIGTERM.
	Stop time.Duration
	// Check says whether the started container works (nil: it runs);
	// ExecCheck, that it runs a command in the container.
	Check     func(ctx context.Context) error
	ExecCheck bool
	// InitChanged names the image settings whose values differ from the
	// container's and that a CT keeps in raw config lines (User,
	// WorkingDir, StopSignal).
	InitChanged []string
}
