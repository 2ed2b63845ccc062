package runtime

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/imagespec"
)

// upgradeRegistry serves images and counts manifest requests.
type upgradeRegistry struct {
	host      string
	manifests atomic.Int64
}

func newUpgradeRegistry(t *testing.T) *upgradeRegistry {
	t.Helper()
	ur := &upgradeRegistry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			ur.manifests.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ur.host = strings.TrimPrefix(srv.URL, "http://")
	return ur
}

// push tags a new random image as repoTag and returns its digest.
func (ur *upgradeRegistry) push(t *testing.T, repoTag string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(ur.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func upgradeRuntime(t *testing.T, f *fake) *Runtime {
	t.Helper()
	rt := newRuntime(t, f)
	cfg, err := config.Parse(fmt.Appendf(nil, "default_backend = \"fake\"\ndata_dir = %q\n", filepath.Join(t.TempDir(), "data")))
	if err != nil {
		t.Fatal(err)
	}
	rt.Config = cfg
	return rt
}

// imageContainer creates id as a container made from image name at digest
// (the annotations imagespec sets), on the fake backend.
func imageContainer(t *testing.T, rt *Runtime, id, name, digest string) {
	t.Helper()
	ann := map[string]string{imagespec.AnnotationImageName: name, imagespec.AnnotationImageDigest: digest}
	if err := rt.Create(context.Background(), id, BundleRequest{Dir: writeBundle(t, ann)}, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckUpgrades(t *testing.T) {
	rt := upgradeRuntime(t, newFake())
	reg := newUpgradeRegistry(t)
	ctx := context.Background()
	old := reg.push(t, "app/web:1")
	cur := reg.push(t, "app/web:1") // the tag moved on
	db := reg.push(t, "app/db:2")
	web, dbName := reg.host+"/app/web:1", reg.host+"/app/db:2"
	pin := reg.host + "/app/web@" + old

	imageContainer(t, rt, "a-stale", web, old)
	imageContainer(t, rt, "b-fresh", web, cur)
	imageContainer(t, rt, "c-db", dbName, db)
	imageContainer(t, rt, "d-pinned", pin, old)
	if err := rt.Create(ctx, "e-bundle", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}

	got, err := rt.CheckUpgrades(ctx, nil, image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []UpgradeStatus{
		{ID: "a-stale", Image: web, Current: old, Available: cur, UpToDate: false},
		{ID: "b-fresh", Image: web, Current: cur, Available: cur, UpToDate: true},
		{ID: "c-db", Image: dbName, Current: db, Available: db, UpToDate: true},
		{ID: "d-pinned", Image: pin, Current: old, Available: old, UpToDate: true, Pinned: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses, want %d (the bundle container skipped): %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("status %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// One manifest request per name (web once for two containers), none
	// for the pinned one.
	if n := reg.manifests.Load(); n != 2 {
		t.Errorf("%d manifest requests, want 2", n)
	}
	// Nothing was pulled.
	st, err := rt.ImageStore()
	if err != nil {
		t.Fatal(err)
	}
	if ls, _ := st.List(); len(ls) != 0 {
		t.Errorf("the check stored images: %+v", ls)
	}

	// Named: only those, each once, in the order given.
	got, err = rt.CheckUpgrades(ctx, []string{"c-db", "a-stale", "c-db"}, image.PullOptions{})
	if err != nil || len(got) != 2 || got[0].ID != "c-db" || got[1].ID != "a-stale" || got[1].UpToDate {
		t.Errorf("named check: %+v %v", got, err)
	}
	// A bundle container named, or an unknown id, fails the call.
	_, err = rt.CheckUpgrades(ctx, []string{"a-stale", "e-bundle"}, image.PullOptions{})
	if errdefs.Category(err) != errdefs.ErrInvalidArgument || !strings.Contains(err.Error(), `container "e-bundle" was not made from an image`) {
		t.Errorf("bundle container named: %v", err)
	}
	_, err = rt.CheckUpgrades(ctx, []string{"nope"}, image.PullOptions{})
	if errdefs.Category(err) != errdefs.ErrNotFound || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown id: %v", err)
	}
}

func TestCheckUpgradesRegistryDown(t *testing.T) {
	rt := upgradeRuntime(t, newFake())
	reg := newUpgradeRegistry(t)
	ctx := context.Background()
	d := reg.push(t, "app/web:1")
	down := httptest.NewServer(http.NotFoundHandler())
	downHost := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	imageContainer(t, rt, "gone", downHost+"/app/web:1", d)
	imageContainer(t, rt, "here", reg.host+"/app/web:1", d)

	got, err := rt.CheckUpgrades(ctx, nil, image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("statuses: %+v", got)
	}
	g, h := got[0], got[1]
	if g.ID != "gone" || g.Error == "" || g.Available != "" || g.UpToDate || errdefs.Category(g.Err) != errdefs.ErrUnavailable {
		t.Errorf("unreachable registry: %+v (category %v)", g, errdefs.Category(g.Err))
	}
	if strings.Contains(g.Error, "\n") || !strings.Contains(g.Error, downHost) {
		t.Errorf("error %q is not one line naming the registry", g.Error)
	}
	if h.ID != "here" || h.Error != "" || h.Err != nil || !h.UpToDate || h.Available != d {
		t.Errorf("the other container: %+v", h)
	}
}

// TestCheckUpgradesPlatform: without --platform a container is checked for
// its stored image's platform, not this host's.
func TestCheckUpgradesPlatform(t *testing.T) {
	rt := upgradeRuntime(t, newFake())
	ctx := context.Background()
	st, err := rt.ImageStore()
	if err != nil {
		t.Fatal(err)
	}
	reg := newUpgradeRegistry(t)
	// An index of an amd64 and an s390x image under one tag.
	mk := func(arch string) v1.Image {
		img, _ := random.Image(64, 1)
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, _ = mutate.ConfigFile(img, cf)
		return img
	}
	amd, s390 := mk("amd64"), mk("s390x")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: s390, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}})
	tag, _ := name.NewTag(reg.host + "/multi/arch:1")
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	ref := tag.String()
	img, err := st.Pull(ctx, ref, image.PullOptions{Platform: "linux/s390x", Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	imageContainer(t, rt, "s390", img.Name, img.Digest.String())
	got, err := rt.CheckUpgrades(ctx, nil, image.PullOptions{})
	if err != nil || len(got) != 1 || !got[0].UpToDate || got[0].Error != "" {
		t.Fatalf("check of an s390x container: %+v %v", got, err)
	}
	// Asked for another platform, the answer is that platform's image.
	got, err = rt.CheckUpgrades(ctx, nil, image.PullOptions{Platform: "linux/amd64"})
	amdDigest, _ := amd.Digest()
	if err != nil || len(got) != 1 || got[0].UpToDate || got[0].Available != amdDigest.String() {
		t.Fatalf("check for linux/amd64: %+v %v", got, err)
	}
}

func TestStateShowsImageProvenance(t *testing.T) {
	rt := upgradeRuntime(t, newFake())
	ctx := context.Background()
	d := "sha256:" + strings.Repeat("ab", 32)
	imageContainer(t, rt, "img", "example.com/app:1", d)
	if err := rt.Create(ctx, "bun", BundleRequest{Dir: writeBundle(t, nil)}, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	states, err := rt.List(ctx)
	if err != nil || len(states) != 2 {
		t.Fatalf("List: %v %v", states, err)
	}
	if s := states[1]; s.ID != "img" || s.Image != "example.com/app:1" || s.ImageDigest != d {
		t.Errorf("image container: %+v", s)
	}
	if s := states[0]; s.ID != "bun" || s.Image != "" || s.ImageDigest != "" {
		t.Errorf("bundle container: %+v", s)
	}
}
