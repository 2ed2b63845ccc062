// Package volume keeps the data volumes of image containers on the
// backends that run on this host (native, lxc): one directory per volume
// under DATA/volumes/NAME/, laid out as podman's local driver does
// (NAME/_data is what is mounted), so the data outlives the container
// and an upgrade or a new container can mount it again. A volume
// records its users (DATA/volumes/NAME/users/ID, one empty file each:
// creating or removing one is atomic without a lock file) and whether
// it was made for an image's VOLUME without a name (anonymous).
//
// On pve a volume is a PVE mount point volume of the CT instead
// (internal/backend/pve); this package only parses and names them.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// Annotation lists a container's volumes (JSON of []Mount) in the spec
// of its bundle: the runtime reads it back at delete and upgrade, and
// the pve translator maps it to mount point volumes.
const Annotation = "org.proxcage.volumes"

// Mount is one volume of a container.
type Mount struct {
	Name      string `json:"name"`
	Path      string `json:"path"` // absolute, clean, inside the container
	ReadOnly  bool   `json:"ro,omitempty"`
	Anonymous bool   `json:"anonymous,omitempty"` // from the image's VOLUME, named by proxcage
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// CheckName reports whether name can name a volume (podman's rule).
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return errdefs.New(errdefs.ErrInvalidArgument, "volume name %q: use letters, digits, '_', '.', '-' (first a letter or digit, at most 128)", name)
	}
	return nil
}

// Parse reads `-v NAME:/path[:ro|:rw]`. A host path as the source (a bind
// mount in podman's syntax) is not a volume: it is refused here with the
// flag that binds one in a bundle.
func Parse(v string) (Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, errdefs.New(errdefs.ErrInvalidArgument, "--volume %q: want NAME:/PATH[:ro]", v)
	}
	m := Mount{Name: parts[0], Path: parts[1]}
	if strings.HasPrefix(m.Name, "/") || strings.HasPrefix(m.Name, ".") {
		return Mount{}, errdefs.New(errdefs.ErrInvalidArgument, "--volume %q: a host path is not a volume; name one (NAME:/PATH), or bind the directory in a bundle's config.json", v)
	}
	if err := CheckName(m.Name); err != nil {
		return Mount{}, errdefs.Context(err, "--volume "+v, "")
	}
	p, err := cleanPath(m.Path)
	if err != nil {
		return Mount{}, errdefs.New(errdefs.ErrInvalidArgument, "--volume %q: %v", v, err)
	}
	m.Path = p
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, errdefs.New(errdefs.ErrInvalidArgument, "--volume %q: option %q: want ro or rw", v, parts[2])
		}
	}
	return m, nil
}

func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", errors.New("a volume cannot be mounted on /")
	}
	return c, nil
}

// ForImage is the volume list of a container: the user's (-v), then one
// anonymous volume for each of the image's VOLUME paths no user volume
// covers, named ID-N (N its index among the image's sorted paths, or the
// next free one, so a recreated container of the same id and image
// names them alike).
func ForImage(id string, user []Mount, imageVolumes map[string]struct{}) ([]Mount, error) {
	out := make([]Mount, 0, len(user)+len(imageVolumes))
	seen, names := map[string]bool{}, map[string]bool{}
	for _, m := range user {
		if seen[m.Path] {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "two volumes at %s", m.Path)
		}
		if names[m.Name] {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "volume %s mounted twice", m.Name)
		}
		seen[m.Path], names[m.Name] = true, true
		out = append(out, m)
	}
	paths := make([]string, 0, len(imageVolumes))
	for p := range imageVolumes {
		c, err := cleanPath(p)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "the image's VOLUME %q: %v", p, err)
		}
		paths = append(paths, c)
	}
	sort.Strings(paths)
	for i, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		n := i
		for names[fmt.Sprintf("%s-%d", id, n)] {
			n++ // taken by a volume an upgrade carries over
		}
		name := fmt.Sprintf("%s-%d", id, n)
		names[name] = true
		out = append(out, Mount{Name: name, Path: p, Anonymous: true})
	}
	return out, nil
}

// Encode and Decode are the annotation's value.
func Encode(ms []Mount) string {
	b, _ := json.Marshal(ms)
	return string(b)
}

func Decode(annotations map[string]string) ([]Mount, error) {
	v, ok := annotations[Annotation]
	if !ok || v == "" {
		return nil, nil
	}
	var ms []Mount
	if err := json.Unmarshal([]byte(v), &ms); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "annotation %s: %v", Annotation, err)
	}
	for i, m := range ms {
		if err := CheckName(m.Name); err != nil {
			return nil, errdefs.Context(err, "annotation "+Annotation, "")
		}
		p, err := cleanPath(m.Path)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "annotation %s: volume %s: %v", Annotation, m.Name, err)
		}
		ms[i].Path = p
	}
	return ms, nil
}

// Store is DATA/volumes.
type Store struct{ Dir string }

// Info describes a stored volume.
type Info struct {
	Name      string   `json:"name"`
	Dir       string   `json:"dir"` // what is mounted
	Users     []string `json:"users"`
	Anonymous bool     `json:"anonymous,omitempty"`
}

func (s Store) root(name string) string { return filepath.Join(s.Dir, name) }

// DataDir is the directory a volume's container mounts.
func (s Store) DataDir(name string) string { return filepath.Join(s.root(name), "_data") }

// Attach makes the volume if it is missing (seeded, Docker's copy-up,
// with the image's files at the mount path: seedRoot is the image
// rootfs, resolved inside it so that a hostile image's symlinks cannot
// name host files) and records user. It returns the directory to mount.
func (s Store) Attach(m Mount, user, seedRoot string) (string, error) {
	if err := CheckName(m.Name); err != nil {
		return "", err
	}
	root := s.root(m.Name)
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := s.create(m, seedRoot); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
	}
	if err := os.MkdirAll(filepath.Join(root, "users"), 0o700); err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
	}
	if err := os.WriteFile(filepath.Join(root, "users", user), nil, 0o600); err != nil {
		return "", errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
	}
	return s.DataDir(m.Name), nil
}

// create builds the volume in a temporary directory and renames it into
// place, so a crash leaves no half-seeded volume under its name.
func (s Store) create(m Mount, seedRoot string) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
	}
	tmp, err := os.MkdirTemp(s.Dir, ".new-"+m.Name+"-")
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	data := filepath.Join(tmp, "_data")
	seeded := false
	if seedRoot != "" {
		src, err := securejoin.SecureJoin(seedRoot, m.Path)
		if err != nil {
			return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "volume %s: the image's %s", m.Name, m.Path)
		}
		if fi, err := os.Lstat(src); err == nil && fi.IsDir() {
			if err := copyTree(src, data); err != nil {
				return errdefs.Wrap(errdefs.ErrInternal, err, "volume %s: copy the image's %s", m.Name, m.Path)
			}
			seeded = true
		}
	}
	if !seeded {
		if err := os.Mkdir(data, 0o755); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
		}
	}
	if m.Anonymous {
		if err := os.WriteFile(filepath.Join(tmp, "anonymous"), nil, 0o600); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
		}
	}
	if err := os.Rename(tmp, s.root(m.Name)); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil // made meanwhile by another container: use that one
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", m.Name)
	}
	return nil
}

// Detach drops user from the volume. With remove, a volume that has no
// user left is deleted; it reports whether it was.
func (s Store) Detach(name, user string, remove bool) (bool, error) {
	root := s.root(name)
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	err := os.Remove(filepath.Join(root, "users", user))
	if errors.Is(err, fs.ErrNotExist) {
		// Not a user of this volume (a container of another backend
		// whose volume has the same name): it removes nothing.
		return false, nil
	}
	if err != nil {
		return false, errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", name)
	}
	if !remove {
		return false, nil
	}
	users, err := s.users(name)
	if err != nil || len(users) > 0 {
		return false, err
	}
	return true, s.removeAll(name)
}

// Remove deletes a volume no container uses.
func (s Store) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if _, err := os.Stat(s.root(name)); errors.Is(err, fs.ErrNotExist) {
		return errdefs.New(errdefs.ErrNotFound, "volume %q not found", name)
	}
	users, err := s.users(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.New(errdefs.ErrFailedPrecondition, "volume %q is used by %s", name, strings.Join(users, ", "))
	}
	return s.removeAll(name)
}

// removeAll renames first: a half-removed volume is never seen under its
// name.
func (s Store) removeAll(name string) error {
	gone := filepath.Join(s.Dir, ".gone-"+name)
	_ = os.RemoveAll(gone)
	if err := os.Rename(s.root(name), gone); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "remove volume %s", name)
	}
	if err := os.RemoveAll(gone); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "remove volume %s", name)
	}
	return nil
}

func (s Store) users(name string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root(name), "users"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "volume %s", name)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// List returns the stored volumes, by name.
func (s Store) List() ([]Info, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "volumes")
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		users, err := s.users(e.Name())
		if err != nil {
			return nil, err
		}
		_, aerr := os.Stat(filepath.Join(s.root(e.Name()), "anonymous"))
		out = append(out, Info{Name: e.Name(), Dir: s.DataDir(e.Name()), Users: users, Anonymous: aerr == nil})
	}
	return out, nil
}

// copyTree copies src to dst keeping owners, modes, times and symlinks
// (cp -a without hard links and xattrs). Hand-written: no kept library
// copies a tree with owners; src is inside an unpacked image, and the
// walk never follows a symlink.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, fi.Mode().Perm()); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := atomicfile.CopyNew(p, to, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil // devices, fifos, sockets: not data
		}
		if st != nil {
			if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink == 0 {
				// chown clears setuid bits: set the mode again.
				if err := os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
					return err
				}
			}
			ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
			_ = unix.UtimesNanoAt(unix.AT_FDCWD, to, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
}
