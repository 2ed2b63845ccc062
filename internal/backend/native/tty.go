package native

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// stdio holds what a process's standard streams need while proxcage runs:
// closers to run once the process has started, and for a foreground
// terminal the copy loops between the host terminal and the pty.
// It follows runc's tty.go, which lives in runc's main package.
type stdio struct {
	postStart []io.Closer
	consoleC  chan error // foreground terminal: result of receiving the pty master

	host    console.Console
	epoller *console.Epoller
	pty     *console.EpollConsole
	wg      sync.WaitGroup
}

// dialConsoleSocket connects to the engine's console socket; libcontainer
// sends the pty master through it.
func dialConsoleSocket(path string) (*os.File, *stdio, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return f, &stdio{postStart: []io.Closer{conn, f}}, nil
}

// foregroundConsole prepares a pty for `run`/`exec` in the foreground: the
// master comes back to us over a socketpair and we copy it to our terminal.
func foregroundConsole() (*os.File, *stdio, error) {
	s := &stdio{}
	for _, f := range []*os.File{os.Stderr, os.Stdout, os.Stdin} {
		if c, err := console.ConsoleFromFile(f); err == nil {
			s.host = c
			break
		}
	}
	if s.host == nil {
		f, err := os.Open("/dev/tty")
		if err != nil {
			return nil, nil, errors.New("process.terminal is true but proxcage has no terminal: run with a tty, use --detach with --console-socket, or set terminal to false")
		}
		c, err := console.ConsoleFromFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("host terminal: %w", err)
		}
		s.host = c
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "console-parent")
	child := os.NewFile(uintptr(fds[1]), "console-child")
	s.postStart = append(s.postStart, parent, child)
	s.consoleC = make(chan error, 1)
	go func() { s.consoleC <- s.receive(parent) }()
	return child, s, nil
}

func (s *stdio) receive(sock *os.File) error {
	f, err := recvFile(sock)
	if err != nil {
		return err
	}
	c, err := console.ConsoleFromFile(f)
	if err != nil {
		return err
	}
	if err := console.ClearONLCR(c.Fd()); err != nil {
		return err
	}
	ep, err := console.NewEpoller()
	if err != nil {
		return err
	}
	ec, err := ep.Add(c)
	if err != nil {
		return err
	}
	go func() { _ = ep.Wait() }()
	go func() { _, _ = io.Copy(ec, os.Stdin) }()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _ = io.Copy(os.Stdout, ec)
	}()
	if err := s.host.SetRaw(); err != nil {
		ec.Close()
		return fmt.Errorf("set host terminal raw: %w", err)
	}
	s.epoller, s.pty = ep, ec
	_ = s.pty.ResizeFrom(s.host)
	return nil
}

// started is called once the process runs: it waits for the pty (if any)
// and drops our copies of the fds handed to the process.
func (s *stdio) started() error {
	var err error
	if s.consoleC != nil {
		err = <-s.consoleC
	}
	for _, c := range s.postStart {
		_ = c.Close()
	}
	s.postStart = nil
	return err
}

func (s *stdio) resize() {
	if s.pty != nil && s.host != nil {
		_ = s.pty.ResizeFrom(s.host)
	}
}

// close flushes the pty output and restores the host terminal.
func (s *stdio) close() {
	for _, c := range s.postStart {
		_ = c.Close()
	}
	if s.pty != nil && s.epoller != nil {
		_ = s.pty.Shutdown(s.epoller.CloseConsole)
	}
	s.wg.Wait()
	if s.pty != nil {
		_ = s.pty.Close()
	}
	if s.host != nil {
		_ = s.host.Reset()
	}
}

// recvFile receives one fd sent with SCM_RIGHTS.
func recvFile(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive console: bad control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive console: bad rights (%v)", err)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
