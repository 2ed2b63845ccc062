// Package image pulls container images from registries and local archives
// into a content-addressed store, and unpacks them into shared root
// filesystems.
//
// Store layout (DIR is the argument of Open):
//
//	DIR/lock                     flock: held (exclusive) while index.json or users/ change
//	DIR/gc.lock                  flock: shared by pulls and unpacks, exclusive to delete blobs
//	DIR/index.json               images: manifest digest, names, blobs, size; replaced atomically
//	DIR/blobs/sha256/HEX         manifests, configs and layers, each verified before it appears
//	DIR/rootfs/HEX/              unpacked image (HEX of the manifest digest), shared read-only
//	DIR/rootfs/HEX.lock          flock: one unpacker per image
//	DIR/users/HEX/CONTAINER-ID   one empty file per container using the image
//	DIR/tmp/                     blobs and rootfs being written; renamed out when complete
//
// Readers (Get, List, OpenLayer) never lock: every file they read is either
// absent or complete.
package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
)

const indexVersion = 1

// Store is a local image store rooted at one directory.
type Store struct {
	dir string
	log *slog.Logger
}

// LayerInfo describes one layer of a stored image.
type LayerInfo struct {
	Digest    v1.Hash // blob digest (compressed)
	DiffID    v1.Hash // uncompressed digest
	Size      int64
	MediaType string
}

// Image is a stored image.
type Image struct {
	Name   string  // reference as recorded; "" for an unnamed image
	Digest v1.Hash // manifest digest: the image's identity
	Config *v1.ConfigFile
	Layers []LayerInfo
}

// Listed is one row of List.
type Listed struct {
	Names    []string
	Digest   v1.Hash
	Size     int64 // manifest, config and layer blobs
	Created  time.Time
	Unpacked bool
	Users    int
}

// index is DIR/index.json.
type index struct {
	Version int          `json:"version"`
	Images  []indexEntry `json:"images"`
}

type indexEntry struct {
	Digest  v1.Hash   `json:"digest"`
	Names   []string  `json:"names,omitempty"`
	Blobs   []v1.Hash `json:"blobs"` // config and layers (the manifest is Digest)
	Size    int64     `json:"size"`
	Created time.Time `json:"created,omitzero"`
	Pulled  time.Time `json:"pulled"`
}

// Open creates (or opens) the store at dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "image store %s", dir)
	}
	s := &Store{dir: abs, log: log}
	// The root and rootfs/ only need traversal by others: a user-namespaced
	// container's runtime may have to reach its rootfs through them.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{abs, 0o711}, {s.path("blobs"), 0o700}, {s.path("blobs", "sha256"), 0o700},
		{s.path("rootfs"), 0o711}, {s.path("users"), 0o700}, {s.path("tmp"), 0o700},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			// The caller knows which setting names dir (runtime: data_dir).
			return nil, errdefs.WrapOS(errdefs.ErrInternal, err,
				"the image store's directory must be writable by the user proxcage runs as", "create image store %s", abs)
		}
	}
	return s, nil
}

// Dir is the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobPath(h v1.Hash) string { return s.path("blobs", h.Algorithm, h.Hex) }

func (s *Store) hasBlob(h v1.Hash) bool {
	fi, err := os.Stat(s.blobPath(h))
	return err == nil && fi.Mode().IsRegular()
}

// ---- locking ----

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// lockFile takes a flock on path (created if missing). With nonBlock, ok is
// false when someone else holds a conflicting lock. Each call opens its own
// file description, so goroutines of one process exclude each other too.
func lockFile(path string, how int, nonBlock bool) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, errdefs.Wrap(errdefs.ErrInternal, err, "lock %s", path)
	}
	if nonBlock {
		how |= unix.LOCK_NB
	}
	if err := flock(f, how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, errdefs.Wrap(errdefs.ErrInternal, err, "lock %s", path)
	}
	return func() { f.Close() }, true, nil
}

func (s *Store) lock() (func(), error) {
	unlock, _, err := lockFile(s.path("lock"), unix.LOCK_EX, false)
	return unlock, err
}

// sharedGC is held by every operation that writes or reads blobs over a
// long time (pull, unpack), so blob deletion never races with them.
func (s *Store) sharedGC() (func(), error) {
	unlock, _, err := lockFile(s.path("gc.lock"), unix.LOCK_SH, false)
	return unlock, err
}

// tryExclusiveGC never waits: Remove and Prune leave blobs for a later
// Prune rather than stall behind a long pull.
func (s *Store) tryExclusiveGC() (func(), bool, error) {
	return lockFile(s.path("gc.lock"), unix.LOCK_EX, true)
}

// ---- index ----

func (s *Store) load() (*index, error) {
	b, err := os.ReadFile(s.path("index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &index{Version: indexVersion}, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "read image index")
	}
	var ix index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "image index %s is corrupt", s.path("index.json"))
	}
	return &ix, nil
}

func (s *Store) save(ix *index) error {
	ix.Version = indexVersion
	sort.Slice(ix.Images, func(i, j int) bool { return ix.Images[i].Digest.String() < ix.Images[j].Digest.String() })
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "encode image index")
	}
	if err := atomicfile.Write(s.path("index.json"), b, atomicfile.Options{Durable: true, TempDir: s.path("tmp"), TempPrefix: "index-"}); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "write image index")
	}
	return nil
}

// update runs fn on the index under the store lock and saves the result
// unless fn fails.
func (s *Store) update(fn func(ix *index) error) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(ix); err != nil {
		return err
	}
	return s.save(ix)
}

func (ix *index) byDigest(d v1.Hash) *indexEntry {
	for i := range ix.Images {
		if ix.Images[i].Digest == d {
			return &ix.Images[i]
		}
	}
	return nil
}

func (ix *index) byName(n string) *indexEntry {
	for i := range ix.Images {
		if slices.Contains(ix.Images[i].Names, n) {
			return &ix.Images[i]
		}
	}
	return nil
}

// setName points n at d, taking it from any other image.
func (ix *index) setName(n string, d v1.Hash) {
	for i := range ix.Images {
		ix.Images[i].Names = slices.DeleteFunc(ix.Images[i].Names, func(x string) bool { return x == n })
	}
	e := ix.byDigest(d)
	e.Names = append(e.Names, n)
	sort.Strings(e.Names)
}

var hexPrefix = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// find resolves ref to an image: a name (as given or normalised), a full or
// unique short digest, or NAME@DIGEST of a stored image. name is the name
// matched, if any.
func (ix *index) find(ref string) (e *indexEntry, name string, err error) {
	if e := ix.byName(ref); e != nil {
		return e, ref, nil
	}
	if src, err := parseRef(ref); err == nil {
		if e := ix.byName(src.name); e != nil {
			return e, src.name, nil
		}
		if src.ref != nil {
			if d, ok := src.digest(); ok {
				if e := ix.byDigest(d); e != nil {
					return e, "", nil
				}
			}
		}
	}
	if h := strings.TrimPrefix(ref, "sha256:"); hexPrefix.MatchString(h) {
		var found []*indexEntry
		for i := range ix.Images {
			if strings.HasPrefix(ix.Images[i].Digest.Hex, h) {
				found = append(found, &ix.Images[i])
			}
		}
		switch len(found) {
		case 1:
			return found[0], "", nil
		case 0:
		default:
			return nil, "", &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  fmt.Sprintf("digest prefix %q matches %d images", ref, len(found)),
				Hint: "give more digits of the digest"}
		}
	}
	return nil, "", notInStore(ref)
}

func notInStore(ref string) error {
	return &errdefs.Error{Cat: errdefs.ErrNotFound, Msg: fmt.Sprintf("image %q is not in the store", ref),
		Hint: "pull it first, or list the stored images"}
}

// ---- blobs ----

// putBlob streams r into tmp/ while hashing it and renames it into blobs/
// only when it matches h (and size, unless negative). On any failure the
// temporary file is removed, so blobs/ only ever holds verified content.
func (s *Store) putBlob(h v1.Hash, size int64, r io.Reader) error {
	if h.Algorithm != "sha256" {
		return errdefs.New(errdefs.ErrInvalidArgument, "blob %s: unsupported digest algorithm %q", h, h.Algorithm)
	}
	// The write is the check: only content that matches h is renamed
	// into blobs/.
	var werr error
	err := atomicfile.WriteFrom(s.blobPath(h), atomicfile.Options{Durable: true, TempDir: s.path("tmp"), TempPrefix: "blob-" + h.Hex[:12] + "-"},
		func(w io.Writer) error {
			hasher := sha256.New()
			src := r
			if size >= 0 {
				src = io.LimitReader(r, size+1) // one extra byte shows an oversized blob
			}
			n, err := io.Copy(io.MultiWriter(w, hasher), src)
			switch {
			case err != nil:
				werr = err // the caller knows where r came from and categorises
			case hex.EncodeToString(hasher.Sum(nil)) != h.Hex || (size >= 0 && n != size):
				werr = mismatch(h)
			}
			return werr
		})
	if werr != nil {
		return werr
	}
	return errdefs.Wrap(errdefs.ErrInternal, err, "store blob %s", h)
}

func mismatch(h v1.Hash) error {
	return errdefs.New(errdefs.ErrInvalidArgument, "blob %s does not match its digest", h)
}

func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	b, err := os.ReadFile(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.ErrNotFound, "blob %s is missing from the image store", h)
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "read blob %s", h)
	}
	return b, nil
}

// image loads a stored image from its manifest and config blobs.
func (s *Store) image(e *indexEntry, name string) (*Image, error) {
	if name == "" && len(e.Names) > 0 {
		name = e.Names[0]
	}
	raw, err := s.readBlob(e.Digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "stored manifest %s", e.Digest)
	}
	cfgRaw, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "stored config %s", m.Config.Digest)
	}
	layers, err := layerInfos(m, cfg)
	if err != nil {
		return nil, err
	}
	return &Image{Name: name, Digest: e.Digest, Config: cfg, Layers: layers}, nil
}

func layerInfos(m *v1.Manifest, cfg *v1.ConfigFile) ([]LayerInfo, error) {
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.New(errdefs.ErrInvalidArgument,
			"image config lists %d layer diff ids but the manifest has %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	out := make([]LayerInfo, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = LayerInfo{Digest: l.Digest, DiffID: cfg.RootFS.DiffIDs[i], Size: l.Size, MediaType: string(l.MediaType)}
	}
	return out, nil
}

// ---- queries ----

// Get finds a stored image by name (as given or normalised), by full or
// unique short digest, without network.
func (s *Store) Get(ref string) (*Image, error) {
	ix, err := s.load()
	if err != nil {
		return nil, err
	}
	e, name, err := ix.find(ref)
	if err != nil {
		return nil, err
	}
	if name == "" {
		// Found by the digest of a digest reference (NAME@sha256:...):
		// that reference is its name here, not a tag the image also has,
		// so a container made from it records the pin it was given.
		if src, err := parseRef(ref); err == nil && src.ref != nil {
			if _, ok := src.digest(); ok {
				name = src.name
			}
		}
	}
	return s.image(e, name)
}

// List returns every stored image, named ones first by name.
func (s *Store) List() ([]Listed, error) {
	ix, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(ix.Images))
	for _, e := range ix.Images {
		users, err := s.Users(e.Digest)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(s.path("rootfs", e.Digest.Hex))
		out = append(out, Listed{Names: slices.Clone(e.Names), Digest: e.Digest, Size: e.Size,
			Created: e.Created, Unpacked: err == nil && fi.IsDir(), Users: len(users)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (len(a.Names) == 0) != (len(b.Names) == 0) {
			return len(a.Names) > 0
		}
		if len(a.Names) > 0 && a.Names[0] != b.Names[0] {
			return a.Names[0] < b.Names[0]
		}
		return a.Digest.String() < b.Digest.String()
	})
	return out, nil
}

// ---- users ----

func checkContainerID(id string) error { return identifiers.Validate(id) }

// Use records that containerID uses the stored image digest.
func (s *Store) Use(digest v1.Hash, containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := s.load()
	if err != nil {
		return err
	}
	// Under the lock so Remove cannot delete the image between the check
	// and the record.
	if ix.byDigest(digest) == nil {
		return notInStore(digest.String())
	}
	dir := s.path("users", digest.Hex)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "record user of image %s", digest)
	}
	if err := os.WriteFile(filepath.Join(dir, containerID), nil, 0o600); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "record user of image %s", digest)
	}
	return nil
}

// Release forgets that containerID uses the image; releasing twice is fine.
func (s *Store) Release(digest v1.Hash, containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	dir := s.path("users", digest.Hex)
	if err := os.Remove(filepath.Join(dir, containerID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errdefs.Wrap(errdefs.ErrInternal, err, "release image %s", digest)
	}
	_ = os.Remove(dir) // fails while other users remain
	return nil
}

// Users lists the containers using the image, sorted.
func (s *Store) Users(digest v1.Hash) ([]string, error) {
	ents, err := os.ReadDir(s.path("users", digest.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list users of image %s", digest)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// ---- removal ----

// Remove untags a name, or with a digest removes every name of the image.
// An image left without names is deleted (rootfs, and blobs no other image
// shares) unless containers use it: then Remove fails with
// FailedPrecondition, or with force only untags it, leaving the files for
// Prune once the containers are gone.
func (s *Store) Remove(ref string, force bool) (removed []string, err error) {
	err = s.update(func(ix *index) error {
		e, name, err := ix.find(ref)
		if err != nil {
			return err
		}
		drop := e.Names
		if name != "" {
			drop = []string{name}
		}
		if len(drop) == len(e.Names) {
			users, err := s.Users(e.Digest)
			if err != nil {
				return err
			}
			if len(users) > 0 && !force {
				return &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
					Msg: fmt.Sprintf("image %s is in use by container(s) %s", ref, strings.Join(users, ", ")),
					Hint: "delete those containers first; or `proxcage rmi -f` (--force) only untags it: " +
						"its files stay for the containers, and `proxcage images prune` removes them once they are gone"}
			}
			if len(users) > 0 {
				removed = append(removed, drop...)
				e.Names = nil
				return nil
			}
			removed = append(removed, drop...)
			removed = append(removed, e.Digest.String())
			return s.deleteImage(ix, e.Digest)
		}
		removed = append(removed, drop...)
		e.Names = slices.DeleteFunc(e.Names, func(n string) bool { return slices.Contains(drop, n) })
		return nil
	})
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Category(err), err, "remove image %s", ref)
	}
	return removed, nil
}

// deleteImage drops image d from ix (under the store lock) and deletes its
// rootfs, user records and the blobs no remaining image references. When a
// pull or unpack is running the blobs stay for a later Prune.
func (s *Store) deleteImage(ix *index, d v1.Hash) error {
	var blobs []v1.Hash
	ix.Images = slices.DeleteFunc(ix.Images, func(e indexEntry) bool {
		if e.Digest == d {
			blobs = append([]v1.Hash{e.Digest}, e.Blobs...)
			return true
		}
		return false
	})
	if err := os.RemoveAll(s.path("rootfs", d.Hex)); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "delete rootfs of %s", d)
	}
	_ = os.Remove(s.path("rootfs", d.Hex+".lock"))
	_ = os.RemoveAll(s.path("users", d.Hex))
	unlock, ok, err := s.tryExclusiveGC()
	if err != nil {
		return err
	}
	if !ok {
		s.log.Info("a pull or unpack is running; the image's blobs stay until the next prune", "digest", d.String())
		return nil
	}
	defer unlock()
	keep := ix.referenced()
	for _, b := range blobs {
		if !keep[b] {
			if err := os.Remove(s.blobPath(b)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return errdefs.Wrap(errdefs.ErrInternal, err, "delete blob %s", b)
			}
		}
	}
	return nil
}

func (ix *index) referenced() map[v1.Hash]bool {
	keep := map[v1.Hash]bool{}
	for _, e := range ix.Images {
		keep[e.Digest] = true
		for _, b := range e.Blobs {
			keep[b] = true
		}
	}
	return keep
}

// Prune deletes unnamed images no container uses, then, unless a pull or
// unpack is running, blobs and rootfs no image references and everything in
// tmp/ (left by crashed processes). It returns what it deleted, as
// "image DIGEST", "blob DIGEST", "rootfs HEX", "tmp NAME".
func (s *Store) Prune() ([]string, error) {
	var removed []string
	err := s.update(func(ix *index) error {
		for _, e := range slices.Clone(ix.Images) {
			if len(e.Names) > 0 {
				continue
			}
			users, err := s.Users(e.Digest)
			if err != nil {
				return err
			}
			if len(users) > 0 {
				continue
			}
			if err := s.deleteImage(ix, e.Digest); err != nil {
				return err
			}
			removed = append(removed, "image "+e.Digest.String())
		}
		unlock, ok, err := s.tryExclusiveGC()
		if err != nil {
			return err
		}
		if !ok {
			s.log.Info("a pull or unpack is running; unreferenced blobs and tmp/ are left for the next prune")
			return nil
		}
		defer unlock()
		more, err := s.sweep(ix)
		removed = append(removed, more...)
		return err
	})
	if err != nil {
		return removed, errdefs.Wrap(errdefs.Category(err), err, "prune image store")
	}
	return removed, nil
}

// sweep deletes what no image in ix references. The caller holds the store
// lock and the exclusive gc lock, so nothing is being written.
func (s *Store) sweep(ix *index) ([]string, error) {
	var removed []string
	keep := ix.referenced()
	ents, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list blobs")
	}
	for _, ent := range ents {
		h := v1.Hash{Algorithm: "sha256", Hex: ent.Name()}
		if keep[h] {
			continue
		}
		if err := os.RemoveAll(s.blobPath(h)); err != nil {
			return removed, errdefs.Wrap(errdefs.ErrInternal, err, "delete blob %s", h)
		}
		removed = append(removed, "blob "+h.String())
	}
	ents, err = os.ReadDir(s.path("rootfs"))
	if err != nil {
		return removed, errdefs.Wrap(errdefs.ErrInternal, err, "list rootfs")
	}
	for _, ent := range ents {
		hx := strings.TrimSuffix(ent.Name(), ".lock")
		if ix.byDigest(v1.Hash{Algorithm: "sha256", Hex: hx}) != nil {
			continue
		}
		if err := os.RemoveAll(s.path("rootfs", ent.Name())); err != nil {
			return removed, errdefs.Wrap(errdefs.ErrInternal, err, "delete rootfs %s", ent.Name())
		}
		if ent.IsDir() {
			removed = append(removed, "rootfs "+ent.Name())
		}
	}
	ents, err = os.ReadDir(s.path("users"))
	if err != nil {
		return removed, errdefs.Wrap(errdefs.ErrInternal, err, "list users")
	}
	for _, ent := range ents {
		if ix.byDigest(v1.Hash{Algorithm: "sha256", Hex: ent.Name()}) == nil {
			_ = os.RemoveAll(s.path("users", ent.Name()))
		}
	}
	ents, err = os.ReadDir(s.path("tmp"))
	if err != nil {
		return removed, errdefs.Wrap(errdefs.ErrInternal, err, "list tmp")
	}
	for _, ent := range ents {
		if err := removeAllForce(s.path("tmp", ent.Name())); err != nil {
			return removed, errdefs.Wrap(errdefs.ErrInternal, err, "delete tmp/%s", ent.Name())
		}
		removed = append(removed, "tmp "+ent.Name())
	}
	return removed, nil
}

// removeAllForce is os.RemoveAll that first makes directories writable:
// a half-unpacked rootfs may hold read-only directories, which stop an
// unprivileged RemoveAll.
func removeAllForce(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}
