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
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/image/unpack"
	"github.com/proxcage/proxcage/internal/imagebundle"
	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/route"
	"github.com/proxcage/proxcage/internal/spec"
	"github.com/proxcage/proxcage/internal/volume"
)

// Images, under the data dir ([data_dir] in the config): the image store
// in DATA/images/ (internal/image) and the bundles made from images in
// DATA/containers/ (internal/imagebundle). The runtime, not the backends,
// turns an image into a bundle, so every backend keeps taking bundles:
// most get a private overlay of the shared image rootfs; a backend that
// only reads it (backend.RootfsReader: pve makes a template of it) gets
// the shared rootfs, and the image itself in CreateOpts.Image.

// ImageRequest is `create/run --image`.
type ImageRequest struct {
	Ref       string
	Pull      image.PullOptions
	Overrides imagespec.Overrides
	// Name is recorded as the image's name when Ref is a digest the store
	// holds (upgrade: the name the container was made from).
	Name string
	// Volumes are -v NAME:/PATH; the image's VOLUMEs no -v covers get
	// anonymous ones (volume.ForImage).
	Volumes []volume.Mount
}

// AnnotationImageOverrides records an image container's command-line
// overrides (imagespec.Overrides as JSON: command, env, workdir, user,
// tty, annotations).
const AnnotationImageOverrides = "org.proxcage.image.overrides"

// Volumes is the store of the data volumes of this host's backends.
func (r *Runtime) Volumes() volume.Store {
	return volume.Store{Dir: filepath.Join(r.Config.DataDir, "volumes")}
}

// volumePolicy says what the end of a container does to its volumes.
type volumePolicy int

const (
	keepVolumes     volumePolicy = iota // delete: the data outlives the container
	removeAnonymous                     // run --rm (podman's): the image's unnamed ones go
	removeVolumes                       // delete --volumes: every volume no other container uses
)

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

// bundles is where image containers' bundles live.
func (r *Runtime) bundles() imagebundle.Dir {
	return imagebundle.Dir{Data: r.Config.DataDir, Hint: r.dataDirHint()}
}

// RouteImage decides the backend for a new container of an image. Only the
// operator's annotations (--annotation) and the config route it, never the
// image's labels, so the image need not be pulled to know.
func (r *Runtime) RouteImage(id, ref string, annotations map[string]string) (route.Decision, error) {
	if err := image.CheckReference(ref); err != nil {
		return route.Decision{}, err
	}
	d := route.Pick(r.Config, id, annotations)
	// Only whether the backend exists: nothing is made.
	return d, chosenBy(r.Backends.Check(d.Backend), d)
}

// CreateFromImage makes a bundle from an image and creates the container.
func (r *Runtime) CreateFromImage(ctx context.Context, id string, req ImageRequest, opts backend.CreateOpts) error {
	p, err := r.placeImage(id, req, false)
	if err != nil {
		return err
	}
	unlock, err := r.bundles().Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	b, src, made, err := r.prepareImageBundle(ctx, id, req, p.backend)
	if err != nil {
		return err
	}
	opts.Image = src
	h, _, err := r.create(ctx, p, b, opts)
	if err != nil {
		r.releaseImageBundle(id, b.Path, keepVolumes)
		r.dropVolumes(id, made)
		return err
	}
	h.Unlock()
	return nil
}

// placeImage checks the id and places an image container before anything
// is pulled or made: only the operator's annotations and the config
// decide (the image's labels never route).
func (r *Runtime) placeImage(id string, req ImageRequest, foreground bool) (placement, error) {
	if err := identifiers.Validate(id); err != nil {
		return placement{}, err
	}
	return r.place(id, req.Overrides.Annotations, foreground)
}

// RunFromImage is CreateFromImage + start (+ wait and delete in the
// foreground).
func (r *Runtime) RunFromImage(ctx context.Context, id string, req ImageRequest, opts backend.CreateOpts) (int, error) {
	p, err := r.placeImage(id, req, !opts.Detach)
	if err != nil {
		return -1, err
	}
	unlock, err := r.bundles().Lock(id)
	if err != nil {
		return -1, err
	}
	b, src, made, err := r.prepareImageBundle(ctx, id, req, p.backend)
	if err != nil {
		unlock()
		return -1, err
	}
	opts.Image = src
	// The lock covers the create only: a foreground run waits for the
	// container's end with it released.
	status, err := r.run(ctx, p, b, opts, unlock)
	if err != nil {
		if _, lerr := r.Store.Load(id); lerr != nil {
			r.releaseImageBundle(id, b.Path, keepVolumes)
			if status < 0 {
				// It never ran: the volumes this run made go with it.
				r.dropVolumes(id, made)
			}
		}
	}
	return status, err
}

// prepareImageBundle pulls the image if the store lacks it, unpacks it
// once, makes the bundle of id for backend be, and records the container
// as a user of the image and its volumes. It returns the bundle as create
// takes it (no config.json read back), for a backend that takes images
// the image, and the volumes it made (a failed create removes them).
func (r *Runtime) prepareImageBundle(ctx context.Context, id string, req ImageRequest, be backend.Backend) (b *spec.Bundle, src *backend.ImageSource, made []string, err error) {
	b, src, made, err = r.prepareImageBundleVolumes(ctx, id, req, be)
	if err != nil {
		r.dropVolumes(id, made)
		return nil, nil, nil, err
	}
	return b, src, made, nil
}

func (r *Runtime) prepareImageBundleVolumes(ctx context.Context, id string, req ImageRequest, be backend.Backend) (*spec.Bundle, *backend.ImageSource, []string, error) {
	if _, err := r.Store.Load(id); err == nil {
		return nil, nil, nil, errdefs.New(errdefs.ErrAlreadyExists, "container %q already exists", id)
	}
	st, err := r.ImageStore()
	if err != nil {
		return nil, nil, nil, err
	}
	img, err := st.Get(req.Ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		img, err = st.Pull(ctx, req.Ref, req.Pull)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	rootfs, cached, err := st.Rootfs(ctx, img, r.applyLayer)
	if err != nil {
		return nil, nil, nil, err
	}
	r.Log.Debug("image rootfs", "image", img.Name, "digest", img.Digest.String(), "dir", rootfs, "cached", cached)
	if ignored := imagespec.IgnoredLabels(img.Config); len(ignored) > 0 {
		r.Log.Warn("image labels ignored: only the operator sets "+imagespec.OperatorPrefix+"* (--annotation, the bundle, config rules)",
			"image", img.Name, "labels", strings.Join(ignored, ","))
	}
	o := req.Overrides
	if o.Hostname == "" {
		o.Hostname = identifiers.Hostname(id)
	}
	name := img.Name
	if req.Name != "" {
		name = req.Name
	}
	s, err := imagespec.Generate(imagespec.Image{Name: name, Digest: img.Digest.String(), Config: img.Config}, rootfs, o)
	if err != nil {
		return nil, nil, nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "image %s", img.Name)
	}
	// What the user asked for, so that an upgrade applies it over the
	// next image's config.
	ov, _ := json.Marshal(req.Overrides)
	s.Annotations[AnnotationImageOverrides] = string(ov)
	rr, readsOnly := be.(backend.RootfsReader)
	readsOnly = readsOnly && rr.ReadsRootfsOnly()
	var imageVolumes map[string]struct{}
	if img.Config != nil {
		imageVolumes = img.Config.Config.Volumes
	}
	vols, err := volume.ForImage(id, req.Volumes, imageVolumes)
	if err != nil {
		return nil, nil, nil, err
	}
	var made []string
	if len(vols) > 0 {
		s.Annotations[volume.Annotation] = volume.Encode(vols)
		if !readsOnly {
			// Here the volumes are this host's directories, bound in;
			// a backend that reads the rootfs only (pve) maps the
			// annotation to volumes of its own.
			if made, err = r.attachVolumes(id, s, vols, rootfs); err != nil {
				return nil, nil, made, err
			}
		}
	}
	var src *backend.ImageSource
	if readsOnly {
		// Before anything is made: what the archive cannot carry is
		// refused here.
		if src, err = imageArchive(st, img, o, s.Process); err != nil {
			return nil, nil, made, err
		}
	}
	// No record holds this id and we hold its bundle lock: a directory
	// left there is a crashed create's.
	r.releaseImageBundle(id, r.bundles().Path(id), keepVolumes)
	dir, err := r.bundles().Prepare(id, s, rootfs, readsOnly)
	if err != nil {
		return nil, nil, made, err
	}
	b, err := spec.FromSpec(dir, s)
	if err == nil {
		err = st.Use(img.Digest, id)
	}
	if err != nil {
		r.releaseImageBundle(id, dir, keepVolumes)
		return nil, nil, made, err
	}
	return b, src, made, nil
}

// attachVolumes makes (seeded from the image) or reuses the volumes of
// id and binds them into s. It returns the names of those it made.
func (r *Runtime) attachVolumes(id string, s *specs.Spec, vols []volume.Mount, imageRootfs string) ([]string, error) {
	vs := r.Volumes()
	var made []string
	for _, v := range vols {
		_, statErr := os.Stat(vs.DataDir(v.Name))
		dir, err := vs.Attach(v, id, imageRootfs)
		if err != nil {
			return made, err
		}
		if statErr != nil {
			made = append(made, v.Name)
		}
		opts := []string{"rbind", "rw"}
		if v.ReadOnly {
			opts[1] = "ro"
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: v.Path, Type: "bind", Source: dir, Options: opts})
	}
	return made, nil
}

// dropVolumes undoes attachVolumes for a create that failed: id leaves
// every volume, and those it made go.
func (r *Runtime) dropVolumes(id string, made []string) {
	vs := r.Volumes()
	for _, name := range made {
		if _, err := vs.Detach(name, id, false); err != nil {
			r.Log.Warn("remove the volume a failed create made", "id", id, "volume", name, "err", errdefs.OneLine(err))
		}
		// Unless another container took it up meanwhile.
		if err := vs.Remove(name); err != nil && errdefs.Category(err) != errdefs.ErrNotFound && errdefs.Category(err) != errdefs.ErrFailedPrecondition {
			r.Log.Warn("remove the volume a failed create made", "id", id, "volume", name, "err", errdefs.OneLine(err))
		}
	}
}

// releaseVolumes is the end of a container for its volumes (on this
// host's backends: the annotation's volumes that the store holds).
func (r *Runtime) releaseVolumes(id string, ann map[string]string, pol volumePolicy) {
	vols, err := volume.Decode(ann)
	if err != nil || len(vols) == 0 {
		return
	}
	vs := r.Volumes()
	for _, v := range vols {
		remove := pol == removeVolumes || pol == removeAnonymous && v.Anonymous
		gone, err := vs.Detach(v.Name, id, remove)
		if err != nil {
			r.Log.Warn("release volume", "id", id, "volume", v.Name, "err", errdefs.OneLine(err))
			continue
		}
		if gone {
			r.Log.Debug("volume removed", "id", id, "volume", v.Name)
		} else if remove {
			r.Log.Info("volume kept: another container uses it", "id", id, "volume", v.Name)
		}
	}
}

// imageArchive is the image as a backend that maps the image config
// itself takes it (PVE 9.1's OCI templates): an OCI archive whose config
// is derived from the image's with the overrides merged in (the command,
// -e over the image's Env, -w, -u), as PVE applies the image config over
// its create options (pve-container Create.pm restore_oci_archive) and
// would lose them otherwise. Layers are shared with the image. process is
// the bundle's, which imagespec.Generate made from the same merged config
// (imagespec.Merge): what PVE runs from the archive's config.
func imageArchive(st *image.Store, img *image.Image, o imagespec.Overrides, process *specs.Process) (*backend.ImageSource, error) {
	var base *v1.Config
	if img.Config != nil {
		base = &img.Config.Config
	}
	merged, err := imagespec.Merge(base, o)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "image %s", img.Name)
	}
	a, err := st.OCIArchive(img, &merged)
	if err != nil {
		return nil, err
	}
	defaults, err := cloneProcess(process)
	if err != nil {
		return nil, err
	}
	return &backend.ImageSource{
		Name: img.Name, Digest: img.Digest.String(), ArchiveDigest: a.Digest.String(),
		WriteOCIArchive: a.Write, Defaults: defaults,
	}, nil
}

// cloneProcess is a deep copy of p: an ImageSource's Defaults are what
// the backend holds the spec's process against, so they must not share
// its slices.
func cloneProcess(p *specs.Process) (*specs.Process, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "copy the process")
	}
	var out specs.Process
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "copy the process")
	}
	return &out, nil
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

// releaseImageBundle removes an image container's bundle (imagebundle's
// Release) and its use of the image. Safe to call for any container: it
// acts only on the bundle the data dir holds for id.
func (r *Runtime) releaseImageBundle(id, bundle string, vols volumePolicy) {
	ann, problems, ok := r.bundles().Release(id, bundle)
	for _, p := range problems {
		r.Log.Warn("release image bundle", "id", id, "err", p)
	}
	if !ok {
		return
	}
	r.releaseVolumes(id, ann, vols)
	if ann[imagespec.AnnotationImageDigest] == "" {
		return
	}
	h, err := v1.NewHash(ann[imagespec.AnnotationImageDigest])
	if err != nil {
		return
	}
	if st, err := r.ImageStore(); err == nil {
		if err := st.Release(h, id); err != nil {
			r.Log.Warn("release image", "id", id, "err", err)
		}
	}
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
