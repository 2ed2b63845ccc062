package unpack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// TestRegressions is the path-safety and semantics suite: each subtest
// applies one or more layers into T/root and then checks that T/outside is
// byte-for-byte unchanged and that T holds nothing else.
func TestRegressions(t *testing.T) {
	const L = "layer 1/1 (sha256:test)"
	cases := []struct {
		name string
		run  func(t *testing.T, s *sandbox)
	}{
		{"dotdot-escape-refused", func(t *testing.T, s *sandbox) {
			_, err := s.apply(t, L, mkTar(t, file("../escape", "x")))
			wantRefused(t, err, L, "../escape")
		}},
		{"nested-dotdot-escape-refused", func(t *testing.T, s *sandbox) {
			_, err := s.apply(t, L, mkTar(t, file("ok", "1"), file("a/../../escape", "x")))
			wantRefused(t, err, L, "a/../../escape")
			wantContent(t, s.path("ok"), "1") // earlier entries remain
		}},
		{"absolute-name-contained", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, file("/abs/file", "abs"))
			wantContent(t, s.path("abs/file"), "abs")
		}},
		{"symlink-to-slash-parent-contained", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, symlink("evil", "/"), file("evil/etc/passwd", "root:x:0:0"))
			wantContent(t, s.path("etc/passwd"), "root:x:0:0")
			if l, _ := os.Readlink(s.path("evil")); l != "/" {
				t.Fatalf("evil -> %q, want / stored verbatim", l)
			}
		}},
		{"dotdot-symlink-parent-contained", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, symlink("evil", "../../../.."), file("evil/x", "x"))
			wantContent(t, s.path("x"), "x")
		}},
		{"symlink-chain-to-outside-abs-path-contained", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, symlink("a", "b"), symlink("b", s.outside), file("a/f", "f"))
			wantContent(t, filepath.Join(s.root, s.outside, "f"), "f")
		}},
		{"hardlink-dotdot-refused", func(t *testing.T, s *sandbox) {
			_, err := s.apply(t, L, mkTar(t, hardlink("hl", "../../etc/passwd")))
			wantRefused(t, err, L, "hl")
			wantAbsent(t, s.path("hl"))
		}},
		{"hardlink-absolute-target-rooted", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, file("etc/passwd", "inside"), hardlink("hl", "/etc/passwd"))
			sameInode(t, s.path("hl"), s.path("etc/passwd"))
			wantContent(t, s.path("hl"), "inside")
		}},
		{"hardlink-through-symlinked-parent-rooted", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, symlink("evil", "/"), file("etc/passwd", "inside"), hardlink("hl", "evil/etc/passwd"))
			sameInode(t, s.path("hl"), s.path("etc/passwd"))
		}},
		{"file-replaces-symlink-to-outside-sentinel", func(t *testing.T, s *sandbox) {
			s.mustApply(t, "layer 1/2", symlink("etc/passwd", s.sentinel))
			s.mustApply(t, "layer 2/2", file("etc/passwd", "new"))
			wantContent(t, s.path("etc/passwd"), "new")
		}},
		{"whiteout-dotdot-refused", func(t *testing.T, s *sandbox) {
			_, err := s.apply(t, L, mkTar(t, whiteout("../.wh.x")))
			wantRefused(t, err, L, "../.wh.x")
		}},
		{"whiteout-removes-lower-file-and-dir", func(t *testing.T, s *sandbox) {
			s.mustApply(t, "layer 1/2", file("a/file", "1"), file("a/keep", "2"), file("d/sub/f", "3"))
			s.mustApply(t, "layer 2/2", whiteout("a/.wh.file"), whiteout(".wh.d"))
			if got := tree(t, s.root); !reflect.DeepEqual(got, []string{"a", "a/keep"}) {
				t.Fatalf("tree = %v", got)
			}
		}},
		{"opaque-keeps-same-layer-drops-lower", func(t *testing.T, s *sandbox) {
			s.mustApply(t, "layer 1/2", file("d/lower1", "1"), file("d/lowerdir/x", "2"), file("other/y", "3"))
			s.mustApply(t, "layer 2/2", dir("d"), file("d/new1", "n1"), whiteout("d/.wh..wh..opq"), file("d/new2", "n2"))
			want := []string{"d", "d/new1", "d/new2", "other", "other/y"}
			if got := tree(t, s.root); !reflect.DeepEqual(got, want) {
				t.Fatalf("tree = %v, want %v", got, want)
			}
		}},
		{"var-run-absolute-symlink-lands-in-root-run", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, dir("var"), symlink("var/run", "/run"), file("var/run/x", "pid"))
			wantContent(t, s.path("run/x"), "pid")
			if l, _ := os.Readlink(s.path("var/run")); l != "/run" {
				t.Fatalf("var/run -> %q", l)
			}
		}},
		{"devices-and-fifo", func(t *testing.T, s *sandbox) {
			needRoot(t)
			s.mustApply(t, L,
				ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
				ent{name: "dev/loop9", typ: tar.TypeBlock, mode: 0o660, major: 7, minor: 9},
				ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o640})
			for _, c := range []struct {
				p    string
				kind uint32
				perm uint32
				dev  uint64
			}{
				{"dev/null", syscall.S_IFCHR, 0o666, unix.Mkdev(1, 3)},
				{"dev/loop9", syscall.S_IFBLK, 0o660, unix.Mkdev(7, 9)},
				{"run/fifo", syscall.S_IFIFO, 0o640, 0},
			} {
				var st syscall.Stat_t
				if err := syscall.Lstat(s.path(c.p), &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&syscall.S_IFMT != c.kind || st.Mode&0o7777 != c.perm || st.Rdev != c.dev {
					t.Fatalf("%s: mode %o rdev %x, want kind %o perm %o rdev %x", c.p, st.Mode, st.Rdev, c.kind, c.perm, c.dev)
				}
			}
		}},
		{"setuid-setgid-sticky-kept-despite-umask", func(t *testing.T, s *sandbox) {
			old := syscall.Umask(0o077)
			defer syscall.Umask(old)
			e := func(x ent, m int64) ent { x.mode = m; return x }
			s.mustApply(t, L, e(file("bin/su", "su"), 0o4755), e(file("bin/sg", "sg"), 0o2711),
				e(dir("tmp"), 0o1777), e(dir("shared"), 0o2775), e(file("open", "o"), 0o777))
			for p, want := range map[string]uint32{"bin/su": 0o4755, "bin/sg": 0o2711, "tmp": 0o1777, "shared": 0o2775, "open": 0o777} {
				var st syscall.Stat_t
				if err := syscall.Lstat(s.path(p), &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&0o7777 != want {
					t.Errorf("%s: mode %o, want %o", p, st.Mode&0o7777, want)
				}
			}
		}},
		{"ownership-kept", func(t *testing.T, s *sandbox) {
			needRoot(t)
			o := func(x ent) ent { x.uid, x.gid = 1234, 5678; return x }
			x := o(file("d/f", "f"))
			x.mode = 0o4755
			s.mustApply(t, L, o(dir("d")), x, o(symlink("d/l", "f")),
				o(ent{name: "d/p", typ: tar.TypeFifo, mode: 0o600}))
			for _, p := range []string{"d", "d/f", "d/l", "d/p"} {
				var st syscall.Stat_t
				if err := syscall.Lstat(s.path(p), &st); err != nil {
					t.Fatal(err)
				}
				if st.Uid != 1234 || st.Gid != 5678 {
					t.Errorf("%s owned by %d:%d", p, st.Uid, st.Gid)
				}
			}
			var st syscall.Stat_t
			_ = syscall.Lstat(s.path("d/f"), &st)
			if st.Mode&0o7777 != 0o4755 {
				t.Errorf("setuid lost by chown: %o", st.Mode&0o7777)
			}
		}},
		{"user-xattr-kept", func(t *testing.T, s *sandbox) {
			probe := filepath.Join(s.top, "probe")
			_ = os.WriteFile(probe, nil, 0o600)
			err := unix.Setxattr(probe, "user.probe", []byte("1"), 0)
			_ = os.Remove(probe)
			if errors.Is(err, unix.ENOTSUP) {
				t.Skip("filesystem does not support user xattrs")
			}
			x := file("f", "f")
			x.xattrs = map[string]string{"user.test": "value\x00bin"}
			d := dir("d")
			d.xattrs = map[string]string{"user.dir": "dv"}
			res := s.mustApply(t, L, x, d)
			for p, kv := range map[string][2]string{"f": {"user.test", "value\x00bin"}, "d": {"user.dir", "dv"}} {
				buf := make([]byte, 64)
				n, err := unix.Lgetxattr(s.path(p), kv[0], buf)
				if err != nil || string(buf[:n]) != kv[1] {
					t.Fatalf("%s %s = %q, %v (skipped %v)", p, kv[0], buf[:max(n, 0)], err, res.Skipped)
				}
			}
		}},
		{"mtimes-kept", func(t *testing.T, s *sandbox) {
			t1 := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
			t2 := time.Date(2002, 2, 3, 4, 5, 6, 987654321, time.UTC)
			t3 := time.Date(2003, 2, 3, 4, 5, 6, 5, time.UTC)
			d, f, l := dir("d"), file("d/f", "f"), symlink("d/l", "f")
			d.mtime, f.mtime, l.mtime = t1, t2, t3
			// d/late is created after d's entry and must not disturb d's mtime.
			s.mustApply(t, L, d, f, l, file("d/late", "late"))
			for p, want := range map[string]time.Time{"d": t1, "d/f": t2, "d/l": t3} {
				var st syscall.Stat_t
				if err := syscall.Lstat(s.path(p), &st); err != nil {
					t.Fatal(err)
				}
				if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(want) {
					t.Errorf("%s mtime %v, want %v", p, got.UTC(), want)
				}
			}
		}},
		{"64MiB-sparse-ish-file-sha256", func(t *testing.T, s *sandbox) {
			body := make([]byte, 64<<20)
			rng := rand.New(rand.NewSource(1))
			for off := 0; off < len(body); off += 8 << 20 {
				rng.Read(body[off : off+4096]) // data islands in a sea of zeros
			}
			rng.Read(body[40<<20 : 41<<20])
			// the last 7 MiB stay zero: a trailing hole must still give the size.
			want := sha256.Sum256(body)
			res := s.mustApply(t, L, ent{name: "big", typ: tar.TypeReg, mode: 0o644, body: body})
			f, err := os.Open(s.path("big"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h := sha256.New()
			n, err := io.Copy(h, f)
			if err != nil || n != int64(len(body)) {
				t.Fatalf("read %d bytes, %v", n, err)
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("sha256 mismatch")
			}
			if res.Bytes != int64(len(body)) || res.Entries != 1 {
				t.Fatalf("result %+v", res)
			}
		}},
		// Beyond the brief's list: the parent cache must be dropped when a
		// directory becomes a symlink, or x/g would be written through the
		// new absolute symlink onto the host.
		{"parent-cache-invalidated-when-dir-becomes-symlink", func(t *testing.T, s *sandbox) {
			s.mustApply(t, L, dir("x"), file("x/f", "f"), symlink("x", s.outside), file("x/g", "g"))
			wantContent(t, filepath.Join(s.root, s.outside, "g"), "g")
		}},
		{"deferred-dir-times-not-applied-through-later-symlink", func(t *testing.T, s *sandbox) {
			a, b := dir("a"), dir("a/sub")
			a.mtime, b.mtime = time.Unix(5, 0), time.Unix(6, 0)
			// outside/sub exists: a stale deferred path root/a/sub must not
			// reach it through the new a -> outside symlink.
			s.mustApply(t, L, a, b, symlink("a", s.outside))
		}},
		{"file-over-symlink-to-dir-does-not-write-through", func(t *testing.T, s *sandbox) {
			s.mustApply(t, "layer 1/2", symlink("sub", filepath.Join(s.outside, "sub")), symlink("inner", filepath.Join(s.outside, "sub", "inner")))
			s.mustApply(t, "layer 2/2", file("sub", "now a file"), file("inner", "replaced"), dir("d"))
			wantContent(t, s.path("sub"), "now a file")
			wantContent(t, s.path("inner"), "replaced")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			c.run(t, s)
			s.check(t)
		})
	}
}

// TestReplace covers OCI replacement rules between layers.
func TestReplace(t *testing.T) {
	s := newSandbox(t)
	s.mustApply(t, "l1", file("fileToDir", "f"), file("dirToFile/child", "c"), file("keep/old", "o"),
		symlink("linkToDir", "keep"), file("hard", "h"), hardlink("hard2", "hard"))
	k := dir("keep")
	k.mode = 0o700
	s.mustApply(t, "l2", dir("fileToDir"), file("dirToFile", "now file"), k,
		dir("linkToDir"), file("hard", "fresh"))
	if fi, err := os.Lstat(s.path("fileToDir")); err != nil || !fi.IsDir() {
		t.Fatalf("fileToDir: %v %v", fi, err)
	}
	wantContent(t, s.path("dirToFile"), "now file")
	wantContent(t, s.path("keep/old"), "o") // dir over dir keeps contents
	if fi, _ := os.Lstat(s.path("keep")); fi.Mode().Perm() != 0o700 {
		t.Fatalf("keep mode %v, want updated to 0700", fi.Mode())
	}
	if fi, err := os.Lstat(s.path("linkToDir")); err != nil || !fi.IsDir() {
		t.Fatalf("linkToDir should be a real dir now: %v %v", fi, err)
	}
	// The new "hard" is a new inode: the old link partner is untouched.
	wantContent(t, s.path("hard"), "fresh")
	wantContent(t, s.path("hard2"), "h")
	s.check(t)
}

// TestWhiteoutSameLayer: a whiteout only hides lower layers, never what its
// own layer wrote (before or after it).
func TestWhiteoutSameLayer(t *testing.T) {
	s := newSandbox(t)
	s.mustApply(t, "l1", file("a/old", "o"), file("b/old", "o"))
	s.mustApply(t, "l2", file("f", "same layer"), whiteout(".wh.f"),
		file("a/new", "n"), whiteout(".wh.a"), // lower a/old goes, a/new stays
		whiteout(".wh.b"), file("b/new", "n")) // whiteout before re-creation
	want := []string{"a", "a/new", "b", "b/new", "f"}
	if got := tree(t, s.root); !reflect.DeepEqual(got, want) {
		t.Fatalf("tree = %v, want %v", got, want)
	}
	s.check(t)
}

// TestWhiteoutThroughSymlinkContained: a whiteout whose parent is an
// absolute symlink removes inside root, never the host path.
func TestWhiteoutThroughSymlinkContained(t *testing.T) {
	s := newSandbox(t)
	s.mustApply(t, "l1", symlink("o", s.outside), file(s.outside+"/sentinel", "rooted copy"))
	s.mustApply(t, "l2", whiteout("o/.wh.sentinel"), whiteout("o/.wh..wh..opq"), whiteout("o/sub/.wh.inner"))
	wantAbsent(t, filepath.Join(s.root, s.sentinel))
	s.check(t)
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name  string
		es    []ent
		entry string
	}{
		{"hardlink-missing-target", []ent{hardlink("hl", "nope")}, "hl"},
		{"hardlink-to-dir", []ent{dir("d"), hardlink("hl", "d")}, "hl"},
		{"hardlink-to-root", []ent{hardlink("hl", "/")}, "hl"},
		{"file-as-root", []ent{file(".", "x")}, "."},
		{"empty-whiteout", []ent{whiteout("d/.wh.")}, "d/.wh."},
		{"dotdot-whiteout-name", []ent{whiteout("d/.wh...")}, "d/.wh..."},
		{"unknown-type", []ent{{name: "weird", typ: 'Z', mode: 0o644}}, "weird"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := s.apply(t, "L", mkTar(t, c.es...))
			wantRefused(t, err, "L", c.entry)
			s.check(t)
		})
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"a/b": "a/b", "./a/b/": "a/b", "/abs": "abs", "//x//y": "x/y", "/../x": "x",
		"a/../b": "b", ".": "", "/": "", "": "", "a/..": "",
	} {
		if got, why := cleanName(in); got != want || why != "" {
			t.Errorf("cleanName(%q) = %q, %q; want %q", in, got, why, want)
		}
	}
	for _, in := range []string{"..", "../x", "a/../../x", "./../x", "a\x00b"} {
		if _, why := cleanName(in); why == "" {
			t.Errorf("cleanName(%q) accepted", in)
		}
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Layer: "layer 2/3 (sha256:ab12)", Entry: "../etc/passwd", Reason: "escapes the root filesystem"}
	if got, want := e.Error(), `layer 2/3 (sha256:ab12): entry "../etc/passwd": escapes the root filesystem`; got != want {
		t.Fatalf("got %s", got)
	}
}

func TestResultCounts(t *testing.T) {
	s := newSandbox(t)
	data := mkTar(t, ent{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		dir("d"), file("d/a", "12345"), file("d/b", "678"), symlink("l", "d"))
	// Trailing bytes after the archive must be consumed (callers hash the stream).
	data = append(data, make([]byte, 10240)...)
	r := bytes.NewReader(data)
	res, err := ApplyLayer(s.root, r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 4 || res.Bytes != 8 || len(res.Skipped) != 0 {
		t.Fatalf("result %+v", res)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left unread", r.Len())
	}
	s.check(t)
}

// TestUnprivileged runs ApplyLayer as nobody (re-executing the test binary
// when run as root): ownership and device nodes are skipped and reported,
// FIFOs are still made, and a 0500 directory still receives its children.
func TestUnprivileged(t *testing.T) {
	if dir := os.Getenv("UNPACK_UNPRIV_DIR"); dir != "" {
		unprivilegedChild(t, dir)
		return
	}
	if os.Getenv("UNPACK_UNPRIV_CHILD") != "" {
		t.Skip("child without dir")
	}
	if os.Geteuid() != 0 {
		unprivilegedChild(t, t.TempDir())
		return
	}
	top := t.TempDir()
	bin := filepath.Join(top, "test.bin")
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skip("cannot copy test binary:", err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(top, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(top, 0o755)
	_ = os.Chmod(filepath.Dir(top), 0o755) // t.TempDir's per-test parent is 0700
	cmd := exec.Command(bin, "-test.run=^TestUnprivileged$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "UNPACK_UNPRIV_DIR="+work, "UNPACK_UNPRIV_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUnprivileged") {
		t.Fatalf("unprivileged child: %v\n%s", err, out)
	}
}

func unprivilegedChild(t *testing.T, work string) {
	if os.Geteuid() == 0 {
		t.Fatal("child still root")
	}
	root := filepath.Join(work, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ro := dir("ro")
	ro.mode = 0o500
	ro.uid = 0
	x := file("ro/f", "f")
	x.xattrs = map[string]string{"trusted.x": "1"}
	data := mkTar(t, ro, x,
		ent{name: "null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600})
	res, err := ApplyLayer(root, bytes.NewReader(data), Options{Layer: "unpriv"})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Skipped, "\n")
	for _, want := range []string{`device "null"`, "ownership 0:0 not applied to 3 entries", "trusted.x"} {
		if !strings.Contains(all, want) {
			t.Errorf("Skipped lacks %q:\n%s", want, all)
		}
	}
	wantContent(t, filepath.Join(root, "ro/f"), "f")
	if fi, err := os.Lstat(filepath.Join(root, "ro")); err != nil || fi.Mode().Perm() != 0o500 {
		t.Errorf("ro: %v %v, want mode 0500", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", fi, err)
	}
	wantAbsent(t, filepath.Join(root, "null"))
	_ = os.Chmod(filepath.Join(root, "ro"), 0o700) // let TempDir cleanup in
}

// A hardlink entry's mode (and owner) apply to the shared inode, as
// containerd's and containers/storage's unpackers do: podman sees the same
// tree for the same image.
func TestHardlinkMetadataAppliesToTheInode(t *testing.T) {
	s := newSandbox(t)
	f := file("bin/tool", "x")
	f.mode = 0o755
	l := hardlink("bin/tool-link", "bin/tool")
	l.mode = 0o700
	s.mustApply(t, "layer 1", dir("bin"), f, l)
	fi, err := os.Stat(s.path("bin/tool"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("bin/tool mode %v (%v), want the link entry's 0700", fi.Mode(), err)
	}
	sameInode(t, s.path("bin/tool"), s.path("bin/tool-link"))
	s.check(t)
}
