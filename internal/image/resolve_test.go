package image

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// TestResolve: the digest a tag names now, as Pull would choose it, with
// no blob fetched or stored and nothing recorded; a retag is seen at once.
func TestResolve(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	ref := reg.host + "/test/multi:v1"
	ctx := context.Background()

	got, err := s.Resolve(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := digestOf(t, img); got != want {
		t.Fatalf("Resolve = %s, want %s", got, want)
	}
	if n := reg.blobGets.Load(); n != 0 {
		t.Errorf("Resolve fetched %d blobs", n)
	}
	if n := checkBlobs(t, s); n != 0 {
		t.Errorf("Resolve stored %d blobs", n)
	}
	if ls, _ := s.List(); len(ls) != 0 {
		t.Errorf("Resolve recorded images: %+v", ls)
	}
	if _, err := s.Get(ref); errdefs.Category(err) != errdefs.ErrNotFound {
		t.Errorf("Get after Resolve: %v, want not found", err)
	}

	// The same as Pull then, and the new image once the tag moves.
	pulled, err := s.Pull(ctx, ref, PullOptions{Quiet: true})
	if err != nil || pulled.Digest != got {
		t.Fatalf("Pull = %v %v, Resolve said %s", pulled, err, got)
	}
	other := buildImage(t, "amd64", "other", gzipLayer(t, "new", "file\n"))
	reg.push(t, "test/multi:v1", other)
	reg.blobGets.Store(0)
	moved, err := s.Resolve(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := digestOf(t, other); moved != want {
		t.Fatalf("after the retag Resolve = %s, want %s", moved, want)
	}
	if n := reg.blobGets.Load(); n != 0 {
		t.Errorf("Resolve fetched %d blobs", n)
	}
	if again, err := s.Get(ref); err != nil || again.Digest != got {
		t.Errorf("Resolve changed what the store records: %v %v", again, err)
	}

	// By digest: that digest, verified.
	d := digestOf(t, img)
	if byDigest, err := s.Resolve(ctx, reg.host+"/test/multi@"+d.String(), PullOptions{}); err != nil || byDigest != d {
		t.Errorf("Resolve by digest = %s %v, want %s", byDigest, err, d)
	}
}

func TestResolvePlatform(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	idx, amd, arm := platformIndex(t)
	reg.pushIndex(t, "test/multiarch:1", idx)
	ref := reg.host + "/test/multiarch:1"
	ctx := context.Background()
	for platform, want := range map[string]string{"linux/amd64": digestOf(t, amd).String(), "linux/arm64": digestOf(t, arm).String()} {
		got, err := s.Resolve(ctx, ref, PullOptions{Platform: platform})
		if err != nil {
			t.Fatalf("%s: %v", platform, err)
		}
		if got.String() != want {
			t.Errorf("%s: %s, want %s (the image manifest, not the index)", platform, got, want)
		}
	}
	_, err := s.Resolve(ctx, ref, PullOptions{Platform: "linux/s390x"})
	wantCat(t, err, errdefs.ErrNotFound)
	if !strings.Contains(err.Error(), "linux/arm64/v8") {
		t.Errorf("missing-platform error %q does not list what is there", err)
	}
	_, err = s.Resolve(ctx, ref, PullOptions{Platform: "linux"})
	wantCat(t, err, errdefs.ErrInvalidArgument)
	if n := checkBlobs(t, s); n != 0 {
		t.Errorf("%d blobs stored", n)
	}
}

func TestResolveErrors(t *testing.T) {
	isolateAuth(t)
	ctx := context.Background()
	s, _ := newStore(t)
	reg := newRegistry(t)
	reg.push(t, "test/multi:v1", multiImage(t))

	_, err := s.Resolve(ctx, reg.host+"/test/multi:nope", PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
	if !strings.HasPrefix(err.Error(), "resolve "+reg.host+"/test/multi:nope: ") {
		t.Errorf("error %q does not name the reference", err)
	}
	_, err = s.Resolve(ctx, "Upper/Case", PullOptions{})
	wantCat(t, err, errdefs.ErrInvalidArgument)

	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	_, err = s.Resolve(ctx, host+"/test/multi:v1", PullOptions{})
	wantCat(t, err, errdefs.ErrUnavailable)

	_, ref := authRegistry(t)
	_, err = s.Resolve(ctx, ref, PullOptions{})
	wantCat(t, err, errdefs.ErrPermissionDenied)
	if got, err := s.Resolve(ctx, ref, PullOptions{Creds: authUser + ":" + authPass}); err != nil || got.Algorithm != "sha256" {
		t.Errorf("with creds: %s %v", got, err)
	}
}

// TestResolveOCILayout: a local transport resolves as a registry does.
func TestResolveOCILayout(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	img1 := multiImage(t)
	img2 := buildImage(t, "amd64", "second", gzipLayer(t, "two", "2\n"))
	dir := writeLayout(t, img1, img2)
	for tag, img := range map[string]v1.Image{"v1": img1, "v2": img2} {
		got, err := s.Resolve(ctx, "oci:"+dir+":"+tag, PullOptions{})
		if err != nil || got != digestOf(t, img) {
			t.Errorf("%s: %s %v, want %s", tag, got, err, digestOf(t, img))
		}
	}
	_, err := s.Resolve(ctx, "oci:"+dir+":v3", PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
	if n := checkBlobs(t, s); n != 0 {
		t.Errorf("%d blobs stored", n)
	}
}
