package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func TestOpenLayer(t *testing.T) {
	s, _ := newStore(t)
	tars := [][]byte{
		tarOf(t, "gz", "gzip layer\n"),
		tarOf(t, "zst", "zstd layer\n"),
		tarOf(t, "raw", "uncompressed layer\n"),
	}
	img := storeImage(t, s, buildImage(t, "amd64", "kinds",
		gzipLayer(t, "gz", "gzip layer\n"), zstdLayer(t, "zst", "zstd layer\n"), rawLayer(t, "raw", "uncompressed layer\n")))
	wantTypes := []types.MediaType{types.DockerLayer, types.OCILayerZStd, types.OCIUncompressedLayer}
	for i, l := range img.Layers {
		if l.MediaType != string(wantTypes[i]) {
			t.Errorf("layer %d media type %s, want %s", i, l.MediaType, wantTypes[i])
		}
		rc, err := s.OpenLayer(l)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if !bytes.Equal(b, tars[i]) {
			t.Errorf("layer %d: uncompressed stream differs from the original tar", i)
		}
	}

	// A wrong DiffID shows only at EOF.
	for _, l := range img.Layers {
		l.DiffID = sha256Of([]byte("something else"))
		rc, err := s.OpenLayer(l)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
			t.Fatalf("early read failed: %v", err)
		}
		_, err = io.ReadAll(rc)
		rc.Close()
		wantCat(t, err, errdefs.ErrInvalidArgument)
	}

	missing := img.Layers[0]
	missing.Digest = sha256Of([]byte("absent"))
	_, err := s.OpenLayer(missing)
	wantCat(t, err, errdefs.ErrNotFound)
}

// countingUntar counts apply calls and optionally slows them down.
func countingUntar(n *atomic.Int64, delay time.Duration) func(string, io.Reader, string) error {
	return func(root string, r io.Reader, name string) error {
		n.Add(1)
		time.Sleep(delay)
		return untar(root, r, name)
	}
}

func TestRootfs(t *testing.T) {
	s, _ := newStore(t)
	img := storeImage(t, s, multiImage(t))
	ctx := context.Background()
	var calls atomic.Int64

	dir, cached, err := s.Rootfs(ctx, img, countingUntar(&calls, 0))
	if err != nil {
		t.Fatal(err)
	}
	if cached || dir != filepath.Join(s.Dir(), "rootfs", img.Digest.Hex) || calls.Load() != 3 {
		t.Fatalf("first Rootfs: %s cached=%v calls=%d", dir, cached, calls.Load())
	}
	for p, want := range map[string]string{"etc/os-release": "ID=test-v2\n", "etc/hostname": "box\n", "bin/sh": "#!fake shell\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "usr/share/data.txt")); err != nil || fi.Size() != 8*4096 {
		t.Errorf("middle layer missing: %v", err)
	}
	dir2, cached, err := s.Rootfs(ctx, img, countingUntar(&calls, 0))
	if err != nil || !cached || dir2 != dir || calls.Load() != 3 {
		t.Fatalf("second Rootfs: %s cached=%v calls=%d err=%v", dir2, cached, calls.Load(), err)
	}
	checkBlobs(t, s)
}

func TestRootfsConcurrent(t *testing.T) {
	s, _ := newStore(t)
	img := storeImage(t, s, multiImage(t))
	var calls, fresh atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	dirs := make([]string, 4)
	for i := range dirs {
		wg.Go(func() {
			<-start
			dir, cached, err := s.Rootfs(context.Background(), img, countingUntar(&calls, 20*time.Millisecond))
			if err != nil {
				t.Error(err)
			}
			if !cached {
				fresh.Add(1)
			}
			dirs[i] = dir
		})
	}
	close(start)
	wg.Wait()
	if calls.Load() != 3 || fresh.Load() != 1 {
		t.Errorf("4 concurrent callers: %d apply calls (want 3), %d unpacks (want 1)", calls.Load(), fresh.Load())
	}
	for _, d := range dirs {
		if d != dirs[0] {
			t.Errorf("callers got different dirs: %v", dirs)
		}
	}
	checkBlobs(t, s)
}

func TestRootfsFailure(t *testing.T) {
	s, _ := newStore(t)
	img := storeImage(t, s, multiImage(t))
	ctx := context.Background()
	final := filepath.Join(s.Dir(), "rootfs", img.Digest.Hex)

	boom := errors.New("disk full")
	n := 0
	_, _, err := s.Rootfs(ctx, img, func(root string, r io.Reader, name string) error {
		if n++; n == 2 {
			return boom
		}
		return untar(root, r, name)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the apply error", err)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Fatal("half rootfs visible")
	}
	checkBlobs(t, s) // tmp/ empty

	// A layer whose content does not match its DiffID is caught even
	// though the tar reader stops before EOF.
	bad := *img
	bad.Layers = append([]LayerInfo(nil), img.Layers...)
	bad.Layers[2].DiffID = sha256Of([]byte("wrong"))
	_, _, err = s.Rootfs(ctx, &bad, untar)
	wantCat(t, err, errdefs.ErrInvalidArgument)
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Fatal("rootfs of a bad layer visible")
	}
	checkBlobs(t, s)

	if _, cached, err := s.Rootfs(ctx, img, untar); err != nil || cached {
		t.Fatalf("retry: cached=%v err=%v", cached, err)
	}
}

func TestRootfsCanceledWhileWaiting(t *testing.T) {
	s, _ := newStore(t)
	img := storeImage(t, s, multiImage(t))
	unlock, _, err := lockFile(s.path("rootfs", img.Digest.Hex+".lock"), unix.LOCK_EX, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = s.Rootfs(ctx, img, untar)
	wantCat(t, err, errdefs.ErrUnavailable)
}

// rootfsHelperEnv makes the test binary a Rootfs caller in another process:
// STOREDIR|DIGEST|COUNTFILE|STARTFILE.
const rootfsHelperEnv = "PROXCAGE_IMAGE_TEST_ROOTFS_HELPER"

func TestMain(m *testing.M) {
	if v := os.Getenv(rootfsHelperEnv); v != "" {
		os.Exit(rootfsHelper(v))
	}
	os.Exit(m.Run())
}

func rootfsHelper(v string) int {
	parts := strings.Split(v, "|")
	dir, digest, count, start := parts[0], parts[1], parts[2], parts[3]
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "helper: start file never appeared")
			return 1
		}
	}
	s, err := Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	img, err := s.Get(digest)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	_, _, err = s.Rootfs(context.Background(), img, func(root string, r io.Reader, name string) error {
		f, err := os.OpenFile(count, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, os.Getpid(), name)
		f.Close()
		time.Sleep(20 * time.Millisecond)
		return untar(root, r, name)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func TestRootfsCrossProcess(t *testing.T) {
	s, _ := newStore(t)
	img := storeImage(t, s, multiImage(t))
	work := t.TempDir()
	count, start := filepath.Join(work, "count"), filepath.Join(work, "start")
	var cmds []*exec.Cmd
	for range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), rootfsHelperEnv+"="+strings.Join([]string{s.Dir(), img.Digest.String(), count, start}, "|"))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	if err := os.WriteFile(start, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}
	b, _ := os.ReadFile(count)
	if lines := strings.Count(string(b), "\n"); lines != 3 {
		t.Errorf("4 processes made %d apply calls, want 3 (one unpack):\n%s", lines, b)
	}
	if _, cached, err := s.Rootfs(context.Background(), img, untar); err != nil || !cached {
		t.Errorf("after the helpers: cached=%v err=%v", cached, err)
	}
	checkBlobs(t, s)
}
