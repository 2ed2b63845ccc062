package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// Proxmox VE 9.1 takes an OCI image layout tar as a CT template, read by
// proxmox-oci (proxmox-rs, proxmox-oci/src/lib.rs and oci_tar_image.rs):
// the first index.json entry whose media type is the OCI manifest's, a
// config of the OCI config media type, and layers of the OCI tar,
// tar+gzip and tar+zstd types only (a Docker layer is skipped, and its
// diff id then "unknown"). A pulled Docker v2 image is therefore written
// converted: the manifest and config descriptors in OCI media types, the
// layer and config bytes (and so the diff ids) unchanged. The manifest,
// and with it its digest, changes: the archive has a digest of its own
// (OCIArchive.Digest), which names its template.

// ociLayerTypes maps each layer type a pull accepts (pull.go layerTypes)
// to the OCI type of the same bytes.
var ociLayerTypes = map[types.MediaType]types.MediaType{
	types.DockerLayer:                    types.OCILayer,
	types.DockerUncompressedLayer:        types.OCIUncompressedLayer,
	types.OCILayer:                       types.OCILayer,
	types.OCILayerZStd:                   types.OCILayerZStd,
	types.OCIUncompressedLayer:           types.OCIUncompressedLayer,
	types.OCIRestrictedLayer:             types.OCIRestrictedLayer,
	types.OCIUncompressedRestrictedLayer: types.OCIUncompressedRestrictedLayer,
}

// OCIArchive is an image as an OCI layout tar in OCI media types only,
// optionally with a derived config (the image's, with the process fields
// replaced: see Store.OCIArchive). Write streams it.
type OCIArchive struct {
	// Digest is the archive's manifest digest: the image's own when the
	// image was OCI already and its config is kept, else the converted or
	// derived manifest's.
	Digest v1.Hash
	// Converted: the image's media types were changed (a Docker image).
	// Derived: the config is not the image's.
	Converted, Derived bool

	s                *Store
	ref              string // the index entry's ref.name annotation ("" for none)
	manifest, config []byte
	configDigest     v1.Hash
	layers           []v1.Hash
}

// ProcessFields are the image config fields a derived config replaces:
// those PVE maps onto the CT (pve-container Create.pm restore_oci_archive:
// Entrypoint+Cmd, Env, WorkingDir, User; StopSignal is kept).
var ProcessFields = []string{"Entrypoint", "Cmd", "Env", "WorkingDir", "User"}

// OCIArchive prepares img as an OCI archive. With proc non-nil the
// archive's config is the image's with ProcessFields set from proc (an
// empty value removes the field), so that a runtime that maps the image
// config itself runs what proc says. Values PVE refuses in an image config
// (control characters other than tab) are refused here, before anything
// is made.
func (s *Store) OCIArchive(img *Image, proc *v1.Config) (*OCIArchive, error) {
	raw, err := s.readBlob(img.Digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "stored manifest %s", img.Digest)
	}
	cfgRaw, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	a := &OCIArchive{s: s, ref: refTag(img.Name), config: cfgRaw, configDigest: m.Config.Digest}
	eff := img.Config.Config
	if proc != nil {
		if !sameProcess(img.Config.Config, *proc) {
			if a.config, err = deriveConfig(cfgRaw, *proc); err != nil {
				return nil, errdefs.Wrap(errdefs.ErrInternal, err, "derive the config of %s", img.Digest)
			}
			a.configDigest = sha256Hash(a.config)
			a.Derived = true
		}
		eff = *proc
	}
	if err := checkControlChars(eff); err != nil {
		return nil, errdefs.WithHint(errdefs.Wrap(errdefs.ErrInvalidArgument, err, "image %s", img.Name),
			"Proxmox VE refuses control characters other than tab in an image's Entrypoint, Cmd, Env, WorkingDir and User: drop them from the command line (-e, -w, -u, the command) or use another image")
	}

	om := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Annotations: m.Annotations,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(a.config)), Digest: a.configDigest}}
	a.Converted = m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON
	for _, l := range m.Layers {
		mt, ok := ociLayerTypes[l.MediaType]
		if !ok {
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"image %s: layer %s has media type %q, which has no OCI equivalent Proxmox VE takes (OCI tar, tar+gzip, tar+zstd)", img.Name, l.Digest, l.MediaType)
		}
		a.Converted = a.Converted || mt != l.MediaType
		l.MediaType = mt
		om.Layers = append(om.Layers, l)
		a.layers = append(a.layers, l.Digest)
	}
	if !a.Converted && !a.Derived {
		// OCI already: the image's own manifest, byte for byte.
		a.manifest, a.Digest = raw, img.Digest
		return a, nil
	}
	if a.manifest, err = json.Marshal(om); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "encode the OCI manifest of %s", img.Digest)
	}
	a.Digest = sha256Hash(a.manifest)
	return a, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func sameProcess(a, b v1.Config) bool {
	return slices.Equal(a.Entrypoint, b.Entrypoint) && slices.Equal(a.Cmd, b.Cmd) && slices.Equal(a.Env, b.Env) &&
		a.WorkingDir == b.WorkingDir && a.User == b.User
}

// deriveConfig sets ProcessFields in the config JSON raw from proc and
// keeps every other field as the image has it (also those v1.ConfigFile
// does not know).
func deriveConfig(raw []byte, proc v1.Config) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	c := map[string]json.RawMessage{}
	if r, ok := top["config"]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
	}
	set := func(key string, v any, empty bool) {
		if empty {
			delete(c, key)
			return
		}
		c[key], _ = json.Marshal(v) // strings and string slices: cannot fail
	}
	set("Entrypoint", proc.Entrypoint, len(proc.Entrypoint) == 0)
	set("Cmd", proc.Cmd, len(proc.Cmd) == 0)
	set("Env", proc.Env, len(proc.Env) == 0)
	set("WorkingDir", proc.WorkingDir, proc.WorkingDir == "")
	set("User", proc.User, proc.User == "")
	var err error
	if top["config"], err = json.Marshal(c); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// checkControlChars refuses what PVE cannot take in the process fields:
// restore_oci_archive dies on [\x00-\x08\x10-\x1F\x7F] (6.1.10; all of
// \x00-\x1F before 6.0.18), and the rest of \x0A-\x0F (newline among
// them) would reach the CT config, where write_pct_config dies on a
// newline in entrypoint and an Env line breaks into two config lines.
func checkControlChars(c v1.Config) error {
	check := func(field, v string) error {
		for _, r := range v {
			if r < 0x20 && r != '\t' || r == 0x7f {
				what := fmt.Sprintf("%q", v)
				if field == "Env" {
					// The name only: values may be secrets.
					k, _, _ := strings.Cut(v, "=")
					what = fmt.Sprintf("%q", k)
				}
				return fmt.Errorf("%s %s holds the control character %U, which Proxmox VE refuses", field, what, r)
			}
		}
		return nil
	}
	for _, f := range []struct {
		name string
		vs   []string
	}{{"Entrypoint", c.Entrypoint}, {"Cmd", c.Cmd}, {"Env", c.Env}, {"WorkingDir", []string{c.WorkingDir}}, {"User", []string{c.User}}} {
		for _, v := range f.vs {
			if err := check(f.name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Write writes the archive as an OCI image layout in a tar stream
// (oci-layout, index.json, blobs/sha256/...), as `skopeo copy
// oci-archive:` does. The stream is the same bytes for the same archive:
// entries in a fixed order, fixed times and owners.
func (a *OCIArchive) Write(w io.Writer) error {
	desc := map[string]any{"mediaType": types.OCIManifestSchema1, "digest": a.Digest.String(), "size": len(a.manifest)}
	if a.ref != "" {
		desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": a.ref}
	}
	index, _ := json.Marshal(map[string]any{ // maps of strings and numbers: cannot fail
		"schemaVersion": 2,
		"mediaType":     types.OCIImageIndex,
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
	seen := map[v1.Hash]bool{a.Digest: true, a.configDigest: true}
	if err := put("blobs/sha256/"+a.Digest.Hex, int64(len(a.manifest)), bytes.NewReader(a.manifest)); err != nil {
		return err
	}
	if a.configDigest != a.Digest { // a JSON manifest and config never share bytes; be safe anyway
		if err := put("blobs/sha256/"+a.configDigest.Hex, int64(len(a.config)), bytes.NewReader(a.config)); err != nil {
			return err
		}
	}
	for _, b := range a.layers {
		if seen[b] {
			continue
		}
		seen[b] = true
		f, err := os.Open(a.s.blobPath(b))
		if err != nil {
			return errdefs.Wrap(errdefs.ErrNotFound, err, "blob %s of %s", b, a.Digest)
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
