package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The fuzz root is pre-populated with a "lower layer" whose links point at
// T/outside, so an input only has to go through one of these names to reach
// the sentinel tree if containment were broken.
func populateLower(tb testing.TB, s *sandbox) {
	tb.Helper()
	links := map[string]string{
		"lnk_abs":      s.outside,
		"lnk_rel":      "../outside",
		"lnk_sentinel": s.sentinel,
		"lnk_up":       "../../../../../../..",
		"dirlink":      "d",
		"d/lnk_sub":    filepath.Join(s.outside, "sub"),
	}
	for _, d := range []string{"etc", "d/sub"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, s.path(name)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, f := range []string{"etc/passwd", "d/lower", "d/sub/x"} {
		if err := os.WriteFile(s.path(f), []byte("lower "+f), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// fuzzSeeds are the regression layers, expressed against populateLower's
// names where they need the outside path.
func fuzzSeeds(tb testing.TB) [][]byte {
	o := func(e ent, f func(*ent)) ent { f(&e); return e }
	sparse := make([]byte, 130<<10)
	copy(sparse[100<<10:], "island")
	seeds := [][]ent{
		{file("../escape", "x")},
		{file("a/../../escape", "x")},
		{file("/abs/file", "x")},
		{symlink("evil", "/"), file("evil/etc/passwd", "x")},
		{symlink("evil", "../../../.."), file("evil/x", "x")},
		{symlink("a", "b"), symlink("b", "lnk_abs"), file("a/f", "f")},
		{symlink("a", "b"), symlink("b", "/outside-abs-path"), file("a/f", "f")},
		{hardlink("hl", "../../etc/passwd")},
		{file("etc/passwd", "x"), hardlink("hl", "/etc/passwd")},
		{symlink("evil", "/"), hardlink("hl", "evil/etc/passwd")},
		{file("lnk_sentinel", "overwrite")},
		{whiteout("../.wh.x")},
		{whiteout("d/.wh.lower"), whiteout(".wh.d")},
		{dir("d"), file("d/new", "n"), whiteout("d/.wh..wh..opq")},
		{dir("var"), symlink("var/run", "/run"), file("var/run/x", "x")},
		{{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3}, {name: "fifo", typ: tar.TypeFifo, mode: 0o600}},
		{o(file("su", "x"), func(e *ent) { e.mode = 0o4755; e.uid, e.gid = 1234, 5678 })},
		{o(file("x", "x"), func(e *ent) { e.xattrs = map[string]string{"user.a": "b", "trusted.c": "d"} })},
		{o(dir("t"), func(e *ent) { e.mode = 0o500 }), file("t/f", "f")},
		{{name: "sparse", typ: tar.TypeReg, mode: 0o644, body: sparse}},
		// Through the pre-populated links to T/outside.
		{file("lnk_abs/f", "x"), file("lnk_rel/f", "x"), file("lnk_up/f", "x")},
		{file("lnk_abs/sentinel", "x"), hardlink("h", "lnk_abs/sentinel")},
		{whiteout("lnk_abs/.wh.sentinel"), whiteout("lnk_rel/.wh..wh..opq"), whiteout("d/lnk_sub/.wh.inner")},
		{dir("lnk_abs"), dir("dirlink"), file("dirlink/y", "y")},
		{hardlink("hl", "lnk_sentinel"), hardlink("hl2", "d/lnk_sub")},
		{dir("x"), file("x/f", "f"), symlink("x", "/"), file("x/g", "g")},
		{dir("a"), dir("a/sub"), symlink("a", "lnk_abs")},
		{symlink("d/lower", "lnk_sentinel"), file("d/lower", "new")},
	}
	var out [][]byte
	for _, es := range seeds {
		// No end-of-archive blocks: EOF at a header boundary ends the
		// archive just as well, and small seeds mutate and minimize faster.
		b := mkTarFormat(tb, tar.FormatUnknown, es...)
		out = append(out, b[:len(b)-1024])
	}
	return out
}

// fixChecksums rewrites the header checksums of a tar-looking byte string so
// that mutated headers reach the unpacker instead of dying in the tar
// reader's checksum test. It walks headers by their size field; anything it
// cannot follow is left as it is.
func fixChecksums(data []byte) []byte {
	out := bytes.Clone(data)
	for off := 0; off+512 <= len(out); {
		blk := out[off : off+512]
		if isZero(blk) {
			off += 512
			continue
		}
		copy(blk[148:156], "        ")
		sum := 0
		for _, b := range blk {
			sum += int(b)
		}
		copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum&0o777777))
		size := parseSize(blk[124:136])
		switch blk[156] {
		case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
			size = 0
		}
		if size < 0 || size > int64(len(out)) {
			break
		}
		off += 512 + int((size+511)&^511)
	}
	return out
}

func parseSize(f []byte) int64 {
	if len(f) > 0 && f[0]&0x80 != 0 {
		var n int64
		for i, b := range f {
			if i == 0 {
				b &= 0x7f
			}
			if n > 1<<40 {
				return -1
			}
			n = n<<8 | int64(b)
		}
		return n
	}
	s := strings.Trim(string(f), " \x00")
	n, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		return -1
	}
	return n
}

// FuzzApplyLayer treats data as a layer tar stream (checksums repaired) and
// applies it twice onto a root whose lower layer points at T/outside.
// Property: no panic, and T/outside unchanged with nothing else beside root.
func FuzzApplyLayer(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		populateLower(t, s)
		data = fixChecksums(data)
		// Sparse entries can claim huge sizes without input bytes; cap them
		// so one input cannot stall the fuzzer.
		lim := limits{maxFileSize: 32 << 20}
		for i := 0; i < 2; i++ {
			_, err := applyLayer(s.root, bytes.NewReader(data), Options{Layer: "fuzz"}, lim)
			if e, ok := err.(*Error); ok && (e.Layer != "fuzz" || e.Reason == "") {
				t.Fatalf("malformed refusal %#v", e)
			}
			// Run the fuzzer with the host / read-only (see the package
			// report): EROFS can then only mean an attempt outside root.
			if errors.Is(err, syscall.EROFS) {
				t.Fatalf("write attempted outside root: %v", err)
			}
		}
		s.check(t)
	})
}
