package pve

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

func execCommand(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }

// waitStatus waits for cmd and returns its exit status the way a shell
// reports it (128+signal when killed).
func waitStatus(cmd *exec.Cmd) int {
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}

// openPty returns a new pty's master and slave.
func openPty() (master console.Console, slave *os.File, err error) {
	master, name, err := console.NewPty()
	if err != nil {
		return nil, nil, err
	}
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// sendFd sends f's descriptor over the AF_UNIX socket at path (SCM_RIGHTS),
// as runc does with a pty master for --console-socket.
func sendFd(path string, f console.Console) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("console socket %s: %w", path, err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	rights := unix.UnixRights(int(f.Fd()))
	_, _, err = uc.WriteMsgUnix([]byte(f.Name()), rights, nil)
	return err
}
