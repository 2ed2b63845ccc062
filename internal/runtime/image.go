package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/image/unpack"
	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/route"
)

// Images, under the data dir ([data_dir] in the config):
//
//	DATA/images/                 the image store (blobs, names, unpacked rootfs)
//	DATA/containers/ID/          the bundle made for an image container:
//	    config.json, rootfs/     (native: an overlay of the image's rootfs
//	    upper/, work/             with this container's own upper layer)
//
// The runtime, not the backends, turns an image into a bundle, so every
// backend keeps taking bundles: native gets a private overlay, pve reads
// the shared image rootfs (read-only) to make its template.

// ImageRequest is `create/run --image`.
type ImageRequest struct {
	Ref       string
	Pull      image.PullOptions
	Overrides imagespec.Overrides
}

// ImageStore opens the image store under the data dir.
func (r *Runtime) ImageStore() (*image.Store, error) {
	st, err := image.Open(r.ImageStoreDir(), r.Log)
	if errdefs.Category(err) == errdefs.ErrPermissionDenied {
		return nil, errdefs.WithHint(err, r.dataDirHint())
	}
	return st, err
}

// dataDirHint is what to do when the data dir refuses access: the config
// key that moves it, and the file that holds it.
func (r *Runtime) dataDirHint() string {
	where := "the config (" + config.DefaultPath + ", or --config FILE / $" + config.EnvVar + ")"
	if r.Config.Path != "" {
		where = r.Config.Path + " (or another config with --config FILE)"
	}
	who := "run proxcage as root"
	if uid := os.Geteuid(); uid != 0 {
		who = fmt.Sprintf("proxcage runs as uid %d: run it as root", uid)
	}
	return fmt.Sprintf("%s, or set data_dir (now %s) in %s to a directory that user can write", who, r.Config.DataDir, where)
}

// dataDirErr classifies a failed file system call under the data dir.
func (r *Runtime) dataDirErr(err error, format string, args ...any) error {
	return errdefs.WrapOS(errdefs.ErrInternal, err, r.dataDirHint(), format, args...)
}

// ImageStoreDir is the image store's directory; opening the store would
// create it.
func (r *Runtime) ImageStoreDir() string { return filepath.Join(r.Config.DataDir, "images") }

// Pull fetches an image into the store.
func (r *Runtime) Pull(ctx context.Context, ref string, opts image.PullOptions) (*image.Image, error) {
	st, err := r.ImageStore()
	if err != nil {
		return nil, err
	}
	return st.Pull(ctx, ref, opts)
}

// imageBundleDir is where the bundle of image container id lives.
func (r *Runtime) imageBundleDir(id string) string {
	return filepath.Join(r.Config.DataDir, "containers", id)
}

// RouteImage decides the backend for a new container of an image. Only the
// operator's annotations (--annotation) and the config route it, never the
// image's labels, so the image need not be pulled to know.
func (r *Runtime) RouteImage(id, ref string, annotations map[string]string) (route.Decision, error) {
	if err := image.CheckReference(ref); err != nil {
		return route.Decision{}, err
	}
	return r.routeImage(id, ImageRequest{Ref: ref, Overrides: imagespec.Overrides{Annotations: annotations}}, false)
}

// CreateFromImage makes a bundle from an image and creates the container.
func (r *Runtime) CreateFromImage(ctx context.Context, id string, req ImageRequest, opts backend.CreateOpts) error {
	d, err := r.routeImage(id, req, false)
	if err != nil {
		return err
	}
	unlock, err := r.lockImageBundle(id)
	if err != nil {
		return err
	}
	defer unlock()
	bundle, src, err := r.prepareImageBundle(ctx, id, req, d)
	if err != nil {
		return err
	}
	opts.Image = src
	h, _, _, err := r.create(ctx, id, createRequest{bundle: bundle, decided: &d}, opts)
	if err != nil {
		r.releaseImageBundle(id, bundle)
		return err
	}
	h.Unlock()
	return nil
}

// routeImage routes an image container before anything is pulled or
// made, and refuses what its backend cannot do.
func (r *Runtime) routeImage(id string, req ImageRequest, foreground bool) (route.Decision, error) {
	if err := identifiers.Validate(id); err != nil {
		return route.Decision{}, err
	}
	d := route.Pick(r.Config, id, req.Overrides.Annotations)
	if !foreground {
		// Only whether it exists: create makes the backend.
		return d, chosenBy(r.Backends.Check(d.Backend), d)
	}
	_, err := r.backendFor(d, foreground)
	return d, err
}

// RunFromImage is CreateFromImage + start (+ wait and delete in the
// foreground).
func (r *Runtime) RunFromImage(ctx context.Context, id string, req ImageRequest, opts backend.CreateOpts) (int, error) {
	d, err := r.routeImage(id, req, !opts.Detach)
	if err != nil {
		return -1, err
	}
	unlock, err := r.lockImageBundle(id)
	if err != nil {
		return -1, err
	}
	bundle, src, err := r.prepareImageBundle(ctx, id, req, d)
	if err != nil {
		unlock()
		return -1, err
	}
	opts.Image = src
	// The lock covers the create only: a foreground run waits for the
	// container's end with it released.
	status, err := r.run(ctx, id, createRequest{bundle: bundle, decided: &d}, opts, unlock)
	if err != nil {
		if _, lerr := r.Store.Load(id); lerr != nil {
			r.releaseImageBundle(id, bundle)
		}
	}
	return status, err
}

// lockImageBundle serialises image creates of one id until the id is
// reserved in the state store (DATA/containers/.locks/ID, flock): the
// bundle directory is made before the record, and a second create of the
// same id must neither reuse nor remove the first one's.
func (r *Runtime) lockImageBundle(id string) (func(), error) {
	if err := identifiers.Validate(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.Config.DataDir, "containers", ".locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, r.dataDirErr(err, "data dir")
	}
	f, err := os.OpenFile(filepath.Join(dir, id), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, r.dataDirErr(err, "lock")
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, errdefs.New(errdefs.ErrAlreadyExists, "container %q already exists (another create of it is running)", id)
	}
	return func() { f.Close() }, nil
}

// prepareImageBundle pulls the image if the store lacks it, unpacks it
// once, writes DATA/containers/ID/config.json and the container's root
// filesystem, and records the container as a user of the image.
func (r *Runtime) prepareImageBundle(ctx context.Context, id string, req ImageRequest, d route.Decision) (string, *backend.ImageSource, error) {
	if _, err := r.Store.Load(id); err == nil {
		return "", nil, errdefs.New(errdefs.ErrAlreadyExists, "container %q already exists", id)
	}
	st, err := r.ImageStore()
	if err != nil {
		return "", nil, err
	}
	img, err := st.Get(req.Ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		img, err = st.Pull(ctx, req.Ref, req.Pull)
	}
	if err != nil {
		return "", nil, err
	}
	rootfs, cached, err := st.Rootfs(ctx, img, r.applyLayer)
	if err != nil {
		return "", nil, err
	}
	r.Log.Debug("image rootfs", "image", img.Name, "digest", img.Digest.String(), "dir", rootfs, "cached", cached)
	if ignored := imagespec.IgnoredLabels(img.Config); len(ignored) > 0 {
		r.Log.Warn("image labels ignored: only the operator sets "+imagespec.OperatorPrefix+"* (--annotation, the bundle, config rules)",
			"image", img.Name, "labels", strings.Join(ignored, ","))
	}

	o := req.Overrides
	if o.Hostname == "" {
		o.Hostname = hostnameFor(id)
	}
	s, err := imagespec.Generate(imagespec.Image{Name: img.Name, Digest: img.Digest.String(), Config: img.Config}, rootfs, o)
	if err != nil {
		return "", nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "image %s", img.Name)
	}
	dir := r.imageBundleDir(id)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", nil, r.dataDirErr(err, "data dir")
	}
	// No record holds this id and we hold its image lock: a directory
	// left here is a crashed create's.
	r.releaseImageBundle(id, dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, r.dataDirErr(err, "bundle directory")
	}
	ok := false
	defer func() {
		if !ok {
			r.releaseImageBundle(id, dir)
		}
	}()
	if d.Backend != "pve" {
		// A private writable layer over the shared, read-only image.
		if err := mountOverlay(rootfs, dir); err != nil {
			return "", nil, err
		}
		s.Root.Path = "rootfs"
	} else {
		// Backends that copy the rootfs (pve makes a template of it) read
		// the shared one; nothing writes to it.
		s.Root.Path = rootfs
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", nil, errdefs.Wrap(errdefs.ErrInternal, err, "encode config.json")
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return "", nil, errdefs.Wrap(errdefs.ErrInternal, err, "write config.json")
	}
	if err := st.Use(img.Digest, id); err != nil {
		return "", nil, err
	}
	defaults, err := imagespec.Generate(imagespec.Image{Config: img.Config}, rootfs, imagespec.Overrides{})
	if err != nil {
		defaults = nil // an image without a command: only overrides give one
	}
	src := &backend.ImageSource{
		Name: img.Name, Digest: img.Digest.String(),
		WriteOCIArchive: func(w io.Writer) error { return st.WriteOCIArchive(img, w) },
	}
	if defaults != nil {
		src.Defaults = defaults.Process
	}
	ok = true
	return dir, src, nil
}

// applyLayer is the store's unpack step: the safe unpacker, with what it
// could not apply unprivileged logged.
func (r *Runtime) applyLayer(root string, layer io.Reader, name string) error {
	res, err := unpack.ApplyLayer(root, layer, unpack.Options{Layer: name})
	if err != nil {
		var ue *unpack.Error
		if errors.As(err, &ue) {
			return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "unsafe image")
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "unpack %s", name)
	}
	for _, s := range res.Skipped {
		r.Log.Debug("unpack: skipped", "layer", name, "what", s)
	}
	return nil
}

// mountOverlay mounts DIR/rootfs as the image rootfs plus DIR/upper.
func mountOverlay(lower, dir string) error {
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "bundle directory")
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", filepath.Join(dir, "rootfs"), "overlay", 0, opts); err != nil {
		return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
			Msg:  fmt.Sprintf("mount the overlay root filesystem: %v", err),
			Hint: "the data dir must be on a filesystem overlayfs accepts as upper layer (ext4, xfs); set data_dir in the config"}
	}
	return nil
}

// releaseImageBundle removes an image container's bundle (unmounting its
// overlay) and its use of the image. Safe to call for any container: it
// acts only on DATA/containers/ID.
func (r *Runtime) releaseImageBundle(id, bundle string) {
	dir := r.imageBundleDir(id)
	if bundle != dir || r.Config.DataDir == "" {
		return
	}
	if _, err := os.Lstat(dir); err != nil {
		return
	}
	if err := unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		r.Log.Warn("unmount container rootfs", "id", id, "err", err)
	}
	var digest string
	if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var s struct {
			Annotations map[string]string `json:"annotations"`
		}
		if json.Unmarshal(data, &s) == nil {
			digest = s.Annotations[imagespec.AnnotationImageDigest]
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		r.Log.Warn("remove image bundle", "id", id, "err", err)
	}
	if digest == "" {
		return
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return
	}
	if st, err := r.ImageStore(); err == nil {
		if err := st.Release(h, id); err != nil {
			r.Log.Warn("release image", "id", id, "err", err)
		}
	}
}

// hostnameFor derives a hostname from a container id (a DNS label of at
// most 63 characters, as containerd's 64-hex ids are not).
func hostnameFor(id string) string {
	h := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '-'
	}, id)
	h = strings.Trim(h, "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "container"
	}
	return h
}

// RemoveImage is `rmi`: ref leaves the image store, and with the image
// (when it is gone, not only untagged) the copies backends keep of it.
func (r *Runtime) RemoveImage(ctx context.Context, ref string, force bool) ([]string, error) {
	st, err := r.ImageStore()
	if err != nil {
		return nil, err
	}
	removed, err := st.Remove(ref, force)
	if err != nil {
		return removed, err
	}
	return append(removed, r.dropImageTemplates(ctx, removed)...), nil
}

// PruneImages is `images prune`, with the removed images' backend copies.
func (r *Runtime) PruneImages(ctx context.Context) ([]string, error) {
	st, err := r.ImageStore()
	if err != nil {
		return nil, err
	}
	removed, err := st.Prune()
	return append(removed, r.dropImageTemplates(ctx, removed)...), err
}

// dropImageTemplates asks every backend that keeps templates to remove
// those of the images the store just deleted (entries "sha256:..." or
// "image sha256:..."). A backend that cannot be reached now is only
// warned about: the image is gone, and `templates prune` finds the rest.
func (r *Runtime) dropImageTemplates(ctx context.Context, removed []string) []string {
	var digests []string
	for _, e := range removed {
		if d := strings.TrimPrefix(e, "image "); strings.HasPrefix(d, "sha256:") {
			digests = append(digests, d)
		}
	}
	if len(digests) == 0 {
		return nil
	}
	mgrs, live, err := r.templateBackends()
	if err != nil {
		return nil // no backend keeps templates
	}
	var out []string
	for name, m := range mgrs {
		for _, d := range digests {
			rm, err := m.RemoveImageTemplates(ctx, d, live[name])
			for _, t := range rm {
				out = append(out, "template "+t)
			}
			if err != nil {
				r.Log.Warn("the image's template was not removed; `proxcage templates prune` retries it",
					"backend", name, "image", d, "err", errdefs.OneLine(err))
			}
		}
	}
	sort.Strings(out)
	return out
}
