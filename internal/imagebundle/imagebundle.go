// Package imagebundle keeps the bundles of containers made from images,
// under the data dir:
//
//	DATA/containers/ID/          the bundle: config.json, and the rootfs
//	    rootfs/, upper/, work/   a private overlay over the shared image rootfs
//	DATA/containers/.locks/ID    held while a create of ID makes its bundle
//
// A backend that only reads a rootfs (pve makes a template of it) gets the
// shared image rootfs instead of an overlay. The runtime decides which and
// owns the image store; this package only makes and removes bundles.
package imagebundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// Dir is the bundles' place under a data dir.
type Dir struct {
	Data string // the data dir
	// Hint says what to do when the data dir refuses access (the config
	// key that moves it, and where it is set).
	Hint string
}

// Path is the bundle directory of container id.
func (d Dir) Path(id string) string { return filepath.Join(d.Data, "containers", id) }

// Lock serialises image creates of one id until the id is reserved in the
// state store: the bundle directory is made before the record, and a
// second create of the same id must neither reuse nor remove the first
// one's. It fails at once when another create holds it.
func (d Dir) Lock(id string) (unlock func(), err error) {
	dir := filepath.Join(d.Data, "containers", ".locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errdefs.WrapOS(errdefs.ErrInternal, err, d.Hint, "data dir")
	}
	f, err := os.OpenFile(filepath.Join(dir, id), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, errdefs.WrapOS(errdefs.ErrInternal, err, d.Hint, "lock")
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, errdefs.New(errdefs.ErrAlreadyExists, "container %q already exists (another create of it is running)", id)
	}
	return func() { f.Close() }, nil
}

// Prepare makes the bundle of id (Lock held, no record of id in the state
// store, and a crashed create's directory Released): s, whose root becomes
// a private overlay of imageRootfs, or imageRootfs itself when shared
// (nothing writes to it then). It returns the bundle directory; on error
// nothing is left.
func (d Dir) Prepare(id string, s *specs.Spec, imageRootfs string, shared bool) (dir string, err error) {
	dir = d.Path(id)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", errdefs.WrapOS(errdefs.ErrInternal, err, d.Hint, "data dir")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", errdefs.WrapOS(errdefs.ErrInternal, err, d.Hint, "bundle directory")
	}
	defer func() {
		if err != nil {
			d.Release(id, dir)
		}
	}()
	if shared {
		s.Root.Path = imageRootfs
	} else {
		if err := mountOverlay(imageRootfs, dir); err != nil {
			return "", err
		}
		s.Root.Path = "rootfs"
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "encode config.json")
	}
	if err := atomicfile.Write(filepath.Join(dir, "config.json"), data, atomicfile.Options{Perm: 0o600}); err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "write config.json")
	}
	return dir, nil
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

// Release removes the bundle of id when bundle is that bundle (any other
// container's bundle is left alone), unmounting its overlay first. It
// returns the annotations of its config.json (the image it was made from
// is there) and the problems it met, for the log; ok is false when there
// was no bundle of id.
func (d Dir) Release(id, bundle string) (annotations map[string]string, problems []error, ok bool) {
	dir := d.Path(id)
	if bundle != dir || d.Data == "" {
		return nil, nil, false
	}
	if _, err := os.Lstat(dir); err != nil {
		return nil, nil, false
	}
	if err := unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		problems = append(problems, fmt.Errorf("unmount the rootfs: %w", err))
	}
	if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var s struct {
			Annotations map[string]string `json:"annotations"`
		}
		if json.Unmarshal(data, &s) == nil {
			annotations = s.Annotations
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		problems = append(problems, fmt.Errorf("remove the bundle: %w", err))
	}
	return annotations, problems, true
}
