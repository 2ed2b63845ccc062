package lxc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// OCI hooks get the container's state on stdin; LXC's hooks get their
// arguments and LXC_* variables. So LXC runs `proxcage lxc-hook STATEDIR
// KIND` (see translate.go), which runs the OCI hooks of that kind from
// STATEDIR/hooks.json with the state from STATEDIR/hookstate.json, the
// pid taken from LXC_PID.
const (
	hooksFile     = "hooks.json"
	hookStateFile = "hookstate.json"
)

func writeHookState(dir string, st specs.State) error {
	data, _ := json.Marshal(st)
	return os.WriteFile(filepath.Join(dir, hookStateFile), data, 0o600)
}

// RunHooks runs the OCI hooks of kind (createRuntime, which also runs the
// deprecated prestart first, as runc does; or createContainer) for the
// container whose LXC files are in stateDir. It is the `lxc-hook` command.
func RunHooks(ctx context.Context, stateDir, kind string) error {
	data, err := os.ReadFile(filepath.Join(stateDir, hooksFile))
	if err != nil {
		return err
	}
	var hooks specs.Hooks
	if err := json.Unmarshal(data, &hooks); err != nil {
		return err
	}
	var st specs.State
	if data, err := os.ReadFile(filepath.Join(stateDir, hookStateFile)); err == nil {
		_ = json.Unmarshal(data, &st)
	}
	st.Status = specs.StateCreating
	if pid, err := strconv.Atoi(os.Getenv("LXC_PID")); err == nil {
		st.Pid = pid
	}
	var list []specs.Hook
	switch kind {
	case "createRuntime":
		list = append(append(list, hooks.Prestart...), hooks.CreateRuntime...) //nolint:staticcheck // prestart is deprecated but still honoured
	case "createContainer":
		list = hooks.CreateContainer
	default:
		return fmt.Errorf("unknown hook kind %q", kind)
	}
	for _, h := range list {
		if err := runHook(ctx, h, st); err != nil {
			return fmt.Errorf("%s hook %s: %w", kind, h.Path, err)
		}
	}
	return nil
}

// runHook runs one OCI hook with the state on stdin, within its timeout.
func runHook(ctx context.Context, h specs.Hook, st specs.State) error {
	if h.Timeout != nil && *h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = h.Env
	data, _ := json.Marshal(st)
	cmd.Stdin = bytes.NewReader(data)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if msg := bytes.TrimSpace(out.Bytes()); len(msg) > 0 {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
