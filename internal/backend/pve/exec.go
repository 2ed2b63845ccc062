package pve

import (
	"errors"
	"os/exec"
	"syscall"
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
