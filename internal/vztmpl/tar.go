package vztmpl

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// copyBufSize is the read size for file contents. Large reads keep the
// syscall count low on big files; the buffer is allocated once per stream.
const copyBufSize = 1 << 20

// xattrPrefix is the PAX record prefix GNU tar, bsdtar and star use for
// extended attributes, so `tar --xattrs` restores them.
const xattrPrefix = "SCHILY.xattr."

// inodeKey identifies a file for hardlink detection. Inode numbers are only
// unique per device, so both are needed.
type inodeKey struct{ dev, ino uint64 }

// writeTar writes the canonical tar stream of rootfs to w. Everything that
// decides the bytes of the stream is here; Digest and Write must never
// build their streams any other way, or a template's name would stop
// describing its content.
func writeTar(ctx context.Context, rootfs string, w io.Writer) error {
	if err := checkRootfs(rootfs); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	buf := make([]byte, copyBufSize)
	links := make(map[inodeKey]string)
	err := filepath.WalkDir(rootfs, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil {
			return err
		}
		return writeEntry(ctx, tw, path, rel, links, buf)
	})
	if err != nil {
		return err
	}
	// Close writes the two zero blocks that end a tar archive; without them
	// GNU tar warns about a truncated archive.
	return tw.Close()
}

// checkRootfs rejects a missing or non-directory rootfs up front, so the
// error names the path instead of surfacing as an odd walk failure.
func checkRootfs(rootfs string) error {
	fi, err := os.Stat(rootfs)
	if err != nil {
		return fmt.Errorf("vztmpl: rootfs %s: %w", rootfs, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("vztmpl: rootfs %s: not a directory", rootfs)
	}
	return nil
}

// writeEntry appends the entry for one path. rel is the path relative to
// the rootfs ("." for the rootfs itself).
func writeEntry(ctx context.Context, tw *tar.Writer, path, rel string, links map[inodeKey]string, buf []byte) error {
	var st unix.Stat_t
	stat := unix.Lstat
	if rel == "." {
		// The rootfs may itself be a symlink to a directory (checkRootfs
		// follows it); archive the directory, not the link.
		stat = unix.Stat
	}
	if err := stat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}

	name := "./"
	if rel != "." {
		name = "./" + filepath.ToSlash(rel)
	}
	hdr := &tar.Header{
		Name: name,
		// Only permission and setuid/setgid/sticky bits: tar encodes the file
		// type in Typeflag, not in Mode.
		Mode: int64(st.Mode & 0o7777),
		Uid:  int(st.Uid),
		Gid:  int(st.Gid),
		// Seconds only: sub-second mtimes would add a PAX record per entry
		// and differ between filesystems with different timestamp
		// granularity. Access and change times are left zero because
		// reading the rootfs (or any chown) changes them.
		ModTime: time.Unix(st.Mtim.Sec, 0),
		// Explicit PAX: xattrs, long names and large ids need it, and
		// pinning the format keeps archive/tar from choosing per entry.
		Format: tar.FormatPAX,
	}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if rel != "." {
			hdr.Name += "/"
		}
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		// A socket is only meaningful while its server runs; tar has no
		// entry type for it and GNU tar skips it too ("socket ignored").
		return nil
	default:
		return fmt.Errorf("vztmpl: %s: unsupported file type %#o", path, st.Mode&unix.S_IFMT)
	}

	// Hardlinks: the first path of an inode (in walk order, so the choice is
	// deterministic) carries the data, later ones point to it. Directories
	// cannot be hardlinked; their nlink counts subdirectories.
	if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
		key := inodeKey{dev: uint64(st.Dev), ino: st.Ino}
		if first, ok := links[key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
			hdr.Devmajor, hdr.Devminor = 0, 0
		} else {
			links[key] = hdr.Name
		}
	}

	// A hardlink shares its inode's xattrs, which its target entry carries.
	if hdr.Typeflag != tar.TypeLink {
		xattrs, err := readXattrs(path)
		if err != nil {
			return err
		}
		if len(xattrs) > 0 {
			// archive/tar sorts PAX records by key when writing, which is
			// what makes the map's iteration order irrelevant here.
			hdr.PAXRecords = make(map[string]string, len(xattrs))
			for _, x := range xattrs {
				hdr.PAXRecords[xattrPrefix+x.name] = x.value
			}
		}
	}

	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("vztmpl: %s: %w", path, err)
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		return copyFile(ctx, tw, path, &st, buf)
	}
	return nil
}

// copyFile copies exactly st.Size bytes of path into the archive and fails
// if the file is not the one that was lstat'ed or changed size meanwhile:
// a silently truncated or padded file would make the template lie.
func copyFile(ctx context.Context, tw *tar.Writer, path string, st *unix.Stat_t, buf []byte) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if fst.Dev != st.Dev || fst.Ino != st.Ino {
		return fmt.Errorf("vztmpl: %s: file replaced while archiving", path)
	}
	// ctxReader hides *os.File's WriterTo so io.CopyBuffer uses buf, and
	// lets a cancel interrupt a large file between reads.
	n, err := io.CopyBuffer(tw, io.LimitReader(ctxReader{ctx, f}, st.Size), buf)
	if err != nil {
		return fmt.Errorf("vztmpl: %s: %w", path, err)
	}
	if n != st.Size {
		return fmt.Errorf("vztmpl: %s: file shrank while archiving (%d of %d bytes)", path, n, st.Size)
	}
	if m, _ := f.Read(buf[:1]); m > 0 {
		return fmt.Errorf("vztmpl: %s: file grew while archiving", path)
	}
	return nil
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type xattr struct{ name, value string }

// readXattrs returns the extended attributes of path (not following
// symlinks), sorted by name. A filesystem without xattr support has none.
func readXattrs(path string) ([]xattr, error) {
	names, err := listXattrs(path)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	out := make([]xattr, 0, len(names))
	for _, n := range names {
		v, err := getXattr(path, n)
		if errors.Is(err, unix.ENODATA) {
			continue // removed between list and get
		}
		if err != nil {
			return nil, err
		}
		out = append(out, xattr{name: n, value: v})
	}
	return out, nil
}

func listXattrs(path string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(path, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // the list grew between the two calls
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		// The kernel lists in filesystem order, which is not stable across
		// filesystems or copies. The tar stream would not care (archive/tar
		// sorts PAX records) but callers comparing lists would.
		sort.Strings(names)
		return names, nil
	}
}

func getXattr(path, name string) (string, error) {
	for {
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return "", wrapXattrErr(path, name, err)
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // the value grew between the two calls
		}
		if err != nil {
			return "", wrapXattrErr(path, name, err)
		}
		return string(buf[:n]), nil
	}
}

func wrapXattrErr(path, name string, err error) error {
	return &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
}
