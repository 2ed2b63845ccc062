package image

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func TestPullByTag(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	ref := reg.host + "/test/multi:v1"

	got, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := digestOf(t, img); got.Digest != want {
		t.Fatalf("digest %s, want %s", got.Digest, want)
	}
	if got.Name != ref {
		t.Errorf("name %q, want %q", got.Name, ref)
	}
	if !slices.Equal(got.Config.Config.Cmd, []string{"/bin/sh"}) || got.Config.Config.Labels["test"] != "multi" {
		t.Errorf("config not the pushed one: %+v", got.Config.Config)
	}
	layers, _ := img.Layers()
	if len(got.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(layers))
	}
	for i, l := range layers {
		diffID, _ := l.DiffID()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		want := LayerInfo{Digest: digestOf(t, l), DiffID: diffID, Size: size, MediaType: string(mt)}
		if got.Layers[i] != want {
			t.Errorf("layer %d = %+v, want %+v", i, got.Layers[i], want)
		}
	}
	if n := checkBlobs(t, s); n != 5 { // manifest, config, 3 layers
		t.Errorf("%d blobs stored, want 5", n)
	}
	again, err := s.Get(ref)
	if err != nil || again.Digest != got.Digest || len(again.Layers) != 3 {
		t.Fatalf("Get after pull: %v, %v", again, err)
	}
}

func TestPullByDigest(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	d := digestOf(t, img)
	ref := reg.host + "/test/multi@" + d.String()

	got, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != d || got.Name != ref {
		t.Fatalf("got %s %s, want %s %s", got.Name, got.Digest, ref, d)
	}
	if _, err := s.Get(ref); err != nil {
		t.Fatal(err)
	}
}

// TestGetByDigestAfterTag: an image pulled by tag, then asked for by a
// digest reference, is named by that reference (the pin a container made
// from it records), not by its tag.
func TestGetByDigestAfterTag(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	d := digestOf(t, img)
	tag := reg.host + "/test/multi:v1"
	if _, err := s.Pull(context.Background(), tag, PullOptions{Quiet: true}); err != nil {
		t.Fatal(err)
	}
	pin := reg.host + "/test/multi@" + d.String()
	got, err := s.Get(pin)
	if err != nil || got.Digest != d || got.Name != pin {
		t.Fatalf("Get(%s) = %+v %v, want that name", pin, got, err)
	}
	// The store's own names are unchanged; by bare digest the tag names it.
	if got, err := s.Get(d.String()); err != nil || got.Name != tag {
		t.Fatalf("Get(digest) = %+v %v, want %s", got, err, tag)
	}
	if got, err := s.Get(tag); err != nil || got.Name != tag {
		t.Fatalf("Get(tag) = %+v %v", got, err)
	}
}

func TestPullSkipsStoredBlobs(t *testing.T) {
	s, logs := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	ctx := context.Background()

	if _, err := s.Pull(ctx, reg.host+"/test/multi:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Swap(0); n != 4 {
		t.Errorf("first pull fetched %d blobs, want 4 (config + 3 layers)", n)
	}
	if n := strings.Count(logs.String(), "msg=\"fetched layer\""); n != 3 {
		t.Errorf("%d 'fetched layer' log lines, want 3:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "msg=\"pulled image\""); n != 1 {
		t.Errorf("%d 'pulled image' log lines, want 1", n)
	}

	if _, err := s.Pull(ctx, reg.host+"/test/multi:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Swap(0); n != 0 {
		t.Errorf("second pull fetched %d blobs, want 0", n)
	}
	if n := strings.Count(logs.String(), "msg=\"fetched layer\""); n != 3 {
		t.Errorf("second pull logged fetched layers (%d lines in all)", n)
	}

	// An image sharing two layers needs only its config and new layer.
	layers, _ := img.Layers()
	other := buildImage(t, "amd64", "other", layers[0], layers[1], gzipLayer(t, "new", "file\n"))
	reg.push(t, "test/other:v1", other)
	if _, err := s.Pull(ctx, reg.host+"/test/other:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Swap(0); n != 2 {
		t.Errorf("pull sharing two layers fetched %d blobs, want 2", n)
	}
}

func TestPullPlatform(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	idx, amd, arm := platformIndex(t)
	reg.pushIndex(t, "test/multiarch:1", idx)
	ref := reg.host + "/test/multiarch:1"
	ctx := context.Background()

	for _, tc := range []struct {
		platform string
		want     v1.Image
	}{
		{"linux/arm64", arm},
		{"linux/arm64/v8", arm},
		{"linux/amd64", amd},
	} {
		got, err := s.Pull(ctx, ref, PullOptions{Platform: tc.platform})
		if err != nil {
			t.Fatalf("%s: %v", tc.platform, err)
		}
		if want := digestOf(t, tc.want); got.Digest != want {
			t.Errorf("%s: digest %s, want %s", tc.platform, got.Digest, want)
		}
		if got.Config.OS+"/"+got.Config.Architecture != strings.Join(strings.Split(tc.platform, "/")[:2], "/") {
			t.Errorf("%s: config is %s/%s", tc.platform, got.Config.OS, got.Config.Architecture)
		}
	}
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		got, err := s.Pull(ctx, ref, PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Config.Architecture != runtime.GOARCH {
			t.Errorf("default platform pulled %s, host is %s", got.Config.Architecture, runtime.GOARCH)
		}
	}

	_, err := s.Pull(ctx, ref, PullOptions{Platform: "linux/s390x"})
	wantCat(t, err, errdefs.ErrNotFound)
	for _, want := range []string{"linux/s390x", "linux/amd64", "linux/arm64/v8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing-platform error %q does not mention %s", err, want)
		}
	}
	_, err = s.Pull(ctx, ref, PullOptions{Platform: "linux"})
	wantCat(t, err, errdefs.ErrInvalidArgument)
}

const (
	authUser = "alice"
	authPass = "s3cr3t-pa55word"
)

// authRegistry serves the multi image only with basic auth.
func authRegistry(t *testing.T) (*testRegistry, string) {
	reg := newRegistry(t)
	reg.push(t, "test/private:v1", multiImage(t))
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == authUser && p == authPass {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	})
	return reg, reg.host + "/test/private:v1"
}

// isolateAuth points every auth file location at empty temp dirs.
func isolateAuth(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, v := range []string{"DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"} {
		t.Setenv(v, "")
	}
}

func writeAuth(t *testing.T, file, key, user, pass string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.WriteFile(file, fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, key, b64), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPullAuth(t *testing.T) {
	isolateAuth(t)
	reg, ref := authRegistry(t)
	ctx := context.Background()
	denied := func(t *testing.T, s *Store, logs *syncBuffer, opts PullOptions) {
		t.Helper()
		_, err := s.Pull(ctx, ref, opts)
		wantCat(t, err, errdefs.ErrPermissionDenied)
		if h := errdefs.Hint(err); h != authHint {
			t.Errorf("hint %q, want %q", h, authHint)
		}
		for _, secret := range []string{authPass, "wrong-pa55"} {
			if strings.Contains(errdefs.OneLine(err), secret) || strings.Contains(logs.String(), secret) {
				t.Errorf("password shown: %s / %s", errdefs.OneLine(err), logs)
			}
		}
	}
	ok := func(t *testing.T, opts PullOptions) {
		t.Helper()
		s, logs := newStore(t)
		if _, err := s.Pull(ctx, ref, opts); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), authPass) {
			t.Errorf("password logged: %s", logs)
		}
	}

	t.Run("none", func(t *testing.T) {
		s, logs := newStore(t)
		denied(t, s, logs, PullOptions{})
	})
	t.Run("wrong creds", func(t *testing.T) {
		s, logs := newStore(t)
		denied(t, s, logs, PullOptions{Creds: authUser + ":wrong-pa55"})
	})
	t.Run("creds", func(t *testing.T) {
		ok(t, PullOptions{Creds: authUser + ":" + authPass})
	})
	t.Run("creds without colon", func(t *testing.T) {
		s, _ := newStore(t)
		_, err := s.Pull(ctx, ref, PullOptions{Creds: "justapassword"})
		wantCat(t, err, errdefs.ErrInvalidArgument)
		if strings.Contains(err.Error(), "justapassword") {
			t.Errorf("creds echoed: %v", err)
		}
	})
	t.Run("DOCKER_CONFIG", func(t *testing.T) {
		dir := t.TempDir()
		writeAuth(t, filepath.Join(dir, "config.json"), "http://"+reg.host, authUser, authPass)
		t.Setenv("DOCKER_CONFIG", dir)
		ok(t, PullOptions{})
	})
	t.Run("home docker config", func(t *testing.T) {
		writeAuth(t, filepath.Join(os.Getenv("HOME"), ".docker", "config.json"), reg.host, authUser, authPass)
		defer os.RemoveAll(filepath.Join(os.Getenv("HOME"), ".docker"))
		ok(t, PullOptions{})
	})
	t.Run("REGISTRY_AUTH_FILE", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "auth.json")
		writeAuth(t, f, reg.host, authUser, authPass)
		t.Setenv("REGISTRY_AUTH_FILE", f)
		ok(t, PullOptions{})
	})
	t.Run("XDG_RUNTIME_DIR repo-scoped key", func(t *testing.T) {
		dir := t.TempDir()
		writeAuth(t, filepath.Join(dir, "containers", "auth.json"), reg.host+"/test", authUser, authPass)
		t.Setenv("XDG_RUNTIME_DIR", dir)
		ok(t, PullOptions{})
	})
	t.Run("REGISTRY_AUTH_FILE before DOCKER_CONFIG", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "auth.json")
		writeAuth(t, f, reg.host, authUser, "wrong-pa55")
		t.Setenv("REGISTRY_AUTH_FILE", f)
		dir := t.TempDir()
		writeAuth(t, filepath.Join(dir, "config.json"), reg.host, authUser, authPass)
		t.Setenv("DOCKER_CONFIG", dir)
		s, logs := newStore(t)
		denied(t, s, logs, PullOptions{})
	})
	t.Run("falls through a file without the registry", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "auth.json")
		writeAuth(t, f, "other.example.com", authUser, "wrong-pa55")
		t.Setenv("REGISTRY_AUTH_FILE", f)
		dir := t.TempDir()
		writeAuth(t, filepath.Join(dir, "config.json"), reg.host, authUser, authPass)
		t.Setenv("DOCKER_CONFIG", dir)
		ok(t, PullOptions{})
	})
}

func TestPullWrongDigest(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	ctx := context.Background()

	other := sha256Of([]byte("not an image"))
	_, err := s.Pull(ctx, reg.host+"/test/multi@"+other.String(), PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)

	// A registry answering a digest request with other content is refused.
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/manifests/"+other.String()) {
			return false
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimSuffix(r.URL.Path, other.String()) + "v1"
		reg.inner.ServeHTTP(w, r2)
		return true
	})
	_, err = s.Pull(ctx, reg.host+"/test/multi@"+other.String(), PullOptions{})
	wantCat(t, err, errdefs.ErrInvalidArgument)
	if !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("error %q does not say the digest mismatches", err)
	}
	if n := checkBlobs(t, s); n != 0 {
		t.Errorf("%d blobs stored from a refused manifest", n)
	}
	if ls, _ := s.List(); len(ls) != 0 {
		t.Errorf("refused image listed: %+v", ls)
	}
}

func TestPullTamperedLayer(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	layers, _ := img.Layers()
	target := digestOf(t, layers[1])
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+target.String()) {
			return false
		}
		b := reg.blob(r)
		b[len(b)/2] ^= 0xff // same size, different content
		w.Write(b)
		return true
	})
	ref := reg.host + "/test/multi:v1"
	_, err := s.Pull(context.Background(), ref, PullOptions{})
	wantCat(t, err, errdefs.ErrInvalidArgument)
	if !strings.Contains(err.Error(), "blob "+target.String()+" does not match its digest") {
		t.Errorf("error %q does not name the bad blob", err)
	}
	if hasBlobFile(s, target) {
		t.Error("tampered blob stored")
	}
	checkBlobs(t, s)
	if _, err := s.Get(ref); errdefs.Category(err) != errdefs.ErrNotFound {
		t.Errorf("image recorded after a refused pull: %v", err)
	}
}

func TestPullInterrupted(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	layers, _ := img.Layers()
	target := digestOf(t, layers[1])
	// Send the headers and half the blob, then drop the connection.
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+target.String()) {
			return false
		}
		b := reg.blob(r)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(b))
		buf.Write(b[:len(b)/2])
		buf.Flush()
		conn.Close()
		return true
	})
	ref := reg.host + "/test/multi:v1"
	_, err := s.Pull(context.Background(), ref, PullOptions{})
	wantCat(t, err, errdefs.ErrUnavailable)
	if hasBlobFile(s, target) {
		t.Error("half blob stored")
	}
	checkBlobs(t, s)
	if ls, _ := s.List(); len(ls) != 0 {
		t.Errorf("interrupted image listed: %+v", ls)
	}

	reg.setHook(nil)
	got, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatalf("re-pull: %v", err)
	}
	if got.Digest != digestOf(t, img) {
		t.Errorf("re-pull digest %s", got.Digest)
	}
	if n := checkBlobs(t, s); n != 5 {
		t.Errorf("%d blobs after re-pull, want 5", n)
	}
}

func TestPullUnavailable(t *testing.T) {
	s, _ := newStore(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	_, err := s.Pull(context.Background(), host+"/test/multi:v1", PullOptions{})
	wantCat(t, err, errdefs.ErrUnavailable)
}

func TestPullCanceled(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	reg.push(t, "test/multi:v1", multiImage(t))
	ctx, cancel := context.WithCancel(context.Background())
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			cancel() // the client gives up while a blob is on its way
		}
		return false
	})
	_, err := s.Pull(ctx, reg.host+"/test/multi:v1", PullOptions{})
	wantCat(t, err, errdefs.ErrUnavailable)
	checkBlobs(t, s)
}

func TestParseRef(t *testing.T) {
	wd, _ := os.Getwd()
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"},
		{"docker://busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/user/app", "docker.io/user/app:latest"},
		{"quay.io/org/app:v2", "quay.io/org/app:v2"},
		{"127.0.0.1:5000/repo@sha256:" + strings.Repeat("ab", 32), "127.0.0.1:5000/repo@sha256:" + strings.Repeat("ab", 32)},
		{"oci:/abs/dir:tag", "oci:/abs/dir:tag"},
		{"oci:rel/dir", "oci:" + filepath.Join(wd, "rel/dir")},
		{"oci-archive:/a/f.tar:v1", "oci-archive:/a/f.tar:v1"},
		{"docker-archive:/a/f.tar", "docker-archive:/a/f.tar"},
		{"docker-archive:/a/f.tar:example.com/app:1", "docker-archive:/a/f.tar:example.com/app:1"},
	} {
		r, err := parseRef(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if r.name != tc.want {
			t.Errorf("%s: normalised to %q, want %q", tc.in, r.name, tc.want)
		}
	}
	for _, bad := range []string{"dir:/tmp/x", "containers-storage:busybox", "http://example.com/x", "oci:", "Upper/Case", "docker-archive:/f.tar:Bad Ref"} {
		_, err := parseRef(bad)
		wantCat(t, err, errdefs.ErrInvalidArgument)
		if !strings.Contains(errdefs.Hint(err), "oci-archive:FILE") {
			t.Errorf("%s: hint %q does not give the syntax", bad, errdefs.Hint(err))
		}
	}
}
