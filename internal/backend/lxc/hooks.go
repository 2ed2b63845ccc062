package lxc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	var hooks specs.Hooks
	if data, err := os.ReadFile(filepath.Join(stateDir, hooksFile)); err == nil {
		if err := json.Unmarshal(data, &hooks); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if kind == "createContainer" {
		if err := writeSysctls(stateDir); err != nil {
			return err
		}
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

// sysctlFile holds the container's sysctls (Config.Sysctl).
const sysctlFile = "sysctl.json"

// writeSysctls writes the container's sysctls from the mount hook: in the
// container's namespaces, through the host's /proc (still ours before
// pivot_root, and writable), where a net.*, IPC or domain name sysctl is
// the namespace's of the writer.
func writeSysctls(stateDir string) error {
	data, err := os.ReadFile(filepath.Join(stateDir, sysctlFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var sc map[string]string
	if err := json.Unmarshal(data, &sc); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(sc)) {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(sc[k]), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s=%s: %w", k, sc[k], err)
		}
	}
	return nil
}
