package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// An image written as an OCI archive pulls back (oci-archive:) as the same
// image, and the archive is the same bytes every time.
func TestWriteOCIArchiveRoundTrip(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "test/multi:1", multiImage(t))
	s, _ := newStore(t)
	ctx := context.Background()
	img, err := s.Pull(ctx, reg.host+"/test/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := s.WriteOCIArchive(img, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteOCIArchive(img, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of one image differ")
	}
	file := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(file, a.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s2, _ := newStore(t)
	back, err := s2.Pull(ctx, "oci-archive:"+file+":1", PullOptions{})
	if err != nil {
		t.Fatalf("pull the archive back: %v", err)
	}
	if back.Digest != img.Digest || len(back.Layers) != len(img.Layers) {
		t.Fatalf("round trip: %s (%d layers), want %s (%d)", back.Digest, len(back.Layers), img.Digest, len(img.Layers))
	}
}
