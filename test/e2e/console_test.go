package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleSocket listens where an engine would and returns the pty master
// that proxcage sends over it.
func consoleSocket(t *testing.T, dir string) (string, <-chan *os.File) {
	t.Helper()
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			close(ch)
			return
		}
		defer conn.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		buf := make([]byte, 256)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			close(ch)
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			close(ch)
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		if len(fds) != 1 {
			close(ch)
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return path, ch
}

func readUntil(t *testing.T, f *os.File, want string) string {
	t.Helper()
	var got bytes.Buffer
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) && !strings.Contains(got.String(), want) {
		_ = f.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _ := f.Read(buf)
		got.Write(buf[:n])
	}
	if !strings.Contains(got.String(), want) {
		t.Fatalf("pty output %q lacks %q", got.String(), want)
	}
	return got.String()
}

func TestConsoleSocketReceivesPtyMaster(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("b", []string{"sh", "-c", "tty; echo ready; read line; echo got:$line; sleep 1000"}, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	sock, ptyc := consoleSocket(t, e.dir)
	e.ok("create", "--bundle", b, "--console-socket", sock, "c1")
	var pty *os.File
	select {
	case pty = <-ptyc:
	case <-time.After(5 * time.Second):
	}
	if pty == nil {
		t.Fatal("no pty master received on the console socket")
	}
	defer pty.Close()
	e.ok("start", "c1")
	out := readUntil(t, pty, "ready")
	if !strings.Contains(out, "/dev/pts/0") {
		t.Fatalf("process is not on a pty: %q", out)
	}
	if _, err := pty.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, pty, "got:hello")

	// exec with a terminal, detached, through a second console socket
	sock2, ptyc2 := consoleSocket(t, t.TempDir())
	pidFile := filepath.Join(e.dir, "exec.pid")
	e.ok("exec", "--tty", "--detach", "--console-socket", sock2, "--pid-file", pidFile, "c1", "sh", "-c", "tty; echo exec-ok; sleep 5")
	pty2 := <-ptyc2
	if pty2 == nil {
		t.Fatal("no pty master for exec")
	}
	defer pty2.Close()
	out = readUntil(t, pty2, "exec-ok")
	if !strings.Contains(out, "/dev/pts/1") {
		t.Fatalf("exec not on its own pty: %q", out)
	}
	if data, err := os.ReadFile(pidFile); err != nil || len(data) == 0 {
		t.Fatalf("exec pid file: %q %v", data, err)
	}
	e.ok("delete", "-f", "c1")
}

// `run` in the foreground with process.terminal: proxcage makes the pty
// and copies it to its own terminal (script(1) gives it one here).
func TestRunForegroundWithTerminal(t *testing.T) {
	e := newEnv(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) from bsdutils")
	}
	b := e.bundle("b", []string{"sh", "-c", "tty; echo term-ok; exit 4"}, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	cmdline := strings.Join(append([]string{e.bin}, "--root", e.root, "--config", e.config, "run", "-b", b, "c1"), " ")
	out, err := exec.Command("script", "-qec", cmdline, "/dev/null").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 4 {
		t.Fatalf("exit: %v, output %q", err, out)
	}
	if !strings.Contains(string(out), "/dev/pts/0") || !strings.Contains(string(out), "term-ok") {
		t.Fatalf("output %q", out)
	}
	e.assertRootEmpty()
}
