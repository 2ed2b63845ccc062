package image

// The local sources: an OCI layout (oci:, and oci-archive: extracted to
// one) and a docker-archive.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// ---- OCI layout ----

type layoutSource struct {
	path    layout.Path
	tag     string
	name    string
	cleanup func()
}

func openLayout(dir, tag, refName string, cleanup func()) (source, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, "no OCI image layout (index.json) at %s", dir)
		}
		return nil, errdefs.Wrap(errdefs.ErrInternal, flat(err), "open OCI layout %s", dir)
	}
	return &layoutSource{path: p, tag: tag, name: refName, cleanup: cleanup}, nil
}

func (l *layoutSource) close() {
	if l.cleanup != nil {
		l.cleanup()
	}
}

func (l *layoutSource) readBlob(d v1.Descriptor) ([]byte, error) {
	rc, err := l.blob(context.Background(), d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := readLimited(rc, "manifest "+d.Digest.String())
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Category(err), flat(err), "read %s", d.Digest)
	}
	if sha256Of(raw) != d.Digest {
		return nil, mismatch(d.Digest)
	}
	return raw, nil
}

func (l *layoutSource) resolve(ctx context.Context, plat v1.Platform) ([]byte, v1.Hash, error) {
	ii, err := l.path.ImageIndex()
	if err != nil {
		return nil, v1.Hash{}, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read %s", l.name)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read %s", l.name)
	}
	ms := im.Manifests
	if l.tag != "" {
		var tagged []v1.Descriptor
		for _, d := range ms {
			if d.Annotations[imagespecRefName] == l.tag {
				tagged = append(tagged, d)
			}
		}
		if len(tagged) == 0 {
			return nil, v1.Hash{}, errdefs.New(errdefs.ErrNotFound, "tag %q not found in OCI layout %s (tags: %s)",
				l.tag, string(l.path), strings.Join(layoutTags(ms), ", "))
		}
		ms = tagged
	}
	var d v1.Descriptor
	switch {
	case len(ms) == 1:
		d = ms[0]
	case !hasPlatforms(ms):
		return nil, v1.Hash{}, &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  fmt.Sprintf("OCI layout %s holds %d images", string(l.path), len(ms)),
			Hint: "name one as oci:DIR:TAG (tags: " + strings.Join(layoutTags(ms), ", ") + ")"}
	default:
		if d, err = pickPlatform(ms, plat); err != nil {
			return nil, v1.Hash{}, err
		}
	}
	raw, err := l.readBlob(d)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return descend(ctx, raw, d.MediaType, plat, func(_ context.Context, d v1.Descriptor) ([]byte, error) {
		return l.readBlob(d)
	})
}

const imagespecRefName = "org.opencontainers.image.ref.name"

func layoutTags(ms []v1.Descriptor) []string {
	var tags []string
	for _, d := range ms {
		if t := d.Annotations[imagespecRefName]; t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

func hasPlatforms(ms []v1.Descriptor) bool {
	for _, d := range ms {
		if d.Platform != nil {
			return true
		}
	}
	return false
}

func (l *layoutSource) blob(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	rc, err := l.path.Blob(d.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.ErrNotFound, "blob %s is missing from %s", d.Digest, l.name)
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, flat(err), "open blob %s", d.Digest)
	}
	return rc, nil
}

// blobEntry is the only kind of path taken from an oci-archive besides
// index.json and oci-layout, so no entry can land outside the directory.
var blobEntry = regexp.MustCompile(`^blobs/[a-z0-9]+/[a-f0-9]{32,128}$`)

// extractLayout unpacks the OCI layout in the tar file into a new
// directory under tmp/, ignoring every other entry (links, devices, paths
// with ..).
func (s *Store) extractLayout(file string) (_ string, err error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errdefs.New(errdefs.ErrNotFound, "oci-archive %s does not exist", file)
	}
	if err != nil {
		return "", errdefs.WrapOS(errdefs.ErrInternal, err, "make "+file+" readable by the user proxcage runs as, or run it as root", "open oci-archive")
	}
	defer f.Close()
	dir, err := os.MkdirTemp(s.path("tmp"), "oci-archive-")
	if err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "extract oci-archive")
	}
	// dir is not the named result: a failed return sets that to "".
	defer func() {
		if err != nil {
			_ = removeAllForce(dir) // best effort: the store sweeps tmp/
		}
	}()
	tr := tar.NewReader(f)
	hasIndex := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF && !hasIndex {
			// Name the user's file and what it is, not the scratch dir.
			e := &errdefs.Error{Cat: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf("oci-archive %s holds no OCI image layout (no index.json)", file)}
			if t, what := localKind(file); t != "" {
				e.Hint = fmt.Sprintf("it is %s: use %s:%s", what, t, file)
			} else {
				e.Hint = "it is " + what + "; an OCI archive is an OCI layout directory in a tar (skopeo copy ... oci-archive:FILE)"
			}
			return "", e
		}
		if err == io.EOF {
			return dir, nil
		}
		if err != nil {
			return "", errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read oci-archive %s", file)
		}
		n := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if hdr.Typeflag != tar.TypeReg || (n != "index.json" && n != "oci-layout" && !blobEntry.MatchString(n)) {
			continue
		}
		hasIndex = hasIndex || n == "index.json"
		dst := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return "", errdefs.Wrap(errdefs.ErrInternal, err, "extract oci-archive")
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", errdefs.Wrap(errdefs.ErrInvalidArgument, err, "extract oci-archive %s", file)
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", errdefs.Wrap(errdefs.ErrInternal, flat(err), "extract oci-archive %s", file)
		}
	}
}

// ---- docker-archive ----

type dockerArchive struct {
	img  v1.Image
	name string
}

func openDockerArchive(file, ref string) (source, error) {
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, "docker-archive %s does not exist", file)
		}
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "open docker-archive")
	}
	var tag *name.Tag
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "bad docker-archive reference %q", ref)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(file, tag)
	if err != nil {
		cat := errdefs.ErrInvalidArgument
		if tag != nil && strings.Contains(err.Error(), "not found in tarball") {
			cat = errdefs.ErrNotFound
		}
		return nil, errdefs.Wrap(cat, flat(err), "read docker-archive %s", file)
	}
	return &dockerArchive{img: img, name: file}, nil
}

func (a *dockerArchive) close() {}

func (a *dockerArchive) resolve(context.Context, v1.Platform) ([]byte, v1.Hash, error) {
	raw, err := a.img.RawManifest()
	if err != nil {
		return nil, v1.Hash{}, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read docker-archive %s", a.name)
	}
	return raw, sha256Of(raw), nil
}

func (a *dockerArchive) blob(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	cfg, err := a.img.ConfigName()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read docker-archive %s", a.name)
	}
	if d.Digest == cfg {
		raw, err := a.img.RawConfigFile()
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read docker-archive %s", a.name)
		}
		return io.NopCloser(bytes.NewReader(raw)), nil
	}
	l, err := a.img.LayerByDigest(d.Digest)
	if err == nil {
		var rc io.ReadCloser
		if rc, err = l.Compressed(); err == nil {
			return rc, nil
		}
	}
	return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read layer %s from docker-archive %s", d.Digest, a.name)
}
