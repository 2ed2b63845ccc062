package lxctools

import (
	"context"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// AttachOpts are exec's options as lxc-attach takes them (the backends'
// ExecOpts: this package sits below the backend interface).
type AttachOpts struct {
	Detach        bool
	ConsoleSocket string // absolute path of an AF_UNIX socket, or ""
	PidFile       string
}

// Exec runs proc in the running container name with lxc-attach, the way
// runc exec does: in the foreground with our stdio (or a terminal), or
// detached; with a terminal and a console socket the pty master goes to
// the engine. It returns the exit status, or the pid when detached.
func (t Tools) Exec(_ context.Context, name string, proc *specs.Process, opts AttachOpts) (int, error) {
	cmd := t.Command("lxc-attach", AttachArgs(name, proc)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var sendMaster func() error
	if proc.Terminal && opts.ConsoleSocket != "" {
		// The engine wants the pty master: lxc-attach runs on a pty we
		// make, as its controlling terminal (with our stdio a terminal,
		// lxc-attach makes its own pty and needs nothing from us).
		send, cleanup, err := OnPty(cmd, opts.ConsoleSocket)
		if err != nil {
			return -1, errdefs.Wrap(errdefs.ErrInternal, err, "allocate a pty")
		}
		defer cleanup()
		sendMaster = send
	} else if proc.Terminal && opts.Detach {
		return -1, errdefs.New(errdefs.ErrInvalidArgument, "exec --tty --detach needs --console-socket to receive the pty")
	}
	if err := CloseExecFrom(3); err != nil {
		return -1, errdefs.Wrap(errdefs.ErrInternal, err, "close inherited descriptors")
	}
	if err := cmd.Start(); err != nil {
		return -1, errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "lxc-attach")
	}
	if sendMaster != nil {
		if err := sendMaster(); err != nil {
			_ = cmd.Process.Kill()
			return -1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--console-socket")
		}
	}
	if opts.PidFile != "" {
		if err := atomicfile.WritePidFile(opts.PidFile, cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			return -1, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "--pid-file")
		}
	}
	if opts.Detach {
		pid := cmd.Process.Pid
		_ = cmd.Process.Release()
		return pid, nil
	}
	return WaitStatus(cmd), nil
}
