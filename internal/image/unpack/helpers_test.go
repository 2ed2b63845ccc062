package unpack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ent describes one tar entry for mkTar.
type ent struct {
	name         string
	typ          byte
	body         []byte
	link         string
	mode         int64
	uid, gid     int
	mtime        time.Time
	xattrs       map[string]string
	major, minor int64
}

var baseTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func file(name, body string) ent {
	return ent{name: name, typ: tar.TypeReg, body: []byte(body), mode: 0o644}
}
func dir(name string) ent { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}
func whiteout(name string) ent { return file(name, "") }

// mkTar builds a PAX tar (PAX keeps nanosecond times and xattrs).
func mkTar(tb testing.TB, es ...ent) []byte {
	tb.Helper()
	return mkTarFormat(tb, tar.FormatPAX, es...)
}

// mkTarFormat lets the writer pick the smallest format when format is
// FormatUnknown (the fuzz seeds: smaller inputs minimize faster).
func mkTarFormat(tb testing.TB, format tar.Format, es ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		mt := e.mtime
		if mt.IsZero() {
			mt = baseTime
		}
		h := &tar.Header{
			Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, ModTime: mt, Size: int64(len(e.body)),
			Devmajor: e.major, Devminor: e.minor, Format: format,
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: e.typ, Name: e.name, Format: tar.FormatPAX,
				PAXRecords: map[string]string{"comment": "global"}}
		}
		if len(e.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatalf("tar header %q: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(e.body); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is T/root (the unpack target) next to T/outside (a sentinel tree
// that must never change).
type sandbox struct {
	top, root, outside, sentinel string
	snap                         map[string]string
}

const sentinelBody = "sentinel: must never change\n"

func newSandbox(tb testing.TB) *sandbox {
	tb.Helper()
	top := tb.TempDir()
	s := &sandbox{
		top:      top,
		root:     filepath.Join(top, "root"),
		outside:  filepath.Join(top, "outside"),
		sentinel: filepath.Join(top, "outside", "sentinel"),
	}
	for _, d := range []string{s.root, s.outside, filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(s.sentinel, []byte(sentinelBody), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.outside, "sub", "inner"), []byte("inner\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	old := time.Unix(1e9, 0)
	for _, p := range []string{s.sentinel, filepath.Join(s.outside, "sub"), s.outside} {
		if err := os.Chtimes(p, old, old); err != nil {
			tb.Fatal(err)
		}
	}
	s.snap = snapshot(tb, s.outside)
	return s
}

// snapshot describes every object under dir: type, mode, owner, size,
// mtime, xattr names, and content hash or link target.
func snapshot(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%09d ino=%d nlink=%d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ino, st.Nlink)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " sha256=" + hex.EncodeToString(sum[:])
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " link=" + l
		}
		if sz, err := syscall.Listxattr(p, make([]byte, 4096)); err == nil {
			desc += fmt.Sprintf(" xattrs=%d", sz)
		}
		m[p] = desc
		return nil
	})
	if err != nil {
		tb.Fatalf("snapshot %s: %v", dir, err)
	}
	return m
}

// check asserts T holds only root (still a directory) and an unchanged
// outside.
func (s *sandbox) check(tb testing.TB) {
	tb.Helper()
	ents, err := os.ReadDir(s.top)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "outside,root" {
		tb.Fatalf("T contains %v, want only [outside root]", names)
	}
	if fi, err := os.Lstat(s.root); err != nil || !fi.IsDir() {
		tb.Fatalf("root is no longer a directory: %v %v", fi, err)
	}
	now := snapshot(tb, s.outside)
	for p, want := range s.snap {
		if got, ok := now[p]; !ok {
			tb.Errorf("outside: %s removed", p)
		} else if got != want {
			tb.Errorf("outside: %s changed:\n was %s\n now %s", p, want, got)
		}
	}
	for p := range now {
		if _, ok := s.snap[p]; !ok {
			tb.Errorf("outside: %s created", p)
		}
	}
}

func (s *sandbox) apply(tb testing.TB, layer string, data []byte) (Result, error) {
	tb.Helper()
	return ApplyLayer(s.root, bytes.NewReader(data), Options{Layer: layer})
}

func (s *sandbox) mustApply(tb testing.TB, layer string, es ...ent) Result {
	tb.Helper()
	res, err := s.apply(tb, layer, mkTar(tb, es...))
	if err != nil {
		tb.Fatalf("ApplyLayer %s: %v", layer, err)
	}
	return res
}

func (s *sandbox) path(rel string) string { return filepath.Join(s.root, rel) }

func wantRefused(tb testing.TB, err error, layer, entry string) {
	tb.Helper()
	var e *Error
	if !errors.As(err, &e) {
		tb.Fatalf("want *Error refusing %q, got %v", entry, err)
	}
	if e.Entry != entry || e.Layer != layer {
		tb.Fatalf("refused %q in %q, want %q in %q (%v)", e.Entry, e.Layer, entry, layer, err)
	}
}

func wantContent(tb testing.TB, p, body string) {
	tb.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		tb.Fatalf("want regular file %s: %v", p, err)
	}
	if !fi.Mode().IsRegular() {
		tb.Fatalf("%s is %v, want regular file", p, fi.Mode())
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != body {
		tb.Fatalf("%s = %q, %v; want %q", p, b, err, body)
	}
}

func wantAbsent(tb testing.TB, p string) {
	tb.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		tb.Fatalf("%s exists (err %v), want absent", p, err)
	}
}

func sameInode(tb testing.TB, a, b string) {
	tb.Helper()
	var sa, sb syscall.Stat_t
	if err := syscall.Lstat(a, &sa); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Lstat(b, &sb); err != nil {
		tb.Fatal(err)
	}
	if sa.Dev != sb.Dev || sa.Ino != sb.Ino {
		tb.Fatalf("%s and %s are different inodes", a, b)
	}
}

// tree lists root-relative paths under root, sorted.
func tree(tb testing.TB, root string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			out = append(out, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(out)
	return out
}
