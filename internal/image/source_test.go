package image

import (
	"archive/tar"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func tagged(tag string) layout.Option {
	return layout.WithAnnotations(map[string]string{imagespecRefName: tag})
}

// writeLayout writes an OCI layout holding img1 as "v1" and img2 as "v2".
func writeLayout(t *testing.T, img1, img2 v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img1, tagged("v1")); err != nil {
		t.Fatal(err)
	}
	if img2 != nil {
		if err := p.AppendImage(img2, tagged("v2")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPullOCILayout(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	img1 := multiImage(t)
	img2 := buildImage(t, "amd64", "second", gzipLayer(t, "two", "2\n"))
	dir := writeLayout(t, img1, img2)

	for tag, img := range map[string]v1.Image{"v1": img1, "v2": img2} {
		got, err := s.Pull(ctx, "oci:"+dir+":"+tag, PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != digestOf(t, img) || got.Name != "oci:"+dir+":"+tag {
			t.Errorf("%s: got %s %s", tag, got.Name, got.Digest)
		}
	}
	_, err := s.Pull(ctx, "oci:"+dir+":v3", PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
	if !strings.Contains(err.Error(), "v1, v2") {
		t.Errorf("unknown-tag error %q does not list the tags", err)
	}
	// Two images and no tag: which one is ambiguous.
	_, err = s.Pull(ctx, "oci:"+dir, PullOptions{})
	wantCat(t, err, errdefs.ErrInvalidArgument)

	// A single image needs no tag.
	one := writeLayout(t, img2, nil)
	if got, err := s.Pull(ctx, "oci:"+one, PullOptions{}); err != nil || got.Digest != digestOf(t, img2) {
		t.Fatalf("untagged single image: %v %v", got, err)
	}

	_, err = s.Pull(ctx, "oci:"+filepath.Join(t.TempDir(), "missing"), PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
	checkBlobs(t, s)
}

func TestPullOCILayoutIndex(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	idx, amd, arm := platformIndex(t)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, tagged("multi")); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]v1.Image{"oci:" + dir + ":multi": arm, "oci:" + dir: arm} {
		got, err := s.Pull(ctx, ref, PullOptions{Platform: "linux/arm64"})
		if err != nil || got.Digest != digestOf(t, want) {
			t.Fatalf("%s: %v %v", ref, got, err)
		}
	}
	got, err := s.Pull(ctx, "oci:"+dir+":multi", PullOptions{Platform: "linux/amd64"})
	if err != nil || got.Digest != digestOf(t, amd) {
		t.Fatalf("amd64: %v %v", got, err)
	}
	_, err = s.Pull(ctx, "oci:"+dir, PullOptions{Platform: "linux/riscv64"})
	wantCat(t, err, errdefs.ErrNotFound)

	// Platform manifests listed directly in index.json.
	flat := filepath.Join(t.TempDir(), "flat")
	fp, err := layout.Write(flat, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		img  v1.Image
		arch string
	}{{amd, "amd64"}, {arm, "arm64"}} {
		if err := fp.AppendImage(x.img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: x.arch})); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Pull(ctx, "oci:"+flat, PullOptions{Platform: "linux/amd64"})
	if err != nil || got.Digest != digestOf(t, amd) {
		t.Fatalf("flat index: %v %v", got, err)
	}
}

// tarDir writes dir as a tar, then the extra entries.
func tarDir(t *testing.T, dir, file string, extra func(tw *tar.Writer)) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := d.Info()
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = "./" + filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			_, err = tw.Write(b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		extra(tw)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPullOCIArchive(t *testing.T) {
	s, _ := newStore(t)
	img1 := multiImage(t)
	dir := writeLayout(t, img1, buildImage(t, "amd64", "second", gzipLayer(t, "two", "2\n")))
	work := t.TempDir()
	file := filepath.Join(work, "image.tar")
	tarDir(t, dir, file, func(tw *tar.Writer) {
		// Hostile entries an extraction must not follow or place.
		for _, n := range []string{"../escape", "blobs/sha256/../../../escape2", "/abs-escape"} {
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
		}
		tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + strings.Repeat("0", 64), Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	})

	got, err := s.Pull(context.Background(), "oci-archive:"+file+":v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, img1) || got.Name != "oci-archive:"+file+":v1" {
		t.Errorf("got %s %s", got.Name, got.Digest)
	}
	checkBlobs(t, s) // the extracted layout is gone from tmp/
	for _, p := range []string{filepath.Join(work, "escape"), filepath.Join(s.Dir(), "escape"), filepath.Join(s.Dir(), "escape2"),
		filepath.Join(s.Dir(), "tmp", "escape"), "/abs-escape"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("archive entry escaped to %s", p)
		}
	}

	_, err = s.Pull(context.Background(), "oci-archive:"+file+":nope", PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
	checkBlobs(t, s)
	_, err = s.Pull(context.Background(), "oci-archive:"+filepath.Join(work, "missing.tar"), PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
}

func TestPullDockerArchive(t *testing.T) {
	s, _ := newStore(t)
	img := multiImage(t)
	file := filepath.Join(t.TempDir(), "docker.tar")
	if err := tarball.WriteToFile(file, name.MustParseReference("example.com/app:1"), img); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ref := range []string{"docker-archive:" + file, "docker-archive:" + file + ":example.com/app:1"} {
		got, err := s.Pull(ctx, ref, PullOptions{})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if got.Name != ref || got.Config.Config.Labels["test"] != "multi" {
			t.Errorf("%s: got %s, labels %v", ref, got.Name, got.Config.Config.Labels)
		}
		layers, _ := img.Layers()
		for i, l := range layers {
			diffID, _ := l.DiffID()
			if got.Layers[i].Digest != digestOf(t, l) || got.Layers[i].DiffID != diffID {
				t.Errorf("%s: layer %d = %+v", ref, i, got.Layers[i])
			}
		}
	}
	_, err := s.Pull(ctx, "docker-archive:"+file+":example.com/app:2", PullOptions{})
	wantCat(t, err, errdefs.ErrNotFound)
	if n := checkBlobs(t, s); n != 5 {
		t.Errorf("%d blobs, want 5", n)
	}
}

// A local path without a transport prefix is refused before any registry
// is asked, with the prefix for what is there.
func TestPullLocalPathWithoutTransport(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	img := multiImage(t)
	work := t.TempDir()
	dir := writeLayout(t, img, nil)
	ociTar := filepath.Join(work, "oci.tar")
	tarDir(t, dir, ociTar, nil)
	dockerTar := filepath.Join(work, "docker.tar")
	if err := tarball.WriteToFile(dockerTar, name.MustParseReference("example.com/app:1"), img); err != nil {
		t.Fatal(err)
	}
	rootfsTar := filepath.Join(work, "rootfs.tar")
	os.WriteFile(rootfsTar, tarOf(t, "etc/hostname", "x\n"), 0o644)
	t.Chdir(work)
	for _, c := range []struct{ ref, hint string }{
		{dir, "write oci:" + dir},
		{dir + ":v1", "write oci:" + dir + ":v1"},
		{ociTar, "write oci-archive:" + ociTar},
		{dockerTar, "write docker-archive:" + dockerTar},
		{"./docker.tar", "write docker-archive:./docker.tar"},
		{"docker.tar", "write docker-archive:docker.tar"}, // on disk, no ./
		{rootfsTar, "oci:DIR"},
		{"/no/such/img", "oci-archive:FILE"},
		{"../nothing-here", "docker-archive:FILE"},
	} {
		_, err := s.Pull(ctx, c.ref, PullOptions{})
		wantCat(t, err, errdefs.ErrInvalidArgument)
		if err == nil {
			continue
		}
		if !strings.Contains(err.Error(), "is a local path") || strings.Contains(err.Error(), "docker.io/") {
			t.Errorf("%s: %v", c.ref, err)
		}
		if h := errdefs.Hint(err); !strings.Contains(h, c.hint) {
			t.Errorf("%s: hint %q lacks %q", c.ref, h, c.hint)
		}
	}
	// With the docker transport named, it is still a registry (here none answers).
	if _, err := s.Pull(ctx, "docker://127.0.0.1:1/docker.tar", PullOptions{}); err == nil || strings.Contains(err.Error(), "local path") {
		t.Errorf("docker:// with a name that exists on disk: %v", err)
	}
	checkBlobs(t, s)
}

// The wrong transport for an archive names the user's file (never the
// store's scratch directory) and the transport that reads it.
func TestPullArchiveWithTheWrongTransport(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	img := multiImage(t)
	work := t.TempDir()
	dockerTar := filepath.Join(work, "docker.tar")
	if err := tarball.WriteToFile(dockerTar, name.MustParseReference("example.com/app:1"), img); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(work, "oci.tar")
	tarDir(t, writeLayout(t, img, nil), ociTar, nil)

	_, err := s.Pull(ctx, "oci-archive:"+dockerTar, PullOptions{})
	wantCat(t, err, errdefs.ErrInvalidArgument)
	if err != nil {
		if !strings.Contains(err.Error(), dockerTar) || strings.Contains(err.Error(), s.Dir()) || strings.Contains(err.Error(), "oci-archive-") {
			t.Errorf("docker archive as oci-archive: %v", err)
		}
		if h := errdefs.Hint(err); !strings.Contains(h, "manifest.json") || !strings.Contains(h, "docker-archive:"+dockerTar) {
			t.Errorf("hint %q", h)
		}
	}
	checkBlobs(t, s) // the scratch extraction is gone

	_, err = s.Pull(ctx, "docker-archive:"+ociTar, PullOptions{})
	if err == nil || !strings.Contains(errdefs.Hint(err), "oci-archive:"+ociTar) {
		t.Errorf("OCI archive as docker-archive: %v (hint %q)", err, errdefs.Hint(err))
	}
	_, err = s.Pull(ctx, "oci:"+work, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), work) {
		t.Errorf("oci: of a directory without a layout: %v", err)
	}
	checkBlobs(t, s)
}
