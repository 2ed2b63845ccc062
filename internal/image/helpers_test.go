package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// syncBuffer is a log sink safe for the pull's concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newStore(t *testing.T) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := Open(t.TempDir(), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// tarOf builds a tar of the given name/content pairs (names ending in "/"
// are directories).
func tarOf(t *testing.T, pairs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(pairs); i += 2 {
		hdr := &tar.Header{Name: pairs[i], Mode: 0o644, Size: int64(len(pairs[i+1])), Typeflag: tar.TypeReg,
			ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(pairs[i], "/") {
			hdr.Mode, hdr.Size, hdr.Typeflag = 0o755, 0, tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(pairs[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipLayer(t *testing.T, pairs ...string) v1.Layer {
	t.Helper()
	b := tarOf(t, pairs...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func zstdLayer(t *testing.T, pairs ...string) v1.Layer {
	t.Helper()
	b := tarOf(t, pairs...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rawLayer(t *testing.T, pairs ...string) v1.Layer {
	return static.NewLayer(tarOf(t, pairs...), types.OCIUncompressedLayer)
}

// buildImage makes a linux/arch image of the layers; tag shows up in the
// config so images with equal layers still differ.
func buildImage(t *testing.T, arch, tag string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Config.Labels = map[string]string{"test": tag}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// multiImage is the standard three-layer test image; the top layer
// overrides a file of the bottom one.
func multiImage(t *testing.T) v1.Image {
	return buildImage(t, "amd64", "multi",
		gzipLayer(t, "etc/", "", "etc/os-release", "ID=test\n", "bin/", "", "bin/sh", "#!fake shell\n"),
		gzipLayer(t, "usr/", "", "usr/share/", "", "usr/share/data.txt", strings.Repeat("payload ", 4096)),
		gzipLayer(t, "etc/", "", "etc/os-release", "ID=test-v2\n", "etc/hostname", "box\n"))
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testRegistry is ggcr's in-memory registry behind a wrapper that counts
// blob downloads and lets a test intercept requests.
type testRegistry struct {
	host     string // pulls go here, through the wrapper
	pushHost string // the same registry, unwrapped
	blobGets atomic.Int64
	inner    http.Handler
	mu       sync.Mutex
	hook     func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			tr.blobGets.Add(1)
		}
		tr.mu.Lock()
		hook := tr.hook
		tr.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		tr.inner.ServeHTTP(w, r)
	}))
	t.Cleanup(wrapped.Close)
	direct := httptest.NewServer(tr.inner)
	t.Cleanup(direct.Close)
	tr.host = strings.TrimPrefix(wrapped.URL, "http://")
	tr.pushHost = strings.TrimPrefix(direct.URL, "http://")
	return tr
}

func (tr *testRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.hook = h
}

func (tr *testRegistry) push(t *testing.T, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(tr.pushHost + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func (tr *testRegistry) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) {
	t.Helper()
	ref, err := name.ParseReference(tr.pushHost + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
}

// blob returns what the registry serves for a blob.
func (tr *testRegistry) blob(r *http.Request) []byte {
	rec := httptest.NewRecorder()
	tr.inner.ServeHTTP(rec, r)
	return rec.Body.Bytes()
}

// platformIndex is an index of a linux/amd64 and a linux/arm64 image.
func platformIndex(t *testing.T) (idx v1.ImageIndex, amd, arm v1.Image) {
	t.Helper()
	amd = buildImage(t, "amd64", "amd", gzipLayer(t, "arch", "amd64\n"))
	arm = buildImage(t, "arm64", "arm", gzipLayer(t, "arch", "arm64\n"))
	idx = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	return idx, amd, arm
}

func wantCat(t *testing.T, err, cat error) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %v error, got nil", cat)
	}
	if got := errdefs.Category(err); got != cat {
		t.Fatalf("want category %v, got %v: %v", cat, got, err)
	}
	if strings.Contains(errdefs.OneLine(err), "\n") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

// checkBlobs asserts every file in blobs/ hashes to its name and tmp/ is
// empty: no half blob is ever visible.
func checkBlobs(t *testing.T, s *Store) (n int) {
	t.Helper()
	ents, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(s.path("blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("blob %s does not match its content", e.Name())
		}
	}
	tmp, err := os.ReadDir(s.path("tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tmp {
		t.Errorf("tmp/ holds %s", e.Name())
	}
	return len(ents)
}

func hasBlobFile(s *Store, h v1.Hash) bool {
	_, err := os.Stat(s.path("blobs", "sha256", h.Hex))
	return err == nil
}

// untar is the test apply function: a plain extraction, later layers
// overwriting earlier files.
func untar(root string, r io.Reader, _ string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(root, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
		}
	}
}
