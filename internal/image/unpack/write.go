package unpack

// Writing each kind of entry (file, directory, symlink, hardlink, device)
// and its metadata (owner, mode, xattrs, times).

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unsafe"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

func (a *applier) file(tr *tar.Reader, hdr *tar.Header, host string) error {
	if a.lim.maxFileSize > 0 && hdr.Size > a.lim.maxFileSize {
		return a.refuse(hdr.Name, "file larger than the configured limit")
	}
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open(host, flags, 0o600)
	if err == unix.EEXIST {
		if err := a.remove(host); err != nil {
			return err
		}
		fd, err = unix.Open(host, flags, 0o600)
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: host, Err: err}
	}
	err = a.fill(fd, tr, hdr)
	if err == nil {
		err = a.ownMode(hdr, fd, host)
	}
	if err == nil {
		err = a.xattrs(hdr, fd, host)
	}
	if err == nil {
		ts := times(hdr)
		err = futimens(fd, &ts)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: host, Err: cerr}
	}
	return err
}

// fill copies the entry's data into fd through the shared buffer (io.Copy
// would bypass it via os.File.ReadFrom) and turns large all-zero chunks
// into holes.
func (a *applier) fill(fd int, tr *tar.Reader, hdr *tar.Header) error {
	// The shared buffer starts small (layers of a few small files are
	// common and a 1 MiB clear costs more than unpacking them) and grows
	// once to copyBufSize on the first large file.
	if len(a.buf) < copyBufSize && hdr.Size > int64(len(a.buf)) {
		if hdr.Size > smallBufSize {
			a.buf = make([]byte, copyBufSize)
		} else if a.buf == nil {
			a.buf = make([]byte, smallBufSize)
		}
	}
	var off int64
	holes := false
	for {
		n, rerr := tr.Read(a.buf)
		if n > 0 {
			chunk := a.buf[:n]
			if n >= holeMin && isZero(chunk) {
				if _, err := unix.Seek(fd, int64(n), io.SeekCurrent); err != nil {
					return &os.PathError{Op: "seek", Path: hdr.Name, Err: err}
				}
				holes = true
			} else if err := writeAll(fd, chunk); err != nil {
				return &os.PathError{Op: "write", Path: hdr.Name, Err: err}
			} else {
				holes = false
			}
			off += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	a.res.Bytes += off
	if holes {
		// A trailing hole only moved the offset; set the size.
		if err := unix.Ftruncate(fd, off); err != nil {
			return &os.PathError{Op: "truncate", Path: hdr.Name, Err: err}
		}
	}
	return nil
}

// isZero reports whether b is all zero bytes: b[0] == 0 and every byte
// equals its predecessor, which memequal checks at memory speed.
func isZero(b []byte) bool {
	return len(b) > 0 && b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1])
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (a *applier) mkdir(hdr *tar.Header, host string) error {
	err := unix.Mkdir(host, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Lstat(host, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: host, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return a.dirMeta(hdr, host) // directory over directory: keep it
		}
		if err := a.remove(host); err != nil {
			return err
		}
		err = unix.Mkdir(host, 0o700)
	}
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: host, Err: err}
	}
	return a.dirMeta(hdr, host)
}

// dirMeta applies ownership, mode and xattrs now and queues the mtime. host
// is known to be a real directory.
func (a *applier) dirMeta(hdr *tar.Header, host string) error {
	if err := a.chown(hdr, host); err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	now := mode
	deferMode := false
	if a.euid != 0 && mode&0o700 != 0o700 {
		// Unprivileged, we must still be able to create children; the
		// exact mode is set when the layer is done.
		now |= 0o700
		deferMode = true
	}
	if err := unix.Chmod(host, now); err != nil {
		return &os.PathError{Op: "chmod", Path: host, Err: err}
	}
	if err := a.xattrs(hdr, -1, host); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	m := dirMeta{host: host, dev: st.Dev, ino: st.Ino, gen: a.gen, ts: times(hdr), mode: mode, setMode: deferMode}
	if i, ok := a.deferIdx[host]; ok {
		a.deferred[i] = m // the last entry for a directory wins
	} else {
		a.deferIdx[host] = len(a.deferred)
		a.deferred = append(a.deferred, m)
	}
	return nil
}

// finishDirs sets queued directory metadata, children first. A directory
// whose path may have been re-routed since (a dir or symlink was removed
// later in the layer) is re-resolved inside root and must still be the same
// inode, so nothing outside root or belonging to another entry is touched.
func (a *applier) finishDirs() error {
	for i := len(a.deferred) - 1; i >= 0; i-- {
		d := &a.deferred[i]
		host := d.host
		if d.gen != a.gen {
			rel := strings.TrimPrefix(strings.TrimPrefix(host, a.root), "/")
			h, err := securejoin.SecureJoin(a.root, rel)
			if err != nil {
				continue
			}
			host = h
		}
		var st unix.Stat_t
		if err := unix.Lstat(host, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != d.dev || st.Ino != d.ino {
			continue // replaced or removed later in this layer
		}
		if d.setMode {
			if err := unix.Chmod(host, d.mode); err != nil {
				return fmt.Errorf("%s: chmod %s: %w", a.label(), host, err)
			}
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, d.ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: utimes %s: %w", a.label(), host, err)
		}
	}
	return nil
}

func (a *applier) symlink(hdr *tar.Header, host string) error {
	// The target is data: stored verbatim, resolved (rooted) only when a
	// later entry goes through it.
	err := unix.Symlink(hdr.Linkname, host)
	if err == unix.EEXIST {
		if err := a.remove(host); err != nil {
			return err
		}
		err = unix.Symlink(hdr.Linkname, host)
	}
	if err != nil {
		return &os.PathError{Op: "symlink", Path: host, Err: err}
	}
	if err := a.chown(hdr, host); err != nil {
		return err
	}
	if err := a.xattrs(hdr, -1, host); err != nil {
		return err
	}
	return utimes(hdr, host)
}

func (a *applier) hardlink(hdr *tar.Header, host string) error {
	rel, why := cleanName(hdr.Linkname)
	if why != "" {
		return a.refuse(hdr.Name, "hardlink target "+why)
	}
	if rel == "" {
		return a.refuse(hdr.Name, "hardlink target is a directory")
	}
	tdir, tbase := splitRel(rel)
	parent, ok, err := a.resolveExisting(tdir)
	if err != nil {
		return err
	}
	if !ok {
		return a.refuse(hdr.Name, fmt.Sprintf("hardlink target %q does not exist", hdr.Linkname))
	}
	target := a.join(parent, tbase)
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return a.refuse(hdr.Name, fmt.Sprintf("hardlink target %q does not exist", hdr.Linkname))
		}
		return &os.PathError{Op: "lstat", Path: target, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return a.refuse(hdr.Name, fmt.Sprintf("hardlink target %q is a directory", hdr.Linkname))
	}
	if target == host {
		return nil // a link to itself is already there
	}
	// linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
	err = unix.Link(target, host)
	if err == unix.EEXIST {
		if err := a.remove(host); err != nil {
			return err
		}
		err = unix.Link(target, host)
	}
	if err != nil {
		return &os.PathError{Op: "link", Path: host, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	// The link entry's owner, mode, xattrs and times apply to the shared
	// inode, as containerd's and containers/storage's unpackers do (so the
	// same image gives the same tree as with podman or containerd).
	if err := a.ownMode(hdr, -1, host); err != nil {
		return err
	}
	if err := a.xattrs(hdr, -1, host); err != nil {
		return err
	}
	return utimes(hdr, host)
}

func (a *applier) mknod(hdr *tar.Header, host string) error {
	var kind uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	default:
		kind = unix.S_IFIFO
	}
	if err := a.remove(host); err != nil {
		return err
	}
	if kind != unix.S_IFIFO && a.euid != 0 {
		a.skip("device", fmt.Sprintf("device %q (%d:%d) not created: not root", hdr.Name, hdr.Devmajor, hdr.Devminor))
		return nil
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := unix.Mknod(host, kind|0o600, dev); err != nil {
		if err == unix.EPERM && kind != unix.S_IFIFO {
			a.skip("device", fmt.Sprintf("device %q (%d:%d) not created: %v", hdr.Name, hdr.Devmajor, hdr.Devminor, err))
			return nil
		}
		return &os.PathError{Op: "mknod", Path: host, Err: err}
	}
	if err := a.ownMode(hdr, -1, host); err != nil {
		return err
	}
	if err := a.xattrs(hdr, -1, host); err != nil {
		return err
	}
	return utimes(hdr, host)
}

// ownMode chowns then chmods (chown clears setuid/setgid, so the order
// matters); fd >= 0 means use the open file.
func (a *applier) ownMode(hdr *tar.Header, fd int, host string) error {
	if err := a.chownFd(hdr, fd, host); err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	var err error
	if fd >= 0 {
		err = unix.Fchmod(fd, mode)
	} else {
		// Only called for nodes we just created, never for symlinks.
		err = unix.Chmod(host, mode)
	}
	if err != nil {
		return &os.PathError{Op: "chmod", Path: host, Err: err}
	}
	return nil
}

func (a *applier) chown(hdr *tar.Header, host string) error {
	return a.chownFd(hdr, -1, host)
}

func (a *applier) chownFd(hdr *tar.Header, fd int, host string) error {
	if a.euid != 0 {
		if hdr.Uid != a.euid || hdr.Gid != a.egid {
			a.skipOwner(hdr, "not root")
		}
		return nil
	}
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
	} else {
		err = unix.Lchown(host, hdr.Uid, hdr.Gid)
	}
	switch err {
	case nil:
		return nil
	case unix.EPERM, unix.EINVAL:
		// Root in a user namespace without the ids mapped.
		a.skipOwner(hdr, err.Error())
		return nil
	}
	return &os.PathError{Op: "chown", Path: host, Err: err}
}

const xattrPrefix = "SCHILY.xattr."

func (a *applier) xattrs(hdr *tar.Header, fd int, host string) error {
	for k, v := range hdr.PAXRecords {
		if !strings.HasPrefix(k, xattrPrefix) {
			continue
		}
		key := k[len(xattrPrefix):]
		if key == "" || strings.IndexByte(key, 0) >= 0 {
			return a.refuse(hdr.Name, fmt.Sprintf("invalid xattr name %q", key))
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, key, []byte(v), 0)
		} else {
			err = unix.Lsetxattr(host, key, []byte(v), 0)
		}
		switch err {
		case nil:
		case unix.ENOTSUP, unix.EPERM, unix.EACCES:
			a.skip("xattr", fmt.Sprintf("xattr %s on %q not set: %v", key, hdr.Name, err))
		default:
			return &os.PathError{Op: "setxattr " + key, Path: host, Err: err}
		}
	}
	return nil
}

func times(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(at), timespec(hdr.ModTime)}
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func utimes(hdr *tar.Header, host string) error {
	ts := times(hdr)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: host, Err: err}
	}
	return nil
}

func (a *applier) skip(kind, line string) {
	if a.skipKind == nil {
		a.skipKind = make(map[string]int)
	}
	a.skipKind[kind]++
	if n := a.skipKind[kind]; n <= maxSkipLines {
		a.res.Skipped = append(a.res.Skipped, line)
	}
}

func (a *applier) skipOwner(hdr *tar.Header, why string) {
	if a.own == nil {
		a.own = make(map[[2]int]*ownSkip)
	}
	k := [2]int{hdr.Uid, hdr.Gid}
	if s, ok := a.own[k]; ok {
		s.n++
		return
	}
	a.own[k] = &ownSkip{n: 1, example: hdr.Name, why: why}
}

// finishSkips folds the per-entry tallies into Skipped: one line per
// uid:gid for ownership, a count for lines beyond maxSkipLines.
func (a *applier) finishSkips() {
	for _, kind := range []string{"device", "xattr"} {
		if n := a.skipKind[kind]; n > maxSkipLines {
			a.res.Skipped = append(a.res.Skipped, fmt.Sprintf("... and %d more %s entries not applied", n-maxSkipLines, kind))
		}
	}
	keys := make([][2]int, 0, len(a.own))
	for k := range a.own {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		s := a.own[k]
		a.res.Skipped = append(a.res.Skipped, fmt.Sprintf("ownership %d:%d not applied to %d entries (e.g. %q): %s", k[0], k[1], s.n, s.example, s.why))
	}
}

// futimens sets times on an open file: utimensat(fd, NULL, ...), which
// every kernel supports (an empty path needs AT_EMPTY_PATH, Linux 5.8+).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return &os.PathError{Op: "futimens", Path: "", Err: e}
	}
	return nil
}
