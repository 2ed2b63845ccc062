package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair, or skips the test.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("no pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { sl.Close() })
	unix.IoctlSetWinsize(int(sl.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	return m, sl
}

func TestPullProgressBars(t *testing.T) {
	master, slave := openPTY(t)
	var out syncBuffer
	go io.Copy(&out, master) // ends when the test closes the master

	s, logs := newStore(t)
	reg := newRegistry(t)
	img := multiImage(t)
	reg.push(t, "test/multi:v1", img)
	ref := reg.host + "/test/multi:v1"
	ctx := context.Background()
	layers, _ := img.Layers()

	if _, err := s.Pull(ctx, ref, PullOptions{Progress: slave}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, short(digestOf(t, layers[2])))
	for _, l := range layers {
		if !strings.Contains(out.String(), short(digestOf(t, l))) {
			t.Errorf("no bar for layer %s in %q", short(digestOf(t, l)), out.String())
		}
	}
	if strings.Contains(logs.String(), "fetched layer") {
		t.Error("per-layer log lines written alongside bars")
	}

	// Everything stored: the bars say so.
	if _, err := s.Pull(ctx, ref, PullOptions{Progress: slave}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "exists")

	// Quiet, or a writer that is not a terminal: no bars, log lines.
	s2, logs2 := newStore(t)
	var plain bytes.Buffer
	if _, err := s2.Pull(ctx, ref, PullOptions{Progress: &plain}); err != nil {
		t.Fatal(err)
	}
	if plain.Len() != 0 || strings.Count(logs2.String(), "fetched layer") != 3 {
		t.Errorf("non-terminal: %d bytes of bars, logs:\n%s", plain.Len(), logs2)
	}
	time.Sleep(50 * time.Millisecond) // let the pty drain
	before := out.String()
	s3, logs3 := newStore(t)
	if _, err := s3.Pull(ctx, ref, PullOptions{Progress: slave, Quiet: true}); err != nil {
		t.Fatal(err)
	}
	if out.String() != before || strings.Count(logs3.String(), "fetched layer") != 3 {
		t.Errorf("quiet pull drew bars or did not log")
	}
}

func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	for range 200 {
		if strings.Contains(out.String(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("terminal output never showed %q: %q", want, out.String())
}
