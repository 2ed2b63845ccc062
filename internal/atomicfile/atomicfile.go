// Package atomicfile writes files whole: into a temp file, then renamed over
// the target, so a reader sees the old file or the new one, never a torn
// one. Temp names carry the writer's proc.Stamp, so what a killed writer
// left can be proven dead and removed at once (SweepDead). It imports only
// the proc kernel.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/proc"
)

// Options say how to write.
type Options struct {
	// Perm is the file's mode (0600 when zero).
	Perm os.FileMode
	// Durable fsyncs the file before the rename and the directory after
	// it: for content that must outlive a crash (templates, blobs, the
	// image index), not for state on tmpfs.
	Durable bool
	// NoReplace leaves a file that is already at the target alone (the
	// temp file is removed) and reports fs.ErrExist: concurrent writers
	// of the same content then keep one inode. Filesystems without
	// RENAME_NOREPLACE get a plain rename.
	NoReplace bool
	// TempDir holds the temp file (default: the target's directory); it
	// must be on the same filesystem.
	TempDir string
	// TempPrefix starts the temp file's name (default ".NAME.tmp-"); the
	// writer's stamp and a random part follow.
	TempPrefix string
}

// TempPrefix is the default temp-name prefix for target name.
func TempPrefix(name string) string { return "." + name + ".tmp-" }

// Write writes data to path.
func Write(path string, data []byte, o Options) error {
	return WriteFrom(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom writes what write produces to path. When write fails, nothing
// is renamed and the temp file is removed; its error comes back as it is.
func WriteFrom(path string, o Options, write func(io.Writer) error) (err error) {
	dir := o.TempDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	prefix := o.TempPrefix
	if prefix == "" {
		prefix = TempPrefix(filepath.Base(path))
	}
	f, err := os.CreateTemp(dir, prefix+proc.Stamp()+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = f.Close() // may be closed already; the error is moot then
			_ = os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	// CreateTemp makes 0600 files.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if o.Durable {
		// Before the rename: else a crash can leave the name pointing at
		// an empty or partial file.
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if o.NoReplace {
		err = renameNoReplace(tmp, path)
	} else {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return err
	}
	renamed = true
	if o.Durable {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// renameNoReplace renames oldpath to newpath unless newpath exists: then
// it reports fs.ErrExist (the caller's deferred cleanup removes oldpath).
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s: %w", newpath, fs.ErrExist)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return os.Rename(oldpath, newpath)
	default:
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err // some filesystems cannot sync a directory: no loss there
	}
	return nil
}

// Dead reports whether name, a temp file made with prefix, belongs to a
// writer proven gone by the stamp in its name. Names without a stamp (or
// without the prefix) never are: an age limit is all that tells those.
func Dead(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	dead, stamped := proc.Dead(rest)
	return stamped && dead
}

// SweepDead removes from dir the temp files made with prefixes whose
// writer is gone (see Dead), and returns their names. Best effort: a file
// it cannot remove stays for the next sweep.
func SweepDead(dir string, prefixes ...string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		n := e.Name()
		for _, p := range prefixes {
			if Dead(n, p) && os.Remove(filepath.Join(dir, n)) == nil {
				removed = append(removed, n)
				break
			}
		}
	}
	return removed
}

// WritePidFile writes pid to path whole (temp file + rename), as runc
// does, so an engine polling the file never reads a partial number.
func WritePidFile(path string, pid int) error {
	if err := Write(path, []byte(strconv.Itoa(pid)), Options{Perm: 0o644}); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// CopyNew copies src into dst, a file it creates (O_EXCL: never over
// another file) with perm. Not atomic: for a directory that is being built
// and that nobody reads yet (a keeper's, a new volume's).
func CopyNew(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
