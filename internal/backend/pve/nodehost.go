package pve

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/lxctools"
)

// nodeHost is what works only on a CT's own node, where its processes are
// this host's: the host pid of its init (lxc-info), signals through a
// pidfd, the pids of its cgroup, and lxc-attach. PVE has no API for any of
// it. A transport hands one out (transport.local) only when proxcage runs
// on the CT's node; a PVE CT is LXC container VMID in the default lxcpath.
type nodeHost struct {
	tools tools // lxc-info and lxc-attach, under the call timeout
}

// initPid is the host pid of CT vmid's init. A CT that does not run has
// none: that is a failed precondition.
func (h *nodeHost) initPid(ctx context.Context, vmid int) (int, error) {
	out, err := h.tools.run(ctx, vmid, h.tools.lxcInfo, "-n", strconv.Itoa(vmid), "-p", "-H")
	if err != nil {
		return 0, err
	}
	pid := lxctools.ParsePid(out)
	if pid == 0 {
		return 0, errdefs.New(errdefs.ErrFailedPrecondition, "lxc-info printed no pid for CT %d (%q): not running?", vmid, strings.TrimSpace(out))
	}
	return pid, nil
}

// signal sends sig to CT vmid's init, and with all to every process of its
// cgroup. A pidfd pins the init, so a recycled pid is never hit. A CT that
// does not run is a failed precondition. No status call is needed first:
// lxc-info fails on a stopped CT.
func (h *nodeHost) signal(ctx context.Context, vmid int, sig unix.Signal, all bool) error {
	pid, err := h.initPid(ctx, vmid)
	if err != nil {
		return err
	}
	if err := lxctools.SignalInit(pid, sig, all); err != nil {
		if errors.Is(err, lxctools.ErrNotRunning) {
			return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "kill CT %d", vmid)
		}
		return errdefs.Wrap(errdefs.ErrInternal, err, "kill CT %d", vmid)
	}
	return nil
}

// pids lists the host pids of CT vmid's processes (its init's cgroup).
func (h *nodeHost) pids(ctx context.Context, vmid int) ([]int, error) {
	pid, err := h.initPid(ctx, vmid)
	if err != nil {
		return nil, err
	}
	pids, err := lxctools.CgroupPids(pid)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list CT %d processes", vmid)
	}
	return pids, nil
}

// exec runs proc in CT vmid with lxc-attach and returns its exit status.
func (h *nodeHost) exec(ctx context.Context, vmid int, proc *specs.Process, opts backend.ExecOpts) (int, error) {
	lt := lxctools.Tools{Bin: func(string) string { return h.tools.lxcAttach }}
	return lt.Exec(ctx, strconv.Itoa(vmid), proc, lxctools.AttachOpts{Detach: opts.Detach, ConsoleSocket: opts.ConsoleSocket, PidFile: opts.PidFile})
}

// onNode returns the node-local operations on the container's CT, or, when
// proxcage does not run on the CT's node, an error saying what needs it
// and where to run instead.
func (b *Backend) onNode(p private, what string) (*nodeHost, error) {
	if h := b.tr.local(p.Node); h != nil {
		return h, nil
	}
	return nil, &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
		Msg:  fmt.Sprintf("%s needs the CT's processes, which the PVE API does not reach (CT %d is on node %s)", what, p.VMID, p.Node),
		Hint: "run proxcage on " + p.Node + " (transport \"pct\"), or use `pct enter " + strconv.Itoa(p.VMID) + "` there"}
}

// lxcState is LXC's state of CT vmid (RUNNING, STOPPED, FROZEN, ...), as
// lxctools.ParseState reads it (a CT never started here is STOPPED),
// through this node's runner: its timeout and classified errors.
func (h *nodeHost) lxcState(ctx context.Context, vmid int) (string, error) {
	out, err := h.tools.run(ctx, vmid, h.tools.lxcInfo, lxctools.StateArgs(strconv.Itoa(vmid))...)
	var te *toolError
	stderr := ""
	if errors.As(err, &te) {
		stderr = te.Stderr
	}
	return lxctools.ParseState(out, stderr, err)
}
