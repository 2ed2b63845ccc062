package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/proc"
)

func TestWriteReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, d := range []string{"one", "two"} {
		if err := Write(p, []byte(d), Options{Perm: 0o644, Durable: d == "two"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != d {
			t.Fatalf("content %q, want %q", got, d)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestWriteFromFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("old"), 0o600)
	boom := errors.New("boom")
	if err := WriteFrom(p, Options{}, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("target changed to %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestNoReplaceAndTempDir(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Write(p, []byte("first"), Options{NoReplace: true, TempDir: tmp}); err != nil {
		t.Fatal(err)
	}
	err := Write(p, []byte("second"), Options{NoReplace: true, TempDir: tmp})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second NoReplace write: %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "first" {
		t.Fatalf("content %q", got)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("temp files left in TempDir: %v", ents)
	}
}

// A killed writer's temp file is proven dead by its stamp and swept; a
// live writer's and a stranger's file are not.
func TestSweepDead(t *testing.T) {
	dir := t.TempDir()
	c := exec.Command("/bin/true")
	if err := c.Start(); err != nil {
		t.Skip(err)
	}
	pid := c.Process.Pid
	start, err := proc.StartTime(pid)
	c.Wait()
	if err != nil {
		t.Skip("the child was gone before its start time was read")
	}
	dead := ".f.tmp-" + strconv.Itoa(pid) + "." + strconv.FormatUint(start, 10) + "-123"
	live := ".f.tmp-" + proc.Stamp() + "-456"
	for _, n := range []string{dead, live, ".f.tmp-789", "other"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	if got := SweepDead(dir, TempPrefix("f")); len(got) != 1 || got[0] != dead {
		t.Fatalf("swept %v, want only %s", got, dead)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Fatalf("left %v", ents)
	}
}

// (Moved from internal/store with the function they test, assertions
// unchanged.)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	for i, content := range []string{"first version, longer", "second"} {
		if err := Write(p, []byte(content), Options{Perm: 0o640}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		data, err := os.ReadFile(p)
		if err != nil || string(data) != content {
			t.Errorf("write %d: content %q (%v), want %q", i, data, err, content)
		}
		if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"f.json"}) {
			t.Errorf("write %d: directory holds %v, want only f.json (temp file left behind?)", i, names)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v (%v), want 0640", fi.Mode(), err)
	}
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	t.Run("missing directory", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "no", "such", "f")
		if err := Write(p, []byte("x"), Options{}); err == nil {
			t.Fatal("Write into a missing directory succeeded")
		}
	})
	t.Run("target is a directory", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "sub")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(target, "keep"), []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := Write(target, []byte("x"), Options{})
		if err == nil {
			t.Fatal("Write over a non-empty directory succeeded")
		}
		if !strings.Contains(err.Error(), target) {
			t.Errorf("error %q does not name %s", err, target)
		}
		if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"sub"}) {
			t.Errorf("directory holds %v after failed write, want only sub", names)
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
