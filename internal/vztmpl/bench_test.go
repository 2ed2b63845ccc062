package vztmpl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const (
	benchFiles = 2000
	benchBytes = 100 << 20
)

// benchTree creates, under a fresh b.TempDir, benchFiles files totalling
// about benchBytes in 40 directories, and returns the tree and its content
// size. Sizes are exponentially distributed (many small files, a few large
// ones, like a real rootfs); even-numbered files are word-soup text
// (compresses ~3x), odd ones random bytes (incompressible), so the
// compressor sees both kinds. A fixed seed keeps runs comparable.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 512)
	for i := range vocab {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = 'a' + byte(rng.IntN(26))
		}
		vocab[i] = string(w) + " "
	}
	weights := make([]float64, benchFiles)
	var sum float64
	for i := range weights {
		weights[i] = rng.ExpFloat64()
		sum += weights[i]
	}
	var total int64
	buf := make([]byte, 0, 1<<20)
	for i, w := range weights {
		size := int(w / sum * benchBytes)
		buf = buf[:0]
		if i%2 == 0 {
			for len(buf) < size {
				buf = append(buf, vocab[rng.IntN(len(vocab))]...)
			}
			buf = buf[:size]
		} else {
			buf = append(buf, make([]byte, size)...)
			for j := 0; j+8 <= len(buf); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
		}
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i%40))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return root, total
}

// countWriter counts what passes through it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWrite measures Write (walk + tar + parallel zstd) in MB/s of
// file content, and reports the compressed/content size ratio.
func BenchmarkWrite(b *testing.B) {
	root, total := benchTree(b)
	ctx := context.Background()
	b.SetBytes(total)
	var out countWriter
	for b.Loop() {
		out.n = 0
		if err := Write(ctx, root, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.n)/float64(total), "ratio")
}

// BenchmarkDigest measures Digest (walk + tar + sha256), the cost of a
// cache hit in Ensure.
func BenchmarkDigest(b *testing.B) {
	root, total := benchTree(b)
	ctx := context.Background()
	b.SetBytes(total)
	for b.Loop() {
		if _, err := Digest(ctx, root); err != nil {
			b.Fatal(err)
		}
	}
}
