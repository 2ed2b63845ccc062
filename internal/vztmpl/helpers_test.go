package vztmpl

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// baseTime is where buildRootfs's mtimes start. The half second checks that
// sub-second parts are dropped, not rounded or kept.
var baseTime = time.Date(2024, 5, 1, 12, 0, 0, 500_000_000, time.UTC)

// longName exceeds ustar's 100-byte name field, so it needs a PAX record.
var longName = "usr/lib/" + strings.Repeat("n", 150)

// rootfsInfo says which optional parts buildRootfs could create.
type rootfsInfo struct {
	root   bool // owners and device nodes (needs root)
	xattrs bool // user.* xattrs (needs filesystem support)
}

// buildRootfs creates a small but complete rootfs under dir (which must not
// exist) with deterministic content and mtimes, so two calls on different
// paths give trees with the same canonical stream.
func buildRootfs(t testing.TB, dir string) rootfsInfo {
	t.Helper()
	info := rootfsInfo{root: os.Geteuid() == 0}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(rel string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(p, 0o755))
		must(os.Chmod(p, mode)) // Chmod: MkdirAll applies the umask and drops sticky
	}
	file := func(rel string, mode os.FileMode, data []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		must(os.WriteFile(p, data, 0o600))
		must(os.Chmod(p, mode))
	}

	mkdir(".", 0o755)
	mkdir("bin", 0o755)
	mkdir("etc", 0o755)
	mkdir("tmp", 0o777|os.ModeSticky)
	mkdir("empty", 0o700)
	mkdir("home/user", 0o750)
	mkdir("dev", 0o755)
	mkdir("run", 0o755)
	mkdir("usr/lib", 0o755)

	file("bin/busybox", 0o755, []byte("#!/bin/busybox\nnot really busybox\n"))
	must(os.Link(filepath.Join(dir, "bin/busybox"), filepath.Join(dir, "bin/ls")))
	file("bin/su", 0o755|os.ModeSetuid, []byte("setuid\n"))
	file("bin/wall", 0o755|os.ModeSetgid, []byte("setgid\n"))
	file("etc/empty-file", 0o644, nil)
	file("home/user/file", 0o640, []byte("owned by 1000:2000\n"))
	file(longName, 0o644, []byte("long name\n"))
	// Larger than copyBufSize, so it is read in several chunks.
	big := make([]byte, 3*copyBufSize+12345)
	for i := range big {
		big[i] = byte(i*7 + i/1000)
	}
	file("usr/lib/big", 0o644, big)

	must(os.Symlink("busybox", filepath.Join(dir, "bin/sh")))
	must(os.Symlink("/bin/busybox", filepath.Join(dir, "etc/abs")))
	must(os.Symlink("../nonexistent/target", filepath.Join(dir, "etc/dangling")))
	must(unix.Mkfifo(filepath.Join(dir, "run/fifo"), 0o600))
	must(os.Chmod(filepath.Join(dir, "run/fifo"), 0o620))
	makeSocket(t, filepath.Join(dir, "run/sock"))

	if info.root {
		must(os.Lchown(filepath.Join(dir, "home/user"), 1000, 2000))
		must(os.Lchown(filepath.Join(dir, "home/user/file"), 1000, 2000))
		must(os.Lchown(filepath.Join(dir, "etc/dangling"), 1000, 2000))
		must(unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(os.Chmod(filepath.Join(dir, "dev/null"), 0o666)) // mknod applies the umask
		must(unix.Mknod(filepath.Join(dir, "dev/loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
		must(os.Chmod(filepath.Join(dir, "dev/loop0"), 0o660))
		must(os.Lchown(filepath.Join(dir, "dev/loop0"), 0, 6))
	}

	file("etc/xattr", 0o644, []byte("has xattrs\n"))
	err := unix.Lsetxattr(filepath.Join(dir, "etc/xattr"), "user.zz", []byte("binary\x00\xff value"), 0)
	switch {
	case errors.Is(err, unix.ENOTSUP):
		t.Logf("filesystem of %s does not support user xattrs (ENOTSUP): xattr checks skipped", dir)
	case err != nil:
		t.Fatal(err)
	default:
		info.xattrs = true
		must(unix.Lsetxattr(filepath.Join(dir, "etc/xattr"), "user.aa", []byte("first"), 0))
		must(unix.Lsetxattr(filepath.Join(dir, "etc"), "user.dir", []byte("on a directory"), 0))
	}

	setMtimes(t, dir)
	return info
}

// makeSocket leaves a unix socket file at path (closing the fd keeps it).
func makeSocket(t testing.TB, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
}

// setMtimes gives every path under dir a distinct, path-independent mtime.
// Children first is not needed: changing a child's times does not touch
// its directory's mtime.
func setMtimes(t testing.TB, dir string) {
	t.Helper()
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		ts := baseTime.Add(time.Duration(i) * time.Minute)
		tv := []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, tv, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// node is what a tree comparison looks at for one path.
type node struct {
	Type   uint32
	Mode   uint32 // permissions plus setuid/setgid/sticky
	UID    uint32
	GID    uint32
	Size   int64    // regular files only
	Sum    [32]byte // regular files only
	Link   string   // symlink target
	Rdev   uint64   // devices only
	Xattrs string   // sorted "name=value\n" lines
	Mtime  int64    // seconds; not for symlinks
	// Group is the first path (walk order) sharing this inode, or "" when
	// the inode has a single path: it is how hardlink identity compares
	// across trees.
	Group string
}

// snapshot reads the tree under dir; sockets are left out because
// templates cannot contain them.
func snapshot(t testing.TB, dir string) map[string]node {
	t.Helper()
	out := make(map[string]node)
	groups := make(map[inodeKey]string)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		typ := st.Mode & unix.S_IFMT
		if typ == unix.S_IFSOCK {
			return nil
		}
		n := node{Type: typ, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
		switch typ {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Size, n.Sum = st.Size, sha256.Sum256(data)
		case unix.S_IFLNK:
			if n.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			n.Rdev = uint64(st.Rdev)
		}
		if typ != unix.S_IFLNK {
			n.Mtime = st.Mtim.Sec
		}
		xs, err := readXattrs(p)
		if err != nil {
			return err
		}
		for _, x := range xs {
			n.Xattrs += x.name + "=" + x.value + "\n"
		}
		if typ != unix.S_IFDIR && st.Nlink > 1 {
			k := inodeKey{uint64(st.Dev), st.Ino}
			if _, ok := groups[k]; !ok {
				groups[k] = rel
			}
			n.Group = groups[k]
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees fails for every path whose node differs.
func compareTrees(t *testing.T, want, got map[string]node) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		w, wok := want[p]
		g, gok := got[p]
		switch {
		case !wok:
			t.Errorf("%s: extracted but not in the rootfs: %+v", p, g)
		case !gok:
			t.Errorf("%s: in the rootfs but not extracted: %+v", p, w)
		case w != g:
			t.Errorf("%s differs:\n rootfs:    %+v\n extracted: %+v", p, w, g)
		}
	}
}

// writeBytes returns Write's output for rootfs.
func writeBytes(t testing.TB, rootfs string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), rootfs, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decompress undoes the zstd layer (klauspost's decoder; TestRoundTrip
// also checks the output with the zstd CLI).
func decompress(t testing.TB, data []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tarHeaders lists the headers of an uncompressed tar stream.
func tarHeaders(t testing.TB, data []byte) []*tar.Header {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
	}
}

// tmpFiles returns the Ensure temp files in dir.
func tmpFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// countingCtx is a context whose Err starts failing at its at-th call. The
// tar walk checks Err once per entry and once per file read, so the count
// lands at a precise, repeatable point of a run, where a timer would not.
type countingCtx struct {
	context.Context
	at     int64
	cancel bool   // return context.Canceled from the at-th call on
	fire   func() // run once, at the at-th call
	calls  atomic.Int64
	once   sync.Once
	done   chan struct{}
}

func newCountingCtx(at int64, cancel bool, fire func()) *countingCtx {
	return &countingCtx{Context: context.Background(), at: at, cancel: cancel, fire: fire, done: make(chan struct{})}
}

func (c *countingCtx) Err() error {
	if c.calls.Add(1) < c.at {
		return nil
	}
	c.once.Do(func() {
		if c.fire != nil {
			c.fire()
		}
		if c.cancel {
			close(c.done)
		}
	})
	if c.cancel {
		return context.Canceled
	}
	return nil
}

func (c *countingCtx) Done() <-chan struct{} { return c.done }
