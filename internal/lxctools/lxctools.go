// Package lxctools drives the LXC command-line tools (lxc-info,
// lxc-attach, lxc-execute, lxc-stop, lxc-wait) and holds what every LXC
// user in proxcage shares: the lxc backend, the pve backend (a PVE CT is
// an LXC container on its node) and the pct test double. It also holds the
// host-side process helpers those need: the processes of a container's
// cgroup, pidfd signals, ptys handed to a console socket.
package lxctools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Tools runs the LXC tools against one lxcpath.
type Tools struct {
	// Bin maps a tool name ("lxc-info") to the program to run; nil means
	// the name itself, looked up in PATH.
	Bin func(tool string) string
	// LXCPath is passed as -P; "" leaves LXC's default (/var/lib/lxc, a PVE
	// node's).
	LXCPath string
	// Timeout bounds each call (0: none beyond the context).
	Timeout time.Duration
}

func (t Tools) bin(tool string) string {
	if t.Bin != nil {
		return t.Bin(tool)
	}
	return tool
}

// Args returns tool's argv: -P LXCPATH first when set.
func (t Tools) Args(args ...string) []string {
	if t.LXCPath == "" {
		return args
	}
	return append([]string{"-P", t.LXCPath}, args...)
}

// Command returns an unstarted command for tool with args (-P added).
func (t Tools) Command(tool string, args ...string) *exec.Cmd {
	return exec.Command(t.bin(tool), t.Args(args...)...)
}

// Error is a failed tool call with its own words.
type Error struct {
	Tool   string
	Code   int
	Stderr string
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Tool + ": " + msg
}

// Run runs tool under the timeout and returns its stdout.
func (t Tools) Run(ctx context.Context, tool string, args ...string) (string, error) {
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, t.bin(tool), t.Args(args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return so.String(), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return so.String(), &Error{Tool: filepath.Base(tool), Code: ee.ExitCode(), Stderr: se.String()}
	}
	return so.String(), fmt.Errorf("%s: %w", filepath.Base(tool), err)
}

// State is the container's LXC state (RUNNING, STOPPED, FROZEN, ...), as
// ParseState reads it.
func (t Tools) State(ctx context.Context, name string) (string, error) {
	out, err := t.Run(ctx, "lxc-info", StateArgs(name)...)
	var le *Error
	stderr := ""
	if errors.As(err, &le) {
		stderr = le.Stderr
	}
	return ParseState(out, stderr, err)
}

// StateArgs is the argv of `lxc-info` (-P aside) that prints container
// name's state, for ParseState.
func StateArgs(name string) []string { return []string{"-n", name, "-s", "-H"} }

// ParseState reads one StateArgs call of lxc-info: its stdout and, when it
// failed with err, its stderr. A container LXC does not know is STOPPED:
// lxc-info says one never started on this host "doesn't exist" (LXC 6
// lxc_info.c), and no monitor of it listens. Any other failure is err.
func ParseState(stdout, stderr string, err error) (string, error) {
	switch {
	case err == nil:
		return strings.TrimSpace(stdout), nil
	case strings.Contains(stderr, "doesn't exist"):
		return "STOPPED", nil
	}
	return "", err
}

// Pid is the host pid of the container's init, 0 when it does not run.
func (t Tools) Pid(ctx context.Context, name string) (int, error) {
	out, err := t.Run(ctx, "lxc-info", "-n", name, "-p", "-H")
	var le *Error
	if errors.As(err, &le) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return ParsePid(out), nil
}

// ParsePid reads `lxc-info -p -H` output: a number, or nothing.
func ParsePid(out string) int {
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// AttachArgs is lxc-attach's argv (without -P) to run proc in container
// name: a clean environment of exactly proc.Env, proc's uid and gid. LXC
// has no working-directory option: a cwd other than / is entered through
// the container's /bin/sh.
func AttachArgs(name string, proc *specs.Process) []string {
	args := []string{"-n", name, "--clear-env"}
	for _, e := range proc.Env {
		args = append(args, "-v", e)
	}
	args = append(args, "-u", strconv.Itoa(int(proc.User.UID)), "-g", strconv.Itoa(int(proc.User.GID)), "--")
	if proc.Cwd != "" && proc.Cwd != "/" {
		args = append(args, "/bin/sh", "-c", `cd "$0" && exec "$@"`, proc.Cwd)
	}
	return append(args, proc.Args...)
}

// EscapeMountPath octal-escapes what fstab syntax (lxc.mount.entry) cannot
// hold in a path.
func EscapeMountPath(p string) string {
	r := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)
	return r.Replace(p)
}
