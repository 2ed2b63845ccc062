package pve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeLxcInfo is an lxc-info that says the CT has stopped.
func fakeLxcInfo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lxc-info")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho STOPPED\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The keeper's directory as the wrapper finds it: the process, fifos
// owned by the CT's uid, the files it writes; then the keeper relays what
// the wrapper writes (played here by the test) and returns its status.
func TestKeeperRelaysAndReturnsTheStatus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the keeper's fifos are chowned to the CT's uid")
	}
	helper := filepath.Join(t.TempDir(), "init")
	os.WriteFile(helper, []byte("wrapper"), 0o755)
	for _, c := range []struct {
		name     string
		exit     string
		terminal bool
		want     int
	}{{"exit 7", "7\n", false, 7}, {"no status: init killed", "", false, 137}, {"terminal", "0\n", true, 0}} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "k")
			kp := &KeeperProcess{Args: []string{"/bin/app", "a b"}, Cwd: "/srv", UID: 33, GID: 34}
			if err := prepareKeeper(dir, helper, kp, c.terminal, unprivilegedRoot, keeperConfig{VMID: 123, LxcInfo: fakeLxcInfo(t)}); err != nil {
				t.Fatal(err)
			}
			pf, _ := os.ReadFile(filepath.Join(dir, "process.json"))
			if !strings.Contains(string(pf), `"args":["/bin/app","a b"]`) || !strings.Contains(string(pf), `"cwd":"/srv"`) {
				t.Fatalf("process.json: %s", pf)
			}
			names := []string{"stdout", "stderr", "started", "exit"}
			if c.terminal {
				names = []string{"stdout", "stdin", "started", "exit"}
				if _, err := os.Stat(filepath.Join(dir, "stderr")); err == nil {
					t.Fatal("a terminal got a stderr fifo")
				}
			}
			for _, n := range names {
				fi, err := os.Stat(filepath.Join(dir, n))
				if err != nil {
					t.Fatal(err)
				}
				// The CT's process (uid 33 in the CT) opens them: host uid
				// 100033 in PVE's map.
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != 100033 || st.Gid != 100034 || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: owner %d:%d mode %v, want 100033:100034 0600", n, st.Uid, st.Gid, fi.Mode().Perm())
				}
			}
			outR, outW, _ := os.Pipe()
			errR, errW, _ := os.Pipe()
			inR, inW, _ := os.Pipe()
			inW.Close()
			type result struct {
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				code, err := RunKeeper(context.Background(), dir, Stdio{In: inR, Out: outW, Err: errW})
				outW.Close()
				errW.Close()
				done <- result{code, err}
			}()
			// The wrapper: open the fifos, write, record, exit.
			w := func(name, s string) {
				f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
					return
				}
				f.WriteString(s)
				f.Close()
			}
			os.WriteFile(filepath.Join(dir, "exit"), []byte(c.exit), 0o600)
			w("stdout", "out\n")
			if !c.terminal {
				w("stderr", "err\n")
			}
			select {
			case r := <-done:
				if r.err != nil || r.code != c.want {
					t.Fatalf("keeper returned %d, %v; want %d", r.code, r.err, c.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("keeper did not return")
			}
			o := make([]byte, 64)
			n, _ := outR.Read(o)
			if string(o[:n]) != "out\n" {
				t.Errorf("stdout relayed %q", o[:n])
			}
			if !c.terminal {
				n, _ = errR.Read(o)
				if string(o[:n]) != "err\n" {
					t.Errorf("stderr relayed %q", o[:n])
				}
			}
		})
	}
}

// TestKeeperWaitsWhileTheCTStops: the keeper's last wait asks lxc-info
// until the CT is neither running nor stopping; a CT LXC no longer knows
// ends it, and so does an lxc-info that fails for another reason.
func TestKeeperWaitsWhileTheCTStops(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	tool := filepath.Join(dir, "lxc-info")
	// Calls 1 and 2: RUNNING, STOPPING; then as the last line says.
	script := `#!/bin/sh
echo x >>` + calls + `
case $(wc -l <` + calls + `) in
1) echo RUNNING ;;
2) echo STOPPING ;;
*) eval "$LAST" ;;
esac
`
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, last := range []string{`echo "$2 doesn't exist" >&2; exit 1`, `echo "no access" >&2; exit 1`, `echo STOPPED`} {
		_ = os.Remove(calls)
		t.Setenv("LAST", last)
		start := time.Now()
		waitStopped(context.Background(), keeperConfig{VMID: 123, LxcInfo: tool})
		data, _ := os.ReadFile(calls)
		if n := strings.Count(string(data), "x"); n != 3 || time.Since(start) > 10*time.Second {
			t.Fatalf("%s: %d calls of lxc-info in %v, want 3", last, n, time.Since(start))
		}
	}
}
