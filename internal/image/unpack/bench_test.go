package unpack

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// benchLayer is 2000 regular files (1600 x 8 KiB, 380 x 128 KiB, 20 x 2 MiB
// = 100 MiB of incompressible data) spread over 100 directories, plus the
// directory entries and 200 symlinks, in tar order.
func benchLayer(b *testing.B) ([]byte, int64) {
	b.Helper()
	rng := rand.New(rand.NewSource(42))
	blob := make([]byte, 2<<20)
	rng.Read(blob)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var total int64
	hdr := func(h *tar.Header) {
		h.ModTime = baseTime
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
	}
	for d := 0; d < 100; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d", d)
		if d == 0 {
			hdr(&tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755})
			hdr(&tar.Header{Name: "usr/lib/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		hdr(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		for f := 0; f < 20; f++ {
			i := d*20 + f
			size := 8 << 10
			switch {
			case i%100 == 0:
				size = 2 << 20
			case i%5 == 1 && i%100 != 1:
				size = 128 << 10
			}
			off := rng.Intn(len(blob) - size + 1)
			name := fmt.Sprintf("%s/file%02d", dir, f)
			hdr(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)})
			if _, err := tw.Write(blob[off : off+size]); err != nil {
				b.Fatal(err)
			}
			total += int64(size)
			if f < 2 {
				hdr(&tar.Header{Name: name + ".so", Typeflag: tar.TypeSymlink, Linkname: filepath.Base(name), Mode: 0o777})
			}
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), total
}

// BenchmarkApplyLayer reports MB/s of file content applied (SetBytes) and
// files/s; each iteration unpacks into a fresh directory.
func BenchmarkApplyLayer(b *testing.B) {
	data, total := benchLayer(b)
	base := b.TempDir()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(root, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := ApplyLayer(root, bytes.NewReader(data), Options{Layer: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if res.Bytes != total {
			b.Fatalf("bytes %d, want %d", res.Bytes, total)
		}
		b.StopTimer()
		if err := os.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "files/s")
}
