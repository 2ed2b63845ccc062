package vztmpl

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/proc"
)

// TestRoundTrip extracts Write's output with GNU tar, as PVE does, and
// checks that the extracted tree is the rootfs.
func TestRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown, mknod and tar restoring owners")
	}
	gnuTar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("needs GNU tar")
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	info := buildRootfs(t, rootfs)
	want := snapshot(t, rootfs)

	// The fixture itself must have what the test claims to check, or a
	// broken builder would make the comparison vacuous.
	for p, n := range map[string]node{
		"bin/su":    {Mode: 0o4755},
		"bin/wall":  {Mode: 0o2755},
		"tmp":       {Mode: 0o1777},
		"dev/null":  {Rdev: unix.Mkdev(1, 3)},
		"dev/loop0": {Rdev: unix.Mkdev(7, 0)},
		"bin/ls":    {Group: "bin/busybox"},
		"home/user": {UID: 1000, GID: 2000},
	} {
		got := want[p]
		if (n.Mode != 0 && got.Mode != n.Mode) || (n.Rdev != 0 && got.Rdev != n.Rdev) ||
			(n.Group != "" && got.Group != n.Group) || (n.UID != 0 && (got.UID != n.UID || got.GID != n.GID)) {
			t.Fatalf("fixture %s = %+v, want %+v", p, got, n)
		}
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "run/sock")); err != nil {
		t.Fatalf("fixture has no socket: %v", err)
	}

	archive := writeBytes(t, rootfs)
	stream := decompress(t, archive)

	// The zstd CLI is what PVE decompresses with; it must agree.
	if zstdCLI, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command(zstdCLI, "-dc")
		cmd.Stdin = bytes.NewReader(archive)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zstd -dc: %v", err)
		}
		if !bytes.Equal(out, stream) {
			t.Fatal("zstd CLI and klauspost decoder disagree")
		}
	} else {
		t.Log("zstd CLI not installed: CLI decompression not checked")
	}

	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gnuTar, "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", out)
	cmd.Stdin = bytes.NewReader(stream)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, msg)
	} else if len(msg) > 0 {
		t.Errorf("tar -x warned:\n%s", msg)
	}
	got := snapshot(t, out)
	compareTrees(t, want, got)
	if info.xattrs && !strings.Contains(got["etc/xattr"].Xattrs, "user.zz=binary\x00\xff value\n") {
		t.Errorf("xattr not restored: %q", got["etc/xattr"].Xattrs)
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(out, "bin/busybox"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(out, "bin/ls"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hardlink not restored: busybox ino %d nlink %d, ls ino %d", a.Ino, a.Nlink, b.Ino)
	}

	// tar -tv shows PVE-style names and the hardlink.
	cmd = exec.Command(gnuTar, "-tvf", "-")
	cmd.Stdin = bytes.NewReader(stream)
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar -tv: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(list)), "\n")
	if !strings.HasSuffix(lines[0], " ./") || !strings.HasSuffix(lines[1], " ./bin/") || !strings.HasSuffix(lines[2], " ./bin/busybox") {
		t.Errorf("tar -tv does not start with ./, ./bin/, ./bin/busybox:\n%s", strings.Join(lines[:3], "\n"))
	}
	for _, parts := range [][]string{
		{"./bin/ls link to ./bin/busybox"},
		{"lrwxrwxrwx", "./bin/sh -> busybox"},
		{"./etc/abs -> /bin/busybox"},
		{"1000/2000", "./etc/dangling -> ../nonexistent/target"},
		{"-rwsr-xr-x", "0/0", "./bin/su"},
		{"-rwxr-sr-x", "./bin/wall"},
		{"drwxrwxrwt", "./tmp/"},
		{"crw-rw-rw-", " 1,3 ", "./dev/null"},
		{"brw-rw----", "0/6", " 7,0 ", "./dev/loop0"},
		{"prw--w----", "./run/fifo"},
		{"1000/2000", "./home/user/file"},
		{"drwx------", "./empty/"},
		{"./" + longName},
	} {
		if !hasLine(lines, parts) {
			t.Errorf("tar -tv has no line with %q:\n%s", parts, list)
		}
	}
	if strings.Contains(string(list), "sock") {
		t.Errorf("socket archived:\n%s", list)
	}

	// Header-level rules GNU tar's listing does not show.
	hdrs := tarHeaders(t, stream)
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: uname/gname %q/%q, want none", h.Name, h.Uname, h.Gname)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: atime %v ctime %v mtime %v: want zero, zero, whole seconds", h.Name, h.AccessTime, h.ChangeTime, h.ModTime)
		}
		if !strings.HasPrefix(h.Name, "./") || (h.Typeflag == tar.TypeDir) != strings.HasSuffix(h.Name, "/") {
			t.Errorf("bad name %q for type %c", h.Name, h.Typeflag)
		}
	}
	// Entry order is the lexical walk order of the tree itself.
	var walk []string
	for _, p := range sortedWalk(t, out) {
		name := "./" + p
		if p == "." {
			name = "./"
		} else if fi, err := os.Lstat(filepath.Join(out, p)); err == nil && fi.IsDir() {
			name += "/"
		}
		walk = append(walk, name)
	}
	if !reflect.DeepEqual(names, walk) {
		t.Errorf("entry order\n got %q\nwant %q", names, walk)
	}
}

// hasLine reports whether one of lines contains all parts.
func hasLine(lines, parts []string) bool {
	for _, l := range lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// sortedWalk lists the paths under dir in filepath.WalkDir order.
func sortedWalk(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterminism(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "a")
	info := buildRootfs(t, rootfs)

	first := writeBytes(t, rootfs)
	if second := writeBytes(t, rootfs); !bytes.Equal(first, second) {
		t.Fatal("two Writes of the same rootfs differ")
	}
	d1, err := Digest(ctx, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := Digest(ctx, rootfs); d1 != d2 {
		t.Fatalf("Digest not stable: %s vs %s", d1, d2)
	}
	sum := sha256.Sum256(decompress(t, first))
	if want := "sha256:" + hex.EncodeToString(sum[:]); d1 != want {
		t.Fatalf("Digest %s is not the digest of what Write compresses (%s)", d1, want)
	}

	// Same tree built elsewhere: different path, inode numbers and ctimes.
	other := filepath.Join(dir, "elsewhere", "deeper", "b")
	buildRootfs(t, other)
	if d, _ := Digest(ctx, other); d != d1 {
		t.Fatalf("identical tree at another path: digest %s, want %s", d, d1)
	}

	// changed asserts that mutate changes the digest and undo restores it,
	// which proves the digest saw exactly that change.
	changed := func(t *testing.T, mutate, undo func() error) {
		t.Helper()
		if err := mutate(); err != nil {
			t.Fatal(err)
		}
		d, err := Digest(ctx, rootfs)
		if err != nil {
			t.Fatal(err)
		}
		if d == d1 {
			t.Error("digest unchanged")
		}
		if err := undo(); err != nil {
			t.Fatal(err)
		}
		if d, _ := Digest(ctx, rootfs); d != d1 {
			t.Errorf("digest after undo %s, want %s", d, d1)
		}
	}
	p := filepath.Join(rootfs, "bin/su")
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	mtime := fi.ModTime()
	restoreMtime := func() error { return os.Chtimes(p, mtime, mtime) }

	t.Run("content", func(t *testing.T) {
		// Same size and mtime: only the bytes differ.
		changed(t, func() error {
			if err := os.WriteFile(p, []byte("SETUID\n"), 0); err != nil {
				return err
			}
			return restoreMtime()
		}, func() error {
			if err := os.WriteFile(p, []byte("setuid\n"), 0); err != nil {
				return err
			}
			return restoreMtime()
		})
	})
	t.Run("mode", func(t *testing.T) {
		changed(t, func() error { return os.Chmod(p, 0o755) },
			func() error { return os.Chmod(p, 0o755|os.ModeSetuid) })
	})
	t.Run("mtime", func(t *testing.T) {
		changed(t, func() error { return os.Chtimes(p, mtime, mtime.Add(time.Second)) }, restoreMtime)
	})
	t.Run("subsecond-mtime", func(t *testing.T) {
		d := func() error { return os.Chtimes(p, mtime, mtime.Add(100*time.Millisecond)) }
		if err := d(); err != nil {
			t.Fatal(err)
		}
		defer restoreMtime()
		if got, _ := Digest(ctx, rootfs); got != d1 {
			t.Errorf("sub-second mtime change altered the digest")
		}
	})
	t.Run("owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: chown")
		}
		// Not bin/su: chown clears setuid/setgid, even for root.
		f := filepath.Join(rootfs, "etc/empty-file")
		changed(t, func() error { return os.Lchown(f, 0, 1) },
			func() error { return os.Lchown(f, 0, 0) })
	})
	t.Run("symlink-owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: chown")
		}
		l := filepath.Join(rootfs, "etc/dangling")
		changed(t, func() error { return os.Lchown(l, 1000, 2001) },
			func() error { return os.Lchown(l, 1000, 2000) })
	})
	t.Run("xattr", func(t *testing.T) {
		if !info.xattrs {
			t.Skip("filesystem without user xattrs")
		}
		x := filepath.Join(rootfs, "etc/xattr")
		changed(t, func() error { return unix.Lsetxattr(x, "user.aa", []byte("firsT"), 0) },
			func() error { return unix.Lsetxattr(x, "user.aa", []byte("first"), 0) })
	})
	t.Run("socket-ignored", func(t *testing.T) {
		if err := os.Remove(filepath.Join(rootfs, "run/sock")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(rootfs, "run"), baseTime, baseTime); err != nil {
			t.Fatal(err)
		}
		// Restoring run's mtime is not possible without knowing it, so
		// compare against a fresh build without the socket instead.
		d, err := Digest(ctx, rootfs)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(other, "run"), baseTime, baseTime); err != nil {
			t.Fatal(err)
		}
		if d2, _ := Digest(ctx, other); d != d2 {
			t.Errorf("removing a socket changed the digest: %s vs %s", d, d2)
		}
	})
}

// TestWriteConcurrencyIndependent checks that the compressed bytes do not
// depend on the number of encoder workers, with enough input for several
// parallel zstd jobs (a job is four windows: 8 MiB).
func TestWriteConcurrencyIndependent(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40 MiB")
	}
	rootfs := t.TempDir()
	data := make([]byte, 5*4*windowSize)
	x := uint64(1)
	for i := 0; i < len(data); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		// Low-entropy bytes: compressible, but not trivially.
		for j := 0; j < 8 && i+j < len(data); j++ {
			data[i+j] = 'a' + byte(x>>(j*8))%4
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	old := encoderConcurrency
	defer func() { encoderConcurrency = old }()
	var outs [][]byte
	for _, n := range []int{2, 3, 8} {
		encoderConcurrency = func() int { return n }
		outs = append(outs, writeBytes(t, rootfs))
	}
	// The production setting on a single CPU, where a concurrency of 1
	// would switch the encoder to its serial mode and other bytes.
	encoderConcurrency = old
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	outs = append(outs, writeBytes(t, rootfs))
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Errorf("output %d (concurrency 2, 3, 8, default on 1 CPU) differs from concurrency 2's (%d vs %d bytes)", i, len(outs[i]), len(outs[0]))
		}
	}
	if len(outs[0]) >= len(data)/2 {
		t.Errorf("compressed %d of %d bytes: compression is not happening", len(outs[0]), len(data))
	}
}

func TestRootfsErrors(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := Digest(ctx, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing rootfs: err %v, want one naming %s", err, missing)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(ctx, file, &buf); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file rootfs: err %v, want not a directory naming %s", err, file)
	}
	if buf.Len() != 0 {
		t.Errorf("Write wrote %d bytes for a bad rootfs", buf.Len())
	}
}

// TestWriteErrors checks that a failing writer's error is returned.
func TestWriteErrors(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)
	boom := errors.New("boom")
	if err := Write(context.Background(), rootfs, failWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("err %v, want %v", err, boom)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := Write(ctx, rootfs, &buf); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v, want context.Canceled", err)
	}
	if buf.Len() != 0 {
		t.Errorf("cancelled Write wrote %d bytes", buf.Len())
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestFileName(t *testing.T) {
	d := "sha256:0123456789abcdef" + strings.Repeat("f", 48)
	if got, want := FileName(d), "proxcage-0123456789abcdef_amd64.tar.zst"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	if !templateName.MatchString(FileName(d)) {
		t.Error("FileName's output is not recognised by IsName")
	}
}

func TestEnsure(t *testing.T) {
	ctx := context.Background()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)
	dir := t.TempDir()

	path, digest, cached, err := Ensure(ctx, rootfs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cached {
		t.Error("first Ensure: cached=true")
	}
	if want := filepath.Join(dir, FileName(digest)); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	if d, _ := Digest(ctx, rootfs); d != digest {
		t.Errorf("digest %s, Digest says %s", digest, d)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, writeBytes(t, rootfs)) {
		t.Error("template file is not Write's output")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("template mode %v, want 0644", fi.Mode().Perm())
	}
	if tmp := tmpFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}

	// Backdate the file: a rewrite would give it a new mtime (and inode).
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	var before, after unix.Stat_t
	if err := unix.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	path2, digest2, cached, err := Ensure(ctx, rootfs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cached || path2 != path || digest2 != digest {
		t.Errorf("second Ensure: %s %s cached=%v, want %s %s cached=true", path2, digest2, cached, path, digest)
	}
	if err := unix.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino || after.Mtim != before.Mtim {
		t.Error("second Ensure rewrote the template")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir has %d entries, want 1", len(ents))
	}
}

// ensureCalls returns how many ctx.Err calls one Digest of rootfs makes.
func ensureCalls(t *testing.T, rootfs string) int64 {
	t.Helper()
	c := newCountingCtx(1<<62, false, nil)
	if _, err := Digest(c, rootfs); err != nil {
		t.Fatal(err)
	}
	return c.calls.Load()
}

func TestEnsureCancel(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)
	n := ensureCalls(t, rootfs)
	if n < 10 {
		t.Fatalf("only %d ctx checks per pass", n)
	}

	t.Run("before", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, _, err := Ensure(ctx, rootfs, dir); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("dir not empty: %v", ents)
		}
	})

	// Cancel at a range of points in the write pass, from its first entry
	// to its last ctx check (just before the rename).
	for _, at := range []int64{n + 1, n + n/2, 2*n + 1} {
		t.Run(fmt.Sprintf("during-%d", at), func(t *testing.T) {
			dir := t.TempDir()
			var sawTmp []string
			ctx := newCountingCtx(at, true, func() { sawTmp = tmpFiles(t, dir) })
			if _, _, _, err := Ensure(ctx, rootfs, dir); !errors.Is(err, context.Canceled) {
				t.Errorf("err %v, want context.Canceled", err)
			}
			if len(sawTmp) != 1 {
				t.Errorf("at cancel time there were temp files %v, want one: not cancelled during the write", sawTmp)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("dir not empty after cancel: %v", ents)
			}
		})
	}
}

func TestEnsureErrors(t *testing.T) {
	t.Run("missing-rootfs", func(t *testing.T) {
		dir := t.TempDir()
		missing := filepath.Join(t.TempDir(), "nope")
		if _, _, _, err := Ensure(context.Background(), missing, dir); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("err %v, want one naming %s", err, missing)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("dir not empty: %v", ents)
		}
	})
	t.Run("missing-dir", func(t *testing.T) {
		rootfs := filepath.Join(t.TempDir(), "rootfs")
		buildRootfs(t, rootfs)
		if _, _, _, err := Ensure(context.Background(), rootfs, filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("no error for a missing template dir")
		}
	})
	t.Run("rootfs-changes-during-write", func(t *testing.T) {
		// A real failure mid-write, root or not: the rootfs changes after
		// the digest pass, so the written stream no longer matches it.
		rootfs := filepath.Join(t.TempDir(), "rootfs")
		buildRootfs(t, rootfs)
		dir := t.TempDir()
		n := ensureCalls(t, rootfs)
		f := filepath.Join(rootfs, "usr/lib/big")
		var sawTmp []string
		ctx := newCountingCtx(n+1, false, func() {
			sawTmp = tmpFiles(t, dir)
			fd, err := os.OpenFile(f, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer fd.Close()
			if _, err := fd.WriteAt([]byte("X"), 100); err != nil {
				t.Error(err)
			}
		})
		_, _, _, err := Ensure(ctx, rootfs, dir)
		if err == nil || !strings.Contains(err.Error(), "changed") {
			t.Errorf("err %v, want rootfs changed", err)
		}
		if len(sawTmp) != 1 {
			t.Errorf("temp files at change time: %v, want one", sawTmp)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("dir not empty: %v", ents)
		}
	})
	t.Run("not-a-file", func(t *testing.T) {
		rootfs := filepath.Join(t.TempDir(), "rootfs")
		buildRootfs(t, rootfs)
		dir := t.TempDir()
		d, err := Digest(context.Background(), rootfs)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, FileName(d)), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := Ensure(context.Background(), rootfs, dir); err == nil {
			t.Error("no error when the template name is a directory")
		}
	})
}

func TestEnsureConcurrent(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)
	dir := t.TempDir()
	const n = 6
	type result struct {
		path, digest string
		cached       bool
		err          error
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i]
			r.path, r.digest, r.cached, r.err = Ensure(context.Background(), rootfs, dir)
		}()
	}
	wg.Wait()
	written := 0
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("call %d: %v", i, r.err)
		}
		if r.path != res[0].path || r.digest != res[0].digest {
			t.Errorf("call %d: %s %s, call 0: %s %s", i, r.path, r.digest, res[0].path, res[0].digest)
		}
		if !r.cached {
			written++
		}
	}
	// RENAME_NOREPLACE lets exactly one writer win.
	if written != 1 {
		t.Errorf("%d calls report cached=false, want exactly 1", written)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != filepath.Base(res[0].path) {
		t.Errorf("dir holds %v, want only %s", ents, filepath.Base(res[0].path))
	}
	data, err := os.ReadFile(res[0].path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(decompress(t, data))
	if "sha256:"+hex.EncodeToString(sum[:]) != res[0].digest {
		t.Error("template content does not match its digest")
	}
}

// TestEnsureSweepsADeadWritersTemp: the next Ensure removes what a killed
// writer left (its stamp names a process that is gone) and keeps a live
// writer's temp file. Mutation audit (issue 12): with the sweep in Ensure
// commented out every other test passed.
func TestEnsureSweepsADeadWritersTemp(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)
	dir := t.TempDir()
	dead := filepath.Join(dir, tmpPrefix+"999999999.1-abc")
	live := filepath.Join(dir, tmpPrefix+proc.Stamp()+"-def")
	for _, f := range []string{dead, live} {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := Ensure(context.Background(), rootfs, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead writer's temp file is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live writer's temp file went: %v", err)
	}
}
