package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// archiveFiles reads an OCI archive tar into name -> bytes.
func archiveFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = data
	}
}

type archived struct {
	index    struct{ Manifests []v1.Descriptor }
	manifest v1.Manifest
	config   map[string]json.RawMessage
	process  v1.Config
	files    map[string][]byte
}

func readArchive(t *testing.T, a *OCIArchive) archived {
	t.Helper()
	var buf bytes.Buffer
	if err := a.Write(&buf); err != nil {
		t.Fatal(err)
	}
	var r archived
	r.files = archiveFiles(t, buf.Bytes())
	blob := func(h v1.Hash) []byte {
		b, ok := r.files["blobs/sha256/"+h.Hex]
		if !ok {
			t.Fatalf("archive lacks blob %s", h)
		}
		if got := sha256Hash(b); got != h {
			t.Fatalf("blob %s has digest %s", h, got)
		}
		return b
	}
	if err := json.Unmarshal(r.files["index.json"], &r.index); err != nil || len(r.index.Manifests) != 1 {
		t.Fatalf("index.json %s: %v", r.files["index.json"], err)
	}
	if err := json.Unmarshal(blob(r.index.Manifests[0].Digest), &r.manifest); err != nil {
		t.Fatal(err)
	}
	cfg := blob(r.manifest.Config.Digest)
	if err := json.Unmarshal(cfg, &r.config); err != nil {
		t.Fatal(err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(cfg, &cf); err != nil {
		t.Fatal(err)
	}
	r.process = cf.Config
	for _, l := range r.manifest.Layers {
		blob(l.Digest)
	}
	return r
}

// onlyOCI fails unless every media type of the archive is one proxmox-oci
// takes (proxmox-rs proxmox-oci/src/lib.rs parse_image, build_layer_map).
func onlyOCI(t *testing.T, r archived) {
	t.Helper()
	if mt := r.index.Manifests[0].MediaType; mt != types.OCIManifestSchema1 {
		t.Errorf("index entry media type %q", mt)
	}
	if r.manifest.MediaType != types.OCIManifestSchema1 || r.manifest.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %q, config %q", r.manifest.MediaType, r.manifest.Config.MediaType)
	}
	for _, l := range r.manifest.Layers {
		switch l.MediaType {
		case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer:
		default:
			t.Errorf("layer %s: media type %q", l.Digest, l.MediaType)
		}
	}
}

// A Docker v2 image (what Docker Hub serves) is written in OCI media
// types: the manifest changes (and with it the digest the archive is
// named by), the layer and config bytes do not. Before, the archive held
// the Docker manifest unchanged, which proxmox-oci refuses.
func TestOCIArchiveConvertsDockerImages(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "test/multi:1", multiImage(t))
	s, _ := newStore(t)
	img, err := s.Pull(context.Background(), reg.host+"/test/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := s.readBlob(img.Digest)
	var src v1.Manifest
	if err := json.Unmarshal(raw, &src); err != nil || src.MediaType != types.DockerManifestSchema2 {
		t.Fatalf("the test image is not a Docker v2 image: %q %v", src.MediaType, err)
	}
	a, err := s.OCIArchive(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Converted || a.Derived || a.Digest == img.Digest {
		t.Fatalf("converted %v derived %v digest %s (image %s)", a.Converted, a.Derived, a.Digest, img.Digest)
	}
	r := readArchive(t, a)
	onlyOCI(t, r)
	if r.index.Manifests[0].Digest != a.Digest {
		t.Errorf("index names %s, archive digest %s", r.index.Manifests[0].Digest, a.Digest)
	}
	if r.manifest.Config.Digest != src.Config.Digest {
		t.Errorf("config changed: %s -> %s", src.Config.Digest, r.manifest.Config.Digest)
	}
	for i, l := range r.manifest.Layers {
		if l.Digest != src.Layers[i].Digest || l.Size != src.Layers[i].Size || l.MediaType != types.OCILayer {
			t.Errorf("layer %d: %+v, was %+v", i, l, src.Layers[i])
		}
	}
}

// An image in OCI media types already, without overrides, is written as
// it is: the archive's digest is the image's.
func TestOCIArchiveKeepsOCIImages(t *testing.T) {
	reg := newRegistry(t)
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, zstdLayer(t, "a", "1"), rawLayer(t, "b", "2"))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Cmd = "linux", "amd64", []string{"/a"}
	cf.Config.Env = []string{"PATH=/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	reg.push(t, "test/oci:1", img)
	s, _ := newStore(t)
	got, err := s.Pull(context.Background(), reg.host+"/test/oci:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	same := got.Config.Config
	a, err := s.OCIArchive(got, &same)
	if err != nil {
		t.Fatal(err)
	}
	if a.Converted || a.Derived || a.Digest != got.Digest {
		t.Fatalf("converted %v derived %v digest %s, want the image's %s", a.Converted, a.Derived, a.Digest, got.Digest)
	}
	onlyOCI(t, readArchive(t, a))
}

// With overrides the archive's config is derived: the process fields are
// the merged ones, everything else (rootfs.diff_ids, labels, fields
// v1.ConfigFile does not know) is the image's, layers are shared, and the
// archive is the same bytes every time.
func TestOCIArchiveDerivedConfig(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "test/multi:1", multiImage(t))
	s, _ := newStore(t)
	img, err := s.Pull(context.Background(), reg.host+"/test/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	proc := img.Config.Config
	proc.Entrypoint, proc.Cmd = []string{"/bin/sh", "-c"}, []string{"echo $A"}
	proc.Env = []string{"PATH=/bin", "A=1"}
	proc.WorkingDir, proc.User = "/tmp", "app:video"
	a, err := s.OCIArchive(img, &proc)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Derived {
		t.Fatal("not derived")
	}
	r := readArchive(t, a)
	onlyOCI(t, r)
	p := r.process
	if strings.Join(p.Entrypoint, "|") != "/bin/sh|-c" || strings.Join(p.Cmd, "|") != "echo $A" ||
		strings.Join(p.Env, "|") != "PATH=/bin|A=1" || p.WorkingDir != "/tmp" || p.User != "app:video" || p.Labels["test"] != "multi" {
		t.Fatalf("derived config: %+v", p)
	}
	var rootfs v1.RootFS
	_ = json.Unmarshal(r.config["rootfs"], &rootfs)
	for i, l := range img.Layers {
		if rootfs.DiffIDs[i] != l.DiffID || r.manifest.Layers[i].Digest != l.Digest {
			t.Fatalf("layer %d: diff id %s digest %s, image has %s %s", i, rootfs.DiffIDs[i], r.manifest.Layers[i].Digest, l.DiffID, l.Digest)
		}
	}
	// Removing a field removes it; other overrides give another digest.
	proc2 := proc
	proc2.User = ""
	b, err := s.OCIArchive(img, &proc2)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest == a.Digest || readArchive(t, b).process.User != "" {
		t.Fatal("a second set of overrides: same archive, or User kept")
	}
	var x, y bytes.Buffer
	a2, _ := s.OCIArchive(img, &proc)
	_ = a.Write(&x)
	_ = a2.Write(&y)
	if a2.Digest != a.Digest || !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Fatal("two archives of one image and one set of overrides differ")
	}
}

// What PVE refuses in an image config is refused before anything is
// made, in one line.
func TestOCIArchiveRefusesControlCharacters(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "test/multi:1", multiImage(t))
	s, _ := newStore(t)
	img, err := s.Pull(context.Background(), reg.host+"/test/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"A=x\nsecret", "A=\x01secret", "A=\x7fsecret"} {
		proc := img.Config.Config
		proc.Env = []string{"PATH=/bin", bad}
		_, err := s.OCIArchive(img, &proc)
		if errdefs.Category(err) != errdefs.ErrInvalidArgument || !strings.Contains(err.Error(), `Env "A" holds the control character`) ||
			strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "secret") {
			t.Errorf("env %q: %v", bad, err)
		}
	}
	proc := img.Config.Config
	proc.Cmd = []string{"echo", "a\nb"}
	if _, err := s.OCIArchive(img, &proc); err == nil || !strings.Contains(err.Error(), "Cmd") {
		t.Errorf("a newline in Cmd: %v", err)
	}
	proc = img.Config.Config
	proc.Env = []string{"A=tab\tis fine"}
	if _, err := s.OCIArchive(img, &proc); err != nil {
		t.Errorf("tab refused: %v", err)
	}
}

// An archive pulls back (oci-archive:) as the same image.
func TestWriteOCIArchiveRoundTrip(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "test/multi:1", multiImage(t))
	s, _ := newStore(t)
	ctx := context.Background()
	img, err := s.Pull(ctx, reg.host+"/test/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.OCIArchive(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := a.Write(&buf); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s2, _ := newStore(t)
	back, err := s2.Pull(ctx, "oci-archive:"+file+":1", PullOptions{})
	if err != nil {
		t.Fatalf("pull the archive back: %v", err)
	}
	if back.Digest != a.Digest || len(back.Layers) != len(img.Layers) {
		t.Fatalf("round trip: %s (%d layers), want %s (%d)", back.Digest, len(back.Layers), a.Digest, len(img.Layers))
	}
	for i, l := range back.Layers {
		if l.DiffID != img.Layers[i].DiffID {
			t.Fatalf("layer %d: diff id %s, want %s", i, l.DiffID, img.Layers[i].DiffID)
		}
	}
}
