package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// PullOptions tune Pull.
type PullOptions struct {
	Platform string    // "os/arch[/variant]"; "" = the host's
	Creds    string    // "user:password" for registry refs; else the auth files
	Progress io.Writer // bars go here when it is a terminal
	Quiet    bool      // no bars even on a terminal
}

// parallelLayers bounds concurrent layer downloads, like docker's default.
const parallelLayers = 3

// Pull resolves ref, fetches manifest, config and layers (skipping blobs
// already stored), verifies every digest, stores them, records ref as a
// name of the image and returns it.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := s.pull(ctx, r, opts)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Category(err), err, "pull %s", r.name)
	}
	return img, nil
}

// CheckPlatform reports whether p is a platform Pull and Resolve take
// ("" or os/arch[/variant]).
func CheckPlatform(p string) error {
	_, err := parsePlatform(p)
	return err
}

func parsePlatform(p string) (v1.Platform, error) {
	if p == "" {
		return v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return v1.Platform{}, errdefs.New(errdefs.ErrInvalidArgument, "platform %q: use os/arch[/variant], e.g. linux/arm64", p)
	}
	pl := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		pl.Variant = parts[2]
	}
	return pl, nil
}

var layerTypes = map[types.MediaType]bool{
	types.DockerLayer: true, types.DockerUncompressedLayer: true,
	types.OCILayer: true, types.OCILayerZStd: true, types.OCIUncompressedLayer: true,
	types.OCIRestrictedLayer: true, types.OCIUncompressedRestrictedLayer: true,
}

func (s *Store) pull(ctx context.Context, r *srcRef, opts PullOptions) (*Image, error) {
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	// Held until the image is recorded, so Prune and Remove cannot delete
	// the blobs this pull wrote or found already stored.
	unlock, err := s.sharedGC()
	if err != nil {
		return nil, err
	}
	defer unlock()
	src, err := s.openSource(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	defer src.close()

	raw, digest, err := src.resolve(ctx, plat)
	if err != nil {
		return nil, err
	}
	m, err := imageManifest(raw, digest)
	if err != nil {
		return nil, err
	}

	if !s.hasBlob(m.Config.Digest) {
		if err := s.fetchBlob(ctx, src, m.Config, nil); err != nil {
			return nil, err
		}
	}
	cfgRaw, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "image config %s", m.Config.Digest)
	}
	layers, err := layerInfos(m, cfg)
	if err != nil {
		return nil, err
	}
	if opts.Platform != "" && (cfg.OS != plat.OS || cfg.Architecture != plat.Architecture) {
		s.log.Warn("image platform differs from the requested one", "ref", r.name,
			"image", cfg.OS+"/"+cfg.Architecture, "requested", platformString(plat))
	}

	prog := newProgress(ctx, opts.Progress, opts.Quiet, s.log)
	if err := s.fetchLayers(ctx, src, m.Layers, prog); err != nil {
		prog.stop()
		return nil, err
	}
	if !s.hasBlob(digest) {
		if err := s.putBlob(digest, int64(len(raw)), bytes.NewReader(raw)); err != nil {
			prog.stop()
			return nil, err
		}
	}

	size := int64(len(raw)) + m.Config.Size
	blobs := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		size += l.Size
		blobs = append(blobs, l.Digest)
	}
	err = s.update(func(ix *index) error {
		if ix.byDigest(digest) == nil {
			ix.Images = append(ix.Images, indexEntry{Digest: digest, Blobs: blobs, Size: size,
				Created: cfg.Created.Time, Pulled: time.Now().UTC()})
		}
		ix.setName(r.name, digest)
		return nil
	})
	if err != nil {
		prog.stop()
		return nil, err
	}
	prog.image(r.name, digest)
	return &Image{Name: r.name, Digest: digest, Config: cfg, Layers: layers}, nil
}

// imageManifest parses the manifest raw (of digest) and refuses what is
// not a container image proxcage can unpack.
func imageManifest(raw []byte, digest v1.Hash) (*v1.Manifest, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "manifest %s", digest)
	}
	if mt := m.Config.MediaType; mt != types.DockerConfigJSON && mt != types.OCIConfigJSON {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "not a container image (config media type %q)", mt)
	}
	for _, l := range m.Layers {
		if !layerTypes[l.MediaType] {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "layer %s has unsupported media type %q", l.Digest, l.MediaType)
		}
	}
	return m, nil
}

// Resolve returns the digest of the image manifest ref names now, for the
// platform Pull would choose (an index is followed down to it), fetching
// only manifests: no blob is stored and nothing is recorded, so it is what
// a check for a newer image asks. Its errors are categorised as Pull's.
func (s *Store) Resolve(ctx context.Context, ref string, opts PullOptions) (v1.Hash, error) {
	r, err := parseRef(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := s.resolve(ctx, r, opts)
	if err != nil {
		return v1.Hash{}, errdefs.Wrap(errdefs.Category(err), err, "resolve %s", r.name)
	}
	return d, nil
}

func (s *Store) resolve(ctx context.Context, r *srcRef, opts PullOptions) (v1.Hash, error) {
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return v1.Hash{}, err
	}
	src, err := s.openSource(ctx, r, opts)
	if err != nil {
		return v1.Hash{}, err
	}
	defer src.close()
	raw, digest, err := src.resolve(ctx, plat)
	if err != nil {
		return v1.Hash{}, err
	}
	if _, err := imageManifest(raw, digest); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// fetchLayers stores the layers not yet stored, a few at a time; the first
// failure cancels the rest.
func (s *Store) fetchLayers(ctx context.Context, src source, ls []v1.Descriptor, prog *progress) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, parallelLayers)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
	seen := map[v1.Hash]bool{}
	for _, d := range ls {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		if s.hasBlob(d.Digest) {
			prog.exists(d.Digest, d.Size)
			continue
		}
		l := prog.fetch(d.Digest, d.Size) // bars in layer order
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				l.done(ctx.Err())
				fail(errdefs.Wrap(errdefs.ErrUnavailable, ctx.Err(), "fetch blob %s", d.Digest))
				return
			}
			defer func() { <-sem }()
			err := s.fetchBlob(ctx, src, d, l.reader)
			l.done(err)
			if err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return first
}

// fetchBlob copies one blob from src into the store, verified.
func (s *Store) fetchBlob(ctx context.Context, src source, d v1.Descriptor, wrap func(io.Reader) io.Reader) error {
	rc, err := src.blob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if wrap != nil {
		r = wrap(rc)
	}
	err = s.putBlob(d.Digest, d.Size, r)
	var e *errdefs.Error
	if err != nil && !errors.As(err, &e) {
		err = errdefs.Wrap(netCategory(err), flat(err), "fetch blob %s", d.Digest)
	}
	return err
}
