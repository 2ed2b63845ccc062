package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/store"
)

// fake is an in-memory backend that records its calls.
type fake struct {
	createErr  error
	status     map[string]string // id -> live status; absent means gone
	calls      []string
	lastForce  bool
	lastSig    unix.Signal
	stateDirOK bool
}

func newFake() *fake { return &fake{status: map[string]string{}} }

func (f *fake) Name() string { return "fake" }

func (f *fake) Create(_ context.Context, c *backend.Container, _ backend.CreateOpts) error {
	f.calls = append(f.calls, "create "+c.ID)
	if _, err := os.Stat(c.StateDir); err == nil {
		f.stateDirOK = true
	}
	if f.createErr != nil {
		return f.createErr
	}
	c.Private = json.RawMessage(`{"fake":true}`)
	f.status[c.ID] = "created"
	return nil
}

func (f *fake) Start(_ context.Context, c *backend.Container) error {
	f.calls = append(f.calls, "start "+c.ID)
	f.status[c.ID] = "running"
	return nil
}

func (f *fake) State(_ context.Context, c *backend.Container) (backend.Status, error) {
	s, ok := f.status[c.ID]
	if !ok {
		return backend.Status{}, errdefs.New(errdefs.ErrNotFound, "gone")
	}
	return backend.Status{Status: s, Pid: 42, Annotations: map[string]string{"fake.node": "n1"}}, nil
}

func (f *fake) Kill(_ context.Context, c *backend.Container, sig unix.Signal, _ bool) error {
	f.calls = append(f.calls, "kill "+c.ID)
	f.lastSig = sig
	return nil
}

func (f *fake) Delete(_ context.Context, c *backend.Container, force bool) error {
	f.calls = append(f.calls, "delete "+c.ID)
	f.lastForce = force
	delete(f.status, c.ID)
	return nil
}

func (f *fake) Exec(context.Context, *backend.Container, *specs.Process, backend.ExecOpts) (int, error) {
	return 0, nil
}

func newRuntime(t *testing.T, f *fake) *Runtime {
	t.Helper()
	cfg, err := config.Parse([]byte(`default_backend = "fake"`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	reg := backend.NewRegistry()
	reg.Register("fake", func() (backend.Backend, error) { return f, nil })
	return &Runtime{Store: st, Config: cfg, Backends: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func writeBundle(t *testing.T, annotations map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := specs.Spec{
		Version:     "1.0.2",
		Root:        &specs.Root{Path: "rootfs"},
		Process:     &specs.Process{Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Annotations: annotations,
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCreateStateStartDelete(t *testing.T) {
	f := newFake()
	rt := newRuntime(t, f)
	ctx := context.Background()
	b := writeBundle(t, map[string]string{"k": "v"})
	if err := rt.Create(ctx, "c1", BundleRequest{Dir: b}, backend.CreateOpts{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !f.stateDirOK {
		t.Error("backend Create ran before the state dir was reserved")
	}
	rec, err := rt.Store.Load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != store.StatusCreated || rec.Backend != "fake" || rec.Bundle != b ||
		rec.Rootfs != filepath.Join(b, "rootfs") || rec.Annotations["k"] != "v" {
		t.Errorf("record = %+v", rec)
	}
	var priv map[string]bool
	if err := json.Unmarshal(rec.Private, &priv); err != nil || !priv["fake"] {
		t.Errorf("Private = %s (%v), want the backend's {\"fake\":true}", rec.Private, err)
	}
	if rec.RouteReason != "built-in default" {
		t.Errorf("RouteReason = %q, want built-in default", rec.RouteReason)
	}
	st, err := rt.State(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != specs.StateCreated || st.Pid != 42 || st.Backend != "fake" || st.ID != "c1" ||
		st.Annotations["k"] != "v" || st.Annotations["fake.node"] != "n1" {
		t.Errorf("State = %+v", st)
	}
	if err := rt.Create(ctx, "c1", BundleRequest{Dir: b}, backend.CreateOpts{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Create = %v, want ErrAlreadyExists", err)
	}
	if n := strings.Count(strings.Join(f.calls, ","), "create c1"); n != 1 {
		t.Errorf("backend Create called %d times, want 1 (calls %v)", n, f.calls)
	}
	if err := rt.Start(ctx, "c1"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := rt.Kill(ctx, "c1", unix.SIGUSR1, false); err != nil || f.lastSig != unix.SIGUSR1 {
		t.Errorf("Kill = %v, sig %v", err, f.lastSig)
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != 1 || list[0].Status != specs.StateRunning {
		t.Errorf("List = %+v, %v", list, err)
	}
	if err := rt.Delete(ctx, "c1", false); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if f.lastForce {
		t.Error("Delete without force passed force=true")
	}
	if _, err := rt.State(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State after Delete = %v, want ErrNotFound", err)
	}
}

func TestCreateFailureRollsBack(t *testing.T) {
	f := newFake()
	f.createErr = errdefs.New(errdefs.ErrFailedPrecondition, "no cgroup")
	rt := newRuntime(t, f)
	err := rt.Create(context.Background(), "bad", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Create = %v, want the backend's FailedPrecondition", err)
	}
	if _, err := os.Stat(rt.Store.Dir("bad")); !os.IsNotExist(err) {
		t.Errorf("state dir left after failed create (stat err %v)", err)
	}
	if !f.lastForce || !strings.Contains(strings.Join(f.calls, ","), "delete bad") {
		t.Errorf("rollback did not force-delete in the backend: calls %v", f.calls)
	}
	// The id is free again.
	f.createErr = nil
	if err := rt.Create(context.Background(), "bad", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{}); err != nil {
		t.Errorf("Create after rollback: %v", err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	f := newFake()
	rt := newRuntime(t, f)
	ctx := context.Background()
	if err := rt.Create(ctx, "bad/id", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad id: %v", err)
	}
	if err := rt.Create(ctx, "x", BundleRequest{Dir: filepath.Join(t.TempDir(), "none")}, backend.CreateOpts{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("missing bundle: %v", err)
	}
	err := rt.Create(ctx, "y", BundleRequest{Dir: writeBundle(t, map[string]string{"org.proxcage.backend": "pve"})}, backend.CreateOpts{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `unknown backend "pve"`) {
		t.Errorf("unknown backend by annotation: %v", err)
	}
	if h := errdefs.Hint(err); !strings.Contains(h, "bundle annotation") {
		t.Errorf("hint %q should say which rule chose the backend", h)
	}
	if len(f.calls) != 0 {
		t.Errorf("backend was called for refused creates: %v", f.calls)
	}
	recs, _ := rt.Store.List()
	if len(recs) != 0 {
		t.Errorf("refused creates left records: %+v", recs)
	}
}

func TestRoute(t *testing.T) {
	rt := newRuntime(t, newFake())
	d, err := rt.Route("web", BundleRequest{Dir: writeBundle(t, nil)})
	if err != nil || d.Backend != "fake" || d.Rule != -1 {
		t.Errorf("Route default = %+v, %v", d, err)
	}
	d, err = rt.Route("web", BundleRequest{Dir: writeBundle(t, map[string]string{"org.proxcage.backend": "lxc"})})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || d.Backend != "lxc" || !strings.Contains(err.Error(), `unknown backend "lxc"`) {
		t.Errorf("Route to unknown backend = %+v, %v", d, err)
	}
}

func TestLeftoverCreatingRecord(t *testing.T) {
	f := newFake()
	rt := newRuntime(t, f)
	ctx := context.Background()
	h, err := rt.Store.Reserve(&store.Record{ID: "half", Backend: "fake", Bundle: "/b"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.State(ctx, "half")
	if err != nil || st.Status != specs.StateCreating {
		t.Errorf("State while the creator holds the lock = %+v, %v; want creating", st, err)
	}
	h.Unlock() // the creator died
	st, err = rt.State(ctx, "half")
	if err != nil || st.Status != specs.StateStopped {
		t.Errorf("State of an abandoned reservation = %+v, %v; want stopped", st, err)
	}
	if err := rt.Start(ctx, "half"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Start of a creating record = %v, want FailedPrecondition", err)
	}
	if err := rt.Kill(ctx, "half", unix.SIGKILL, false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Kill of a creating record = %v, want FailedPrecondition", err)
	}
	if err := rt.Delete(ctx, "half", false); err != nil {
		t.Fatalf("Delete of an abandoned reservation: %v", err)
	}
	if !f.lastForce {
		t.Error("Delete of a creating record did not force the backend cleanup")
	}
	if _, err := rt.Store.Load("half"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("record still there: %v", err)
	}
}

func TestOptionalCapabilitiesUnsupported(t *testing.T) {
	rt := newRuntime(t, newFake())
	ctx := context.Background()
	if err := rt.Create(ctx, "c", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{
		"pause":  rt.Pause(ctx, "c"),
		"resume": rt.Resume(ctx, "c"),
		"update": rt.Update(ctx, "c", &specs.LinuxResources{}),
	}
	_, err := rt.Pids(ctx, "c")
	checks["ps"] = err
	for what, err := range checks {
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "fake backend does not support "+what) {
			t.Errorf("%s on a backend without it = %v", what, err)
		}
	}
	if _, err := rt.Exec(ctx, "c", ExecRequest{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Exec without a command = %v, want ErrInvalidArgument", err)
	}
}

// A backend that cannot wait for a container's end refuses a foreground
// run before anything is made. Before, pve created and started the CT and
// only then refused, leaving it running.
func TestForegroundRunRefusedBeforeCreate(t *testing.T) {
	f := newFake() // no Wait: not a backend.Attacher
	rt := newRuntime(t, f)
	rt.Config.DataDir = filepath.Join(t.TempDir(), "data")
	_, err := rt.Run(context.Background(), "fg", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "does not support running in the foreground") ||
		!strings.Contains(errdefs.Hint(err), "--detach") {
		t.Fatalf("foreground run: %v (hint %q)", err, errdefs.Hint(err))
	}
	// An image run is refused before the pull: this reference would fail
	// to pull (nothing listens there), and the data dir is never made.
	_, err = rt.RunFromImage(context.Background(), "fg2", ImageRequest{Ref: "127.0.0.1:1/none:1"}, backend.CreateOpts{})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "foreground") {
		t.Fatalf("foreground image run: %v", err)
	}
	if _, err := os.Stat(rt.Config.DataDir); !os.IsNotExist(err) {
		t.Errorf("refused image run made the data dir (stat: %v)", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("backend called: %v", f.calls)
	}
	if recs, _ := rt.Store.List(); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
	// Detached, the same run works.
	if _, err := rt.Run(context.Background(), "fg", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{Stdio: backend.Stdio{Detach: true}}); err != nil {
		t.Fatalf("detached run: %v", err)
	}
}

// The operator's --annotation values are merged over the bundle's: they
// route, and they reach the backend and the record.
func TestOperatorAnnotations(t *testing.T) {
	f := newFake()
	rt := newRuntime(t, f)
	b := writeBundle(t, map[string]string{"tier": "bundle", "keep": "1"})
	d, err := rt.Route("web", BundleRequest{Dir: b, Annotations: map[string]string{"org.proxcage.backend": "elsewhere"}})
	if d.Backend != "elsewhere" || !strings.Contains(d.Reason, "org.proxcage.backend=elsewhere") || err == nil {
		t.Fatalf("route by --annotation: %+v, %v", d, err)
	}
	if err := rt.Create(context.Background(), "web", BundleRequest{Dir: b, Annotations: map[string]string{"tier": "operator"}}, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	st, err := rt.State(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Annotations["tier"] != "operator" || st.Annotations["keep"] != "1" {
		t.Fatalf("annotations %v", st.Annotations)
	}
	// The bundle itself is not rewritten.
	data, _ := os.ReadFile(filepath.Join(b, "config.json"))
	if !strings.Contains(string(data), `"tier":"bundle"`) {
		t.Fatalf("bundle rewritten: %s", data)
	}
}
