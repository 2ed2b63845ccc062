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
	"strings"

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
