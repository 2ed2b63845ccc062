// Package store keeps proxcage's per-container records under --root.
//
// Layout:
//
//	ROOT/.lock           root lock: held while an id is reserved or listed
//	ROOT/ID/record.json  the Record, replaced atomically (write + rename)
//	ROOT/ID/lock         per-container flock, held by every mutating command
//	ROOT/ID/...          backend-private files (e.g. libcontainer state)
//
// The store is the only writer of ROOT. Readers never lock: a record is
// always either the old or the new file, never a torn one.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
)

const (
	recordName = "record.json"
	lockName   = "lock"
	rootLock   = ".lock"
)

// Status values the store itself knows. Everything after "created" is
// reported live by the backend.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
)

// Record is what proxcage remembers about one container.
type Record struct {
	ID          string            `json:"id"`
	Backend     string            `json:"backend"`
	RouteReason string            `json:"routeReason,omitempty"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Status      string            `json:"status"` // creating | created
	// Private is the backend's own data (a VMID, a node, ...), opaque here.
	Private json.RawMessage `json:"private,omitempty"`
}

// Store is a state root.
type Store struct {
	root string
}

// Open returns the store at root, creating the directory (0700) if needed.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "state root %s", root)
	}
	s := &Store{root: abs}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, s.osErr(err, "create state root %s", abs)
	}
	return s, nil
}

// osErr classifies a failed file system call under the root: a refused
// access says how to get a state root of one's own.
func (s *Store) osErr(err error, format string, args ...any) error {
	return errdefs.WrapOS(errdefs.ErrInternal, err, RootHint(s.root), format, args...)
}

// RootHint is what to do when the state root refuses access.
func RootHint(root string) string {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("proxcage runs as uid %d, and %s is not its own: run proxcage as root, or pass --root DIR (a directory that user can write)", uid, root)
	}
	return fmt.Sprintf("check the owner and mode of %s, or pass --root DIR", root)
}

// Root is the absolute state root.
func (s *Store) Root() string { return s.root }

// Dir is the container's state directory.
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

// Handle is a held per-container lock.
type Handle struct {
	s    *Store
	id   string
	lock *os.File
}

// ID is the locked container's id.
func (h *Handle) ID() string { return h.id }

// Dir is the locked container's state directory.
func (h *Handle) Dir() string { return h.s.Dir(h.id) }

// Reserve claims id: under the root lock it creates ROOT/ID exclusively,
// takes the container lock and writes rec with status "creating". Exactly one
// of any number of concurrent Reserve calls for the same id succeeds.
func (s *Store) Reserve(rec *Record) (*Handle, error) {
	if err := identifiers.Validate(rec.ID); err != nil {
		return nil, err
	}
	unlock, err := s.lockRoot()
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := s.Dir(rec.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &errdefs.Error{Cat: errdefs.ErrAlreadyExists,
				Msg:  fmt.Sprintf("container %q already exists", rec.ID),
				Hint: "pick another id, or remove the old one with `proxcage delete --force " + rec.ID + "`"}
		}
		return nil, s.osErr(err, "reserve %s", rec.ID)
	}
	h, err := s.lockDir(rec.ID)
	if err == nil {
		rec.Status = StatusCreating
		err = h.Save(rec)
	}
	if err != nil {
		if h != nil {
			h.Unlock()
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return h, nil
}

// Lock takes the container's lock for a mutating command. It fails with
// NotFound when the container does not exist (or was deleted while waiting).
func (s *Store) Lock(id string) (*Handle, error) {
	if err := identifiers.Validate(id); err != nil {
		return nil, err
	}
	h, err := s.lockDir(id)
	if err != nil {
		return nil, err
	}
	// A deleter may have removed the directory while we waited.
	if _, err := os.Stat(filepath.Join(h.Dir(), recordName)); err != nil {
		h.Unlock()
		return nil, notExist(id)
	}
	return h, nil
}

// TryLock is Lock without waiting; ok is false when another process holds it.
func (s *Store) TryLock(id string) (h *Handle, ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(id), lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, s.lockErr(id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, s.osErr(err, "lock %s", id)
	}
	return &Handle{s: s, id: id, lock: f}, true, nil
}

func (s *Store) lockDir(id string) (*Handle, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(id), lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, s.lockErr(id, err)
	}
	if err := flockRetry(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "lock %s", id)
	}
	return &Handle{s: s, id: id, lock: f}, nil
}

func (s *Store) lockErr(id string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return notExist(id)
	}
	return s.osErr(err, "lock %s", id)
}

func flockRetry(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func (s *Store) lockRoot() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, rootLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, s.osErr(err, "lock state root")
	}
	if err := flockRetry(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "lock state root")
	}
	return func() { f.Close() }, nil
}

// notExist uses runc's wording, which containerd and podman match on.
func notExist(id string) error {
	return &errdefs.Error{Cat: errdefs.ErrNotFound,
		Msg:  fmt.Sprintf("container %q does not exist", id),
		Hint: "`proxcage list` shows the containers under this --root"}
}

// Unlock releases the container lock.
func (h *Handle) Unlock() {
	if h.lock != nil {
		h.lock.Close()
		h.lock = nil
	}
}

// Save replaces the record atomically.
func (h *Handle) Save(rec *Record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "encode record")
	}
	// No fsync: the state root lives on tmpfs (/run) and does not outlive
	// a reboot, so durability would only cost time on every command.
	if err := atomicfile.Write(filepath.Join(h.Dir(), recordName), data, atomicfile.Options{Perm: 0o600}); err != nil {
		return h.s.osErr(err, "save state of %s", h.id)
	}
	return nil
}

// Remove deletes the container's directory and releases the lock.
func (h *Handle) Remove() error {
	defer h.Unlock()
	// Drop the record first: a concurrent Lock that wins the flock after us
	// sees no record and reports NotFound.
	if err := os.Remove(filepath.Join(h.Dir(), recordName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return h.s.osErr(err, "remove state of %s", h.id)
	}
	if err := os.RemoveAll(h.Dir()); err != nil {
		return h.s.osErr(err, "remove state dir of %s", h.id)
	}
	return nil
}

// Load reads a container's record without locking.
func (s *Store) Load(id string) (*Record, error) {
	if err := identifiers.Validate(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(id), recordName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, notExist(id)
		}
		return nil, s.osErr(err, "read state of %s", id)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "state of %s is corrupt (%s)", id, s.Dir(id))
	}
	return &rec, nil
}

// List returns all records, sorted by id. Directories without a record (a
// reservation in progress) are skipped.
func (s *Store) List() ([]*Record, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, s.osErr(err, "read state root %s", s.root)
	}
	var out []*Record
	for _, e := range ents {
		if !e.IsDir() || identifiers.Validate(e.Name()) != nil {
			continue
		}
		rec, err := s.Load(e.Name())
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
