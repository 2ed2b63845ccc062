package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// storeImage pulls img into s from a one-image OCI layout.
func storeImage(t *testing.T, s *Store, img v1.Image) *Image {
	t.Helper()
	got, err := s.Pull(context.Background(), "oci:"+writeLayout(t, img, nil)+":v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestOpenLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if _, err := Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"blobs/sha256", "rootfs", "users", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
}

func TestGet(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	ref := reg.host + "/test/multi:v1"
	if _, err := s.Pull(context.Background(), "docker://"+ref, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img)
	for _, q := range []string{ref, "docker://" + ref, d.String(), d.Hex, d.Hex[:12], "sha256:" + d.Hex[:7],
		reg.host + "/test/multi@" + d.String()} {
		got, err := s.Get(q)
		if err != nil {
			t.Errorf("Get(%q): %v", q, err)
			continue
		}
		if got.Digest != d || len(got.Layers) != 3 || got.Config.Config.Labels["test"] != "multi" {
			t.Errorf("Get(%q) = %s", q, got.Digest)
		}
		want := ref
		if strings.Contains(q, "@") {
			want = q // a digest reference names the image it pins
		}
		if got.Name != want {
			t.Errorf("Get(%q).Name = %q, want %q", q, got.Name, want)
		}
	}
	for _, q := range []string{"busybox", reg.host + "/test/multi:v2", strings.Repeat("0", 12), "sha256:" + strings.Repeat("f", 64)} {
		_, err := s.Get(q)
		wantCat(t, err, errdefs.ErrNotFound)
	}
}

func TestFindAmbiguousPrefix(t *testing.T) {
	ix := &index{Images: []indexEntry{
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "abcd1" + strings.Repeat("0", 59)}, Names: []string{"x"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "abcd2" + strings.Repeat("0", 59)}},
	}}
	_, _, err := ix.find("abcd")
	wantCat(t, err, errdefs.ErrInvalidArgument)
	e, _, err := ix.find("abcd2")
	if err != nil || e != &ix.Images[1] {
		t.Fatalf("unique prefix: %v %v", e, err)
	}
}

func TestUseReleaseUsers(t *testing.T) {
	s, _ := newStore(t)
	img := storeImage(t, s, multiImage(t))
	for _, id := range []string{"web", "db"} {
		if err := s.Use(img.Digest, id); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := s.Users(img.Digest); err != nil || !slices.Equal(u, []string{"db", "web"}) {
		t.Fatalf("Users = %v, %v", u, err)
	}
	if err := s.Release(img.Digest, "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(img.Digest, "web"); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if u, _ := s.Users(img.Digest); !slices.Equal(u, []string{"db"}) {
		t.Fatalf("after release: %v", u)
	}
	wantCat(t, s.Use(sha256Of([]byte("other")), "x"), errdefs.ErrNotFound)
	wantCat(t, s.Use(img.Digest, "../escape"), errdefs.ErrInvalidArgument)
}

func TestRemove(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	reg.push(t, "test/multi:v2", img)
	ctx := context.Background()
	v1ref, v2ref := reg.host+"/test/multi:v1", reg.host+"/test/multi:v2"
	for _, r := range []string{v1ref, v2ref} {
		if _, err := s.Pull(ctx, r, PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Get(v1ref)
	if _, _, err := s.Rootfs(ctx, got, untar); err != nil {
		t.Fatal(err)
	}

	// One of two names: only untagged.
	removed, err := s.Remove(v1ref, false)
	if err != nil || !slices.Equal(removed, []string{v1ref}) {
		t.Fatalf("Remove(v1) = %v, %v", removed, err)
	}
	if _, err := s.Get(v2ref); err != nil {
		t.Fatal(err)
	}
	if n := checkBlobs(t, s); n != 5 {
		t.Fatalf("untag deleted blobs: %d left", n)
	}

	// The last name of an image in use: refused, then forced.
	if err := s.Use(got.Digest, "web"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Remove(v2ref, false)
	wantCat(t, err, errdefs.ErrFailedPrecondition)
	if !strings.Contains(err.Error(), "web") {
		t.Errorf("refusal %q does not name the container", err)
	}
	// The hint names the flag and what it does (it only untags).
	if h := errdefs.Hint(err); !strings.Contains(h, "rmi -f") || !strings.Contains(h, "--force") || !strings.Contains(h, "only untags") || !strings.Contains(h, "images prune") {
		t.Errorf("refusal hint %q does not name -f/--force and what it does", h)
	}
	if _, err := s.Get(v2ref); err != nil {
		t.Fatalf("refused remove untagged anyway: %v", err)
	}
	removed, err = s.Remove(v2ref, true)
	if err != nil || !slices.Equal(removed, []string{v2ref}) {
		t.Fatalf("forced remove = %v, %v", removed, err)
	}
	_, err = s.Get(v2ref)
	wantCat(t, err, errdefs.ErrNotFound)
	if _, err := os.Stat(s.path("rootfs", got.Digest.Hex)); err != nil {
		t.Fatalf("rootfs of an image in use deleted: %v", err)
	}
	if _, err := s.Get(got.Digest.String()); err != nil {
		t.Fatalf("unnamed in-use image lost: %v", err)
	}

	// Released: removing by digest deletes everything.
	if err := s.Release(got.Digest, "web"); err != nil {
		t.Fatal(err)
	}
	removed, err = s.Remove(got.Digest.Hex[:12], false)
	if err != nil || !slices.Equal(removed, []string{got.Digest.String()}) {
		t.Fatalf("Remove(digest) = %v, %v", removed, err)
	}
	if _, err := os.Stat(s.path("rootfs", got.Digest.Hex)); !os.IsNotExist(err) {
		t.Errorf("rootfs left: %v", err)
	}
	if n := checkBlobs(t, s); n != 0 {
		t.Errorf("%d blobs left", n)
	}
	_, err = s.Remove(v1ref, false)
	wantCat(t, err, errdefs.ErrNotFound)
}

func TestRemoveKeepsSharedBlobs(t *testing.T) {
	s, _ := newStore(t)
	base := gzipLayer(t, "base", "shared\n")
	a := storeImage(t, s, buildImage(t, "amd64", "a", base, gzipLayer(t, "a", "only a\n")))
	b := storeImage(t, s, buildImage(t, "amd64", "b", base, gzipLayer(t, "b", "only b\n")))
	if _, err := s.Remove(a.Digest.String(), false); err != nil {
		t.Fatal(err)
	}
	if hasBlobFile(s, a.Layers[1].Digest) || hasBlobFile(s, a.Digest) {
		t.Error("a's own blobs kept")
	}
	if !hasBlobFile(s, a.Layers[0].Digest) {
		t.Fatal("shared layer deleted")
	}
	if _, _, err := s.Rootfs(context.Background(), b, untar); err != nil {
		t.Fatalf("b broken after removing a: %v", err)
	}
}

func TestPrune(t *testing.T) {
	s, _ := newStore(t)
	reg := newRegistry(t)
	ctx := context.Background()
	base := gzipLayer(t, "base", "shared\n")
	imgA := buildImage(t, "amd64", "a", base, gzipLayer(t, "a", "only a\n"))
	imgB := buildImage(t, "amd64", "b", base, gzipLayer(t, "b", "only b\n"))
	ref := reg.host + "/test/app:latest"
	reg.push(t, "test/app:latest", imgA)
	a, err := s.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Rootfs(ctx, a, untar); err != nil {
		t.Fatal(err)
	}
	reg.push(t, "test/app:latest", imgB) // the tag moves: a becomes unnamed
	b, err := s.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := storeImage(t, s, buildImage(t, "amd64", "c", gzipLayer(t, "c", "c\n")))
	// d: unnamed but in use, so kept.
	d := storeImage(t, s, buildImage(t, "amd64", "d", gzipLayer(t, "d", "d\n")))
	if err := s.Use(d.Digest, "ctr"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(d.Name, true); err != nil {
		t.Fatal(err)
	}
	// Litter: an orphan blob, a crashed pull's temp file, a half rootfs
	// with a read-only directory.
	orphan := sha256Of([]byte("orphan"))
	os.WriteFile(s.blobPath(orphan), []byte("orphan"), 0o600)
	os.WriteFile(s.path("tmp", "blob-stale"), []byte("half"), 0o600)
	os.MkdirAll(s.path("tmp", "rootfs-stale", "ro", "sub"), 0o755)
	os.Chmod(s.path("tmp", "rootfs-stale", "ro"), 0o555)

	// While a pull runs, blobs and tmp/ are left alone.
	unlock, err := s.sharedGC()
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.Prune()
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"image " + a.Digest.String()}) {
		t.Errorf("prune during a pull removed %v", removed)
	}
	if !hasBlobFile(s, orphan) || !hasBlobFile(s, a.Layers[1].Digest) {
		t.Error("prune during a pull deleted blobs")
	}
	if _, err := os.Stat(s.path("rootfs", a.Digest.Hex)); !os.IsNotExist(err) {
		t.Errorf("unnamed image's rootfs kept: %v", err)
	}

	removed, err = s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"blob " + orphan.String(), "blob " + a.Layers[1].Digest.String(),
		"blob " + a.Digest.String(), "tmp blob-stale", "tmp rootfs-stale"} {
		if !slices.Contains(removed, want) {
			t.Errorf("prune did not remove %s (removed %v)", want, removed)
		}
	}
	if len(removed) != 6 { // + a's config
		t.Errorf("prune removed %d things, want 6: %v", len(removed), removed)
	}
	for _, keep := range []*Image{b, c, d} {
		got, err := s.Get(keep.Digest.String())
		if err != nil {
			t.Fatalf("prune lost %s: %v", keep.Digest, err)
		}
		if _, _, err := s.Rootfs(ctx, got, untar); err != nil {
			t.Fatalf("image %s broken after prune: %v", keep.Digest, err)
		}
	}
	if !hasBlobFile(s, a.Layers[0].Digest) {
		t.Error("shared layer pruned")
	}
	checkBlobs(t, s)
	if removed, _ := s.Prune(); len(removed) != 0 {
		t.Errorf("second prune removed %v", removed)
	}
}

func TestList(t *testing.T) {
	s, _ := newStore(t)
	img := multiImage(t)
	got := storeImage(t, s, img)

	raw, _ := img.RawManifest()
	m, _ := img.Manifest()
	want := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		want += l.Size
	}
	ls, err := s.List()
	if err != nil || len(ls) != 1 {
		t.Fatalf("List = %v, %v", ls, err)
	}
	l := ls[0]
	if l.Size != want || l.Digest != got.Digest || !slices.Equal(l.Names, []string{got.Name}) ||
		!l.Created.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || l.Unpacked || l.Users != 0 {
		t.Fatalf("List[0] = %+v, want size %d", l, want)
	}
	if _, _, err := s.Rootfs(context.Background(), got, untar); err != nil {
		t.Fatal(err)
	}
	if err := s.Use(got.Digest, "web"); err != nil {
		t.Fatal(err)
	}
	other := storeImage(t, s, buildImage(t, "amd64", "other", gzipLayer(t, "x", "y")))
	ls, _ = s.List()
	if len(ls) != 2 || !ls[0].Unpacked && !ls[1].Unpacked {
		t.Fatalf("List = %+v", ls)
	}
	for _, l := range ls {
		if l.Digest == got.Digest && (!l.Unpacked || l.Users != 1) {
			t.Errorf("unpacked image listed as %+v", l)
		}
		if l.Digest == other.Digest && (l.Unpacked || l.Users != 0) {
			t.Errorf("other image listed as %+v", l)
		}
	}
}
