package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// WriteOCIArchive writes img as an OCI image layout in a tar stream
// (oci-layout, index.json, blobs/sha256/...), as `skopeo copy
// oci-archive:` does: the form Proxmox VE 9.1 takes as a CT template. The
// stream is the same bytes for the same image: entries in a fixed order,
// fixed times and owners.
func (s *Store) WriteOCIArchive(img *Image, w io.Writer) error {
	raw, err := s.readBlob(img.Digest)
	if err != nil {
		return err
	}
	var m struct {
		MediaType string        `json:"mediaType"`
		Config    v1.Descriptor `json:"config"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "stored manifest %s", img.Digest)
	}
	if m.MediaType == "" {
		m.MediaType = "application/vnd.oci.image.manifest.v1+json"
	}
	desc := map[string]any{"mediaType": m.MediaType, "digest": img.Digest.String(), "size": len(raw)}
	if tag := refTag(img.Name); tag != "" {
		desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": tag}
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{desc},
	})
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX})
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := put("oci-layout", int64(len(layout)), bytes.NewReader(layout)); err != nil {
		return err
	}
	if err := put("index.json", int64(len(index)), bytes.NewReader(index)); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := dir(d); err != nil {
			return err
		}
	}
	if err := put("blobs/sha256/"+img.Digest.Hex, int64(len(raw)), bytes.NewReader(raw)); err != nil {
		return err
	}
	blobs := []v1.Hash{m.Config.Digest}
	for _, l := range img.Layers {
		blobs = append(blobs, l.Digest)
	}
	seen := map[v1.Hash]bool{img.Digest: true}
	for _, b := range blobs {
		if seen[b] {
			continue
		}
		seen[b] = true
		f, err := os.Open(s.blobPath(b))
		if err != nil {
			return errdefs.Wrap(errdefs.ErrNotFound, err, "blob %s of %s", b, img.Digest)
		}
		fi, err := f.Stat()
		if err == nil {
			err = put("blobs/sha256/"+b.Hex, fi.Size(), f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// refTag is the tag of a registry name ("" without one).
func refTag(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		switch name[i] {
		case ':':
			return name[i+1:]
		case '/', '@':
			return ""
		}
	}
	return ""
}
