package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/errdefs"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// OpenLayer returns the uncompressed stream of a stored layer. Reading it to
// EOF verifies the DiffID: a mismatch is returned instead of io.EOF.
func (s *Store) OpenLayer(l LayerInfo) (io.ReadCloser, error) {
	f, err := os.Open(s.blobPath(l.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.ErrNotFound, "layer %s is not in the image store", l.Digest)
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "open layer %s", l.Digest)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	comp := compressionOf(l.MediaType, br)
	var r io.Reader = br
	closeDec := func() {}
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "layer %s is not valid gzip", l.Digest)
		}
		r, closeDec = zr, func() { zr.Close() }
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "layer %s is not valid zstd", l.Digest)
		}
		r, closeDec = zr, zr.Close
	}
	return &diffIDReader{r: r, h: sha256.New(), l: l, close: func() error { closeDec(); return f.Close() }}, nil
}

// compressionOf follows the media type, sniffing the content only for types
// that do not say (e.g. Docker's generic layer type used by old tools).
func compressionOf(mt string, br *bufio.Reader) string {
	switch types.MediaType(mt) {
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer, types.DockerUncompressedLayer:
		return ""
	case types.OCILayerZStd:
		return "zstd"
	case types.OCILayer, types.OCIRestrictedLayer:
		return "gzip"
	}
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		return "gzip"
	case bytes.HasPrefix(magic, zstdMagic):
		return "zstd"
	}
	return ""
}

type diffIDReader struct {
	r     io.Reader
	h     hash.Hash
	l     LayerInfo
	close func() error
	err   error
}

func (d *diffIDReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(d.h.Sum(nil)); got != d.l.DiffID.Hex {
			err = errdefs.New(errdefs.ErrInvalidArgument,
				"layer %s: uncompressed content does not match its diff id %s", d.l.Digest, d.l.DiffID)
		}
	} else if err != nil {
		err = errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "read layer %s", d.l.Digest)
	}
	d.err = err
	return n, err
}

func (d *diffIDReader) Close() error { return d.close() }

// Rootfs returns DIR/rootfs/HEX for img, unpacking it first when missing:
// apply extracts each layer in order into a directory under tmp/, renamed
// into place only when complete. A flock per image makes concurrent callers,
// in any process, wait for one unpack; cached reports that none was needed.
func (s *Store) Rootfs(ctx context.Context, img *Image, apply func(root string, layer io.Reader, name string) error) (dir string, cached bool, err error) {
	final := s.path("rootfs", img.Digest.Hex)
	if isDir(final) {
		return final, true, nil
	}
	defer func() {
		if err != nil {
			err = errdefs.Wrap(errdefs.Category(err), err, "unpack image %s", img.Digest)
		}
	}()
	unlockGC, err := s.sharedGC()
	if err != nil {
		return "", false, err
	}
	defer unlockGC()
	unlock, err := lockCtx(ctx, s.path("rootfs", img.Digest.Hex+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if isDir(final) { // unpacked while we waited
		return final, true, nil
	}
	tmp, err := os.MkdirTemp(s.path("tmp"), "rootfs-"+short(img.Digest)+"-")
	if err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "create unpack directory")
	}
	defer func() {
		if err != nil {
			_ = removeAllForce(tmp) // best effort: the store sweeps tmp/
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "create unpack directory")
	}
	for i, l := range img.Layers {
		if err := ctx.Err(); err != nil {
			return "", false, errdefs.Wrap(errdefs.ErrUnavailable, err, "interrupted")
		}
		name := fmt.Sprintf("layer %d/%d (%s)", i+1, len(img.Layers), short(l.Digest))
		if err := s.applyLayer(tmp, l, name, apply); err != nil {
			return "", false, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", false, errdefs.Wrap(errdefs.ErrInternal, err, "move rootfs into place")
	}
	return final, false, nil
}

func (s *Store) applyLayer(root string, l LayerInfo, name string, apply func(string, io.Reader, string) error) error {
	rc, err := s.OpenLayer(l)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := apply(root, rc, name); err != nil {
		var e *errdefs.Error
		if errors.As(err, &e) {
			return err
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "apply layer %s", l.Digest)
	}
	// A tar reader stops at the end-of-archive marker; read the padding
	// too so the DiffID is checked over the whole stream.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// lockCtx takes an exclusive flock on path, giving up when ctx ends.
func lockCtx(ctx context.Context, path string) (func(), error) {
	for {
		unlock, ok, err := lockFile(path, unix.LOCK_EX, true)
		if err != nil || ok {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, errdefs.Wrap(errdefs.ErrUnavailable, ctx.Err(), "wait for another unpack of the image")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
