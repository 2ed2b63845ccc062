// Package unpack applies OCI image layer changesets (uncompressed tar
// streams) onto a root filesystem directory without ever touching anything
// outside that directory.
//
// Entry parents are resolved inside root with filepath-securejoin semantics
// (symlinks are evaluated as if root were "/"), the final component of an
// entry is never followed, and names that lexically leave root are refused.
// The unpacker assumes it is the only writer of root while a layer is applied
// (the caller unpacks into a private temporary directory); like containerd
// and umoci it does not defend against other processes racing it inside root.
package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Options configure ApplyLayer.
type Options struct {
	// Layer names the layer in errors, e.g. `layer 2/3 (sha256:ab12cd...)`.
	Layer string
}

// Result counts what a layer did.
type Result struct {
	Entries int
	Bytes   int64
	// Skipped lists what could not be applied without privileges (ownership,
	// device nodes, trusted.*/security.* xattrs when not root or unsupported),
	// one short line each; the caller logs them.
	Skipped []string
}

// Error is a refused entry.
type Error struct{ Layer, Entry, Reason string }

func (e *Error) Error() string {
	if e.Layer == "" {
		return fmt.Sprintf("entry %q: %s", e.Entry, e.Reason)
	}
	return fmt.Sprintf("%s: entry %q: %s", e.Layer, e.Entry, e.Reason)
}

const (
	copyBufSize  = 1 << 20
	smallBufSize = 64 << 10
	// holeMin is the smallest all-zero read chunk turned into a hole instead
	// of a write; smaller runs are not worth an lseek.
	holeMin = 64 << 10
	// maxSkipLines bounds per-kind Skipped lines so a layer full of, say,
	// xattrs on an fs without xattr support cannot produce an unbounded list.
	maxSkipLines = 50
	whPrefix     = ".wh."
	whOpaque     = ".wh..wh..opq"
	whMeta       = ".wh..wh."
)

// ApplyLayer applies one UNCOMPRESSED layer tar stream (OCI image-spec layer
// changeset) onto the directory root, on top of what earlier calls wrote.
func ApplyLayer(root string, r io.Reader, opts Options) (Result, error) {
	return applyLayer(root, r, opts, limits{})
}

// limits exists for the fuzz harness: a sparse entry can claim a petabyte of
// holes that cost no input bytes, which would stall fuzzing.
type limits struct {
	maxFileSize int64 // 0: unlimited
}

func applyLayer(root string, r io.Reader, opts Options, lim limits) (Result, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Result{}, err
	}
	if fi, err := os.Stat(abs); err != nil {
		return Result{}, err
	} else if !fi.IsDir() {
		return Result{}, fmt.Errorf("unpack root %s: not a directory", abs)
	}
	a := &applier{
		root:      abs,
		layer:     opts.Layer,
		lim:       lim,
		euid:      os.Geteuid(),
		egid:      os.Getegid(),
		dirs:      make(map[string]string),
		created:   make(map[string]struct{}),
		ancestors: make(map[string]struct{}),
		deferIdx:  make(map[string]int),
	}
	err = a.run(r)
	a.finishSkips()
	return a.res, err
}

type applier struct {
	root  string
	layer string
	lim   limits
	buf   []byte
	euid  int
	egid  int
	res   Result

	// dirs caches entry-parent names (cleaned, root-relative, as written in
	// the tar) to resolved host directories. A cached resolution went only
	// through existing directories and symlinks, so it stays valid until one
	// of those is removed: the cache is cleared (and gen bumped) whenever a
	// directory or symlink is removed. Creating something where nothing was
	// cannot change a cached resolution.
	dirs map[string]string
	gen  uint64

	// created holds host paths this layer wrote, ancestors their parent
	// directories: whiteouts only hide what lower layers put there.
	created   map[string]struct{}
	ancestors map[string]struct{}

	// Directory mtimes (and, when unprivileged, restrictive modes) are set
	// after the layer so that creating children does not undo them.
	deferred []dirMeta
	deferIdx map[string]int

	own      map[[2]int]*ownSkip
	skipKind map[string]int
}

type dirMeta struct {
	host     string
	dev, ino uint64
	gen      uint64
	ts       [2]unix.Timespec
	mode     uint32
	setMode  bool
}

type ownSkip struct {
	n       int
	example string
	why     string
}

func (a *applier) run(r io.Reader) error {
	switch r.(type) {
	case *bufio.Reader, *bytes.Reader, *bytes.Buffer, *strings.Reader:
	default:
		// Headers are read 512 bytes at a time; large file reads bypass
		// the buffer, so this only saves syscalls.
		r = bufio.NewReaderSize(r, 64<<10)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: reading tar: %w", a.label(), err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // pax global metadata, not a filesystem object
		}
		if err := a.entry(tr, hdr); err != nil {
			return err
		}
		a.res.Entries++
	}
	// Drain the end-of-archive padding so a caller hashing the stream sees
	// all of it.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("%s: reading tar: %w", a.label(), err)
	}
	return a.finishDirs()
}

func (a *applier) label() string {
	if a.layer == "" {
		return "layer"
	}
	return a.layer
}

func (a *applier) refuse(name, reason string) error {
	return &Error{Layer: a.layer, Entry: name, Reason: reason}
}

func (a *applier) fail(name string, err error) error {
	return fmt.Errorf("%s: entry %q: %w", a.label(), name, err)
}

// cleanName turns a tar name into a root-relative path without "." or ".."
// components ("" is root itself). Absolute names are contained (re-rooted);
// relative names that climb above root after cleaning are refused.
func cleanName(name string) (rel string, reason string) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", "name contains a NUL byte"
	}
	c := filepath.Clean(name) // allocation-free for already-clean names
	if c != "" && c[0] == '/' {
		return strings.TrimLeft(c, "/"), ""
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", "escapes the root filesystem"
	}
	if c == "." {
		return "", ""
	}
	return c, ""
}

func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func (a *applier) join(dir, base string) string {
	if dir == "/" {
		return "/" + base
	}
	return dir + "/" + base
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	name := hdr.Name
	rel, why := cleanName(name)
	if why != "" {
		return a.refuse(name, why)
	}
	parentRel, base := splitRel(rel)

	if strings.HasPrefix(base, whPrefix) {
		switch {
		case base == whOpaque:
			return a.opaque(name, parentRel)
		case strings.HasPrefix(base, whMeta):
			return nil // aufs bookkeeping (.wh..wh.plnk etc.), never content
		}
		target := base[len(whPrefix):]
		if target == "" || target == "." || target == ".." {
			return a.refuse(name, "invalid whiteout")
		}
		return a.whiteout(name, parentRel, target)
	}

	switch hdr.Typeflag {
	// (archive/tar's reader turns the old TypeRegA into TypeReg or TypeDir.)
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse,
		tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return a.refuse(name, fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
	}
	if strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return a.refuse(name, "link target contains a NUL byte")
	}

	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return a.refuse(name, "cannot replace the root directory")
		}
		if err := a.dirMeta(hdr, a.root); err != nil {
			return a.fail(name, err)
		}
		return nil
	}

	parent, err := a.resolveDir(parentRel)
	if err != nil {
		return a.fail(name, err)
	}
	host := a.join(parent, base)

	switch hdr.Typeflag {
	case tar.TypeDir:
		err = a.mkdir(hdr, host)
		if err == nil {
			// host is now a real directory, so it resolves exactly like
			// its parent plus base: later children skip SecureJoin.
			a.dirs[rel] = host
		}
	case tar.TypeSymlink:
		err = a.symlink(hdr, host)
	case tar.TypeLink:
		err = a.hardlink(hdr, host)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.mknod(hdr, host)
	default:
		err = a.file(tr, hdr, host)
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return a.fail(name, err)
	}
	a.markCreated(host)
	return nil
}

// resolveDir returns the host directory for an entry parent, creating
// missing directories inside root.
func (a *applier) resolveDir(rel string) (string, error) {
	if rel == "" {
		return a.root, nil
	}
	if h, ok := a.dirs[rel]; ok {
		return h, nil
	}
	h, err := securejoin.SecureJoin(a.root, rel)
	if err != nil {
		return "", err
	}
	if err := a.mkdirAll(h); err != nil {
		return "", err
	}
	a.dirs[rel] = h
	return h, nil
}

// resolveExisting is resolveDir without creating anything; ok is false when
// the directory does not exist (or is not a directory).
func (a *applier) resolveExisting(rel string) (string, bool, error) {
	if rel == "" {
		return a.root, true, nil
	}
	if h, ok := a.dirs[rel]; ok {
		return h, true, nil
	}
	h, err := securejoin.SecureJoin(a.root, rel)
	if err != nil {
		return "", false, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(h, &st); err != nil {
		if securejoin.IsNotExist(err) {
			return "", false, nil
		}
		return "", false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", false, nil
	}
	a.dirs[rel] = h
	return h, true, nil
}

// mkdirAll creates the missing tail of h, a SecureJoin result: its existing
// components are real directories, so only plain mkdirs are needed. A
// symlink or non-directory on the way is an error, never followed.
func (a *applier) mkdirAll(h string) error {
	var st unix.Stat_t
	err := unix.Lstat(h, &st)
	if err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &os.PathError{Op: "mkdir", Path: h, Err: unix.ENOTDIR}
		}
		return nil
	}
	if err != unix.ENOENT {
		return &os.PathError{Op: "lstat", Path: h, Err: err}
	}
	if len(h) <= len(a.root) {
		return &os.PathError{Op: "lstat", Path: h, Err: err} // root vanished
	}
	if err := a.mkdirAll(filepath.Dir(h)); err != nil {
		return err
	}
	if err := unix.Mkdir(h, 0o755); err != nil {
		return &os.PathError{Op: "mkdir", Path: h, Err: err}
	}
	// Implicit parents get exactly 0755 (the mode containerd asks for),
	// whatever the umask.
	if err := unix.Chmod(h, 0o755); err != nil {
		return &os.PathError{Op: "chmod", Path: h, Err: err}
	}
	return nil
}

func (a *applier) invalidate() {
	clear(a.dirs)
	a.gen++
}

// remove deletes whatever is at host (never following a final symlink).
func (a *applier) remove(host string) error {
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		a.invalidate()
		return os.RemoveAll(host)
	case unix.S_IFLNK:
		a.invalidate()
	}
	if err := unix.Unlink(host); err != nil {
		return &os.PathError{Op: "unlink", Path: host, Err: err}
	}
	return nil
}

func (a *applier) markCreated(host string) {
	a.created[host] = struct{}{}
	for d := filepath.Dir(host); len(d) > len(a.root); d = filepath.Dir(d) {
		if _, ok := a.ancestors[d]; ok {
			break
		}
		a.ancestors[d] = struct{}{}
	}
}

// removeLower removes what lower layers put at host, keeping anything this
// layer wrote there or below (OCI: whiteouts only apply to lower layers).
func (a *applier) removeLower(host string) error {
	_, c := a.created[host]
	_, anc := a.ancestors[host]
	if !c && !anc {
		return a.remove(host)
	}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	names, err := readDirNames(host)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := a.removeLower(a.join(host, n)); err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(host string) ([]string, error) {
	fd, err := unix.Open(host, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: host, Err: err}
	}
	f := os.NewFile(uintptr(fd), host)
	defer f.Close()
	return f.Readdirnames(-1)
}

func (a *applier) whiteout(name, parentRel, target string) error {
	parent, ok, err := a.resolveExisting(parentRel)
	if err != nil {
		return a.fail(name, err)
	}
	if !ok {
		return nil // nothing below to hide
	}
	if err := a.removeLower(a.join(parent, target)); err != nil {
		return a.fail(name, err)
	}
	return nil
}

func (a *applier) opaque(name, dirRel string) error {
	dir, ok, err := a.resolveExisting(dirRel)
	if err != nil {
		return a.fail(name, err)
	}
	if !ok {
		return nil
	}
	names, err := readDirNames(dir)
	if err != nil {
		return a.fail(name, err)
	}
	for _, n := range names {
		if err := a.removeLower(a.join(dir, n)); err != nil {
			return a.fail(name, err)
		}
	}
	return nil
}

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
