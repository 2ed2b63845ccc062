package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// Environment of the re-executed test binary in TestReserveCrossProcess.
const (
	helperRootEnv = "PROXCAGE_STORE_TEST_HELPER_ROOT"
	helperGoEnv   = "PROXCAGE_STORE_TEST_HELPER_GO"
	helperID      = "contended"
)

// TestMain turns the test binary into a Reserve helper when re-executed by
// TestReserveCrossProcess: it waits for the start file, reserves helperID
// and exits 0 on success, 4 on AlreadyExists, 1 on anything else.
func TestMain(m *testing.M) {
	if root := os.Getenv(helperRootEnv); root != "" {
		os.Exit(reserveHelper(root, os.Getenv(helperGoEnv)))
	}
	os.Exit(m.Run())
}

func reserveHelper(root, goFile string) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "helper: start file never appeared")
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	s, err := Open(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	h, err := s.Reserve(&Record{ID: helperID, Backend: "native", Owner: fmt.Sprint(os.Getpid())})
	switch {
	case err == nil:
		// Hold the lock a little so losers overlap with a live winner.
		time.Sleep(50 * time.Millisecond)
		h.Unlock()
		return 0
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return 4
	default:
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestOpenCreatesPrivateRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root() != root {
		t.Errorf("Root() = %q, want %q", s.Root(), root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode = %v, want dir 0700", fi.Mode())
	}
	// A root under a regular file cannot be created.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "state")); err == nil {
		t.Error("Open under a regular file succeeded")
	}
}

func TestReserveLoadRoundTrip(t *testing.T) {
	s := openStore(t)
	created := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	rec := &Record{
		ID: "web", Backend: "native", RouteReason: "built-in default",
		Bundle: "/b", Rootfs: "/b/rootfs", Annotations: map[string]string{"k": "v"},
		Created: created, Owner: "root", Status: "bogus",
		Private: json.RawMessage(`{"vmid":101}`),
	}
	h, err := s.Reserve(rec)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	defer h.Unlock()
	if h.ID() != "web" || h.Dir() != filepath.Join(s.Root(), "web") {
		t.Errorf("handle id/dir = %q %q", h.ID(), h.Dir())
	}
	if rec.Status != StatusCreating {
		t.Errorf("Reserve did not set status: %q", rec.Status)
	}
	got, err := s.Load("web")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.ID != rec.ID || got.Backend != rec.Backend || got.RouteReason != rec.RouteReason ||
		got.Bundle != rec.Bundle || got.Rootfs != rec.Rootfs || got.Owner != rec.Owner ||
		!got.Created.Equal(created) || !reflect.DeepEqual(got.Annotations, rec.Annotations) {
		t.Errorf("Load = %+v, want %+v", got, rec)
	}
	if got.Status != StatusCreating {
		t.Errorf("Status = %q, want %q", got.Status, StatusCreating)
	}
	var priv map[string]int
	if err := json.Unmarshal(got.Private, &priv); err != nil || priv["vmid"] != 101 {
		t.Errorf("Private = %s (%v), want vmid 101", got.Private, err)
	}

	rec.Status = StatusCreated
	if err := h.Save(rec); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err = s.Load("web")
	if err != nil || got.Status != StatusCreated {
		t.Errorf("after Save: %+v, %v; want status created", got, err)
	}
	fi, err := os.Stat(filepath.Join(h.Dir(), recordName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode = %v (%v), want 0600", fi.Mode(), err)
	}
}

func TestReserveInvalidID(t *testing.T) {
	s := openStore(t)
	_, err := s.Reserve(&Record{ID: "../escape"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Reserve(../escape) = %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Root()), "escape")); !os.IsNotExist(err) {
		t.Errorf("Reserve created a directory outside the root (stat err %v)", err)
	}
}

func TestReserveTwice(t *testing.T) {
	s := openStore(t)
	h, err := s.Reserve(&Record{ID: "dup"})
	if err != nil {
		t.Fatal(err)
	}
	h.Unlock()
	_, err = s.Reserve(&Record{ID: "dup", Backend: "other"})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Reserve = %v, want ErrAlreadyExists", err)
	}
	if errdefs.ExitCode(err) != 4 {
		t.Errorf("exit code = %d, want 4", errdefs.ExitCode(err))
	}
	// The loser must not have touched the winner's record.
	rec, err := s.Load("dup")
	if err != nil || rec.Backend != "" {
		t.Errorf("record after losing Reserve = %+v, %v", rec, err)
	}
}

func TestReserveConcurrentGoroutines(t *testing.T) {
	s := openStore(t)
	const n = 16
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make(chan error, n)
		handles = make(chan *Handle, n)
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			h, err := s.Reserve(&Record{ID: "race", Owner: fmt.Sprint(i)})
			if h != nil {
				handles <- h
			}
			results <- err
		}(i)
	}
	close(start)
	wg.Wait()
	close(results)
	close(handles)
	wins, exists := 0, 0
	for err := range results {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, errdefs.ErrAlreadyExists):
			exists++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	for h := range handles {
		h.Unlock()
	}
	if wins != 1 || exists != n-1 {
		t.Errorf("wins = %d, already-exists = %d; want 1 and %d", wins, exists, n-1)
	}
	if _, err := s.Load("race"); err != nil {
		t.Errorf("winner's record not loadable: %v", err)
	}
}

func TestReserveCrossProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "state")
	goFile := filepath.Join(tmp, "go")
	const n = 8
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range cmds {
		c := exec.Command(exe, "-test.run=^$")
		c.Env = append(os.Environ(), helperRootEnv+"="+root, helperGoEnv+"="+goFile)
		outs[i] = &strings.Builder{}
		c.Stdout, c.Stderr = outs[i], outs[i]
		if err := c.Start(); err != nil {
			t.Fatalf("start helper %d: %v", i, err)
		}
		cmds[i] = c
	}
	// Release all helpers at once.
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wins, exists := 0, 0
	for i, c := range cmds {
		err := c.Wait()
		code := c.ProcessState.ExitCode()
		switch {
		case err == nil:
			wins++
		case code == 4:
			exists++
		default:
			t.Errorf("helper %d: %v (exit %d): %s", i, err, code, outs[i])
		}
	}
	if wins != 1 || exists != n-1 {
		t.Errorf("across %d processes: %d succeeded, %d got AlreadyExists; want 1 and %d", n, wins, exists, n-1)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Load(helperID)
	if err != nil {
		t.Fatalf("winner's record: %v", err)
	}
	if rec.Status != StatusCreating || rec.Owner == "" {
		t.Errorf("winner's record = %+v", rec)
	}
	recs, err := s.List()
	if err != nil || len(recs) != 1 {
		t.Errorf("List = %d records (%v), want 1", len(recs), err)
	}
}

func TestLockUnknown(t *testing.T) {
	s := openStore(t)
	for _, lock := range []struct {
		name string
		fn   func(string) error
	}{
		{"Lock", func(id string) error { _, err := s.Lock(id); return err }},
		{"TryLock", func(id string) error { _, _, err := s.TryLock(id); return err }},
		{"Load", func(id string) error { _, err := s.Load(id); return err }},
	} {
		err := lock.fn("nosuch")
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s(nosuch) = %v, want ErrNotFound", lock.name, err)
			continue
		}
		if !strings.Contains(err.Error(), `container "nosuch" does not exist`) {
			t.Errorf("%s(nosuch) message %q lacks runc's wording", lock.name, err)
		}
	}
	if _, err := os.Stat(s.Dir("nosuch")); !os.IsNotExist(err) {
		t.Errorf("Lock of an unknown id created its directory (stat err %v)", err)
	}
	if _, err := s.Lock("bad/id"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Lock(bad/id) = %v, want ErrInvalidArgument", err)
	}
}

func TestLockWaitsForHolder(t *testing.T) {
	s := openStore(t)
	h1, err := s.Reserve(&Record{ID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TryLock("c"); ok || err != nil {
		t.Fatalf("TryLock while reserved: ok=%v err=%v, want held", ok, err)
	}
	got := make(chan *Handle, 1)
	errc := make(chan error, 1)
	go func() {
		h, err := s.Lock("c")
		errc <- err
		got <- h
	}()
	select {
	case err := <-errc:
		t.Fatalf("Lock returned (%v) while another handle held the lock", err)
	case <-time.After(150 * time.Millisecond):
	}
	h1.Unlock()
	var h2 *Handle
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Lock after release: %v", err)
		}
		h2 = <-got
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not return after the holder released")
	}
	if _, ok, _ := s.TryLock("c"); ok {
		t.Error("TryLock succeeded while the waiter holds the lock")
	}
	h2.Unlock()
	h3, ok, err := s.TryLock("c")
	if !ok || err != nil {
		t.Fatalf("TryLock after all released: ok=%v err=%v", ok, err)
	}
	h3.Unlock()
	h3.Unlock() // idempotent
}

func TestRemove(t *testing.T) {
	s := openStore(t)
	h, err := s.Reserve(&Record{ID: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Dir(), "backend-private"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(s.Dir("gone")); !os.IsNotExist(err) {
		t.Errorf("state dir still there after Remove (stat err %v)", err)
	}
	if _, err := s.Lock("gone"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Lock after Remove = %v, want ErrNotFound", err)
	}
	if _, err := s.Load("gone"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Load after Remove = %v, want ErrNotFound", err)
	}
	// The id can be reserved again.
	h, err = s.Reserve(&Record{ID: "gone"})
	if err != nil {
		t.Fatalf("Reserve after Remove: %v", err)
	}
	h.Unlock()
}

func TestLockWaiterSeesRemove(t *testing.T) {
	s := openStore(t)
	h, err := s.Reserve(&Record{ID: "racy"})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		h2, err := s.Lock("racy")
		if h2 != nil {
			h2.Unlock()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the waiter block on the flock
	if err := h.Remove(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("waiting Lock after Remove = %v, want ErrNotFound", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Lock never returned")
	}
	if _, err := os.Stat(s.Dir("racy")); !os.IsNotExist(err) {
		t.Errorf("state dir reappeared after Remove raced with Lock (stat err %v)", err)
	}
}

func TestList(t *testing.T) {
	s := openStore(t)
	for _, id := range []string{"zeta", "alpha", "mid"} {
		h, err := s.Reserve(&Record{ID: id, Backend: "native"})
		if err != nil {
			t.Fatal(err)
		}
		h.Unlock()
	}
	// A reservation in progress: a directory without a record.
	if err := os.Mkdir(s.Dir("pending"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Files and dot-directories in the root are not containers.
	if err := os.WriteFile(filepath.Join(s.Root(), "stray-file"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Root(), ".hidden"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root(), ".hidden", recordName), []byte(`{"id":".hidden"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), rootLock)); err != nil {
		t.Fatalf("root lock file should exist after Reserve: %v", err)
	}
	recs, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if want := []string{"alpha", "mid", "zeta"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("List ids = %v, want %v", ids, want)
	}
}

func TestListEmptyAndCorrupt(t *testing.T) {
	s := openStore(t)
	recs, err := s.List()
	if err != nil || len(recs) != 0 {
		t.Fatalf("List of empty root = %v, %v", recs, err)
	}
	if err := os.Mkdir(s.Dir("broken"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir("broken"), recordName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Load("broken")
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !errors.Is(err, errdefs.ErrInternal) {
		t.Errorf("Load of corrupt record = %v, want internal 'corrupt' error", err)
	}
}

func TestConcurrentSaveNeverTorn(t *testing.T) {
	s := openStore(t)
	h, err := s.Reserve(&Record{ID: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			rec := &Record{ID: "busy", Owner: strings.Repeat("o", i%500), Status: StatusCreated}
			if err := h.Save(rec); err != nil {
				t.Errorf("Save: %v", err)
				return
			}
		}
	}()
	for i := 0; i < 500; i++ {
		if _, err := s.Load("busy"); err != nil {
			t.Errorf("Load during concurrent Save: %v", err)
			break
		}
	}
	close(done)
	wg.Wait()
}
