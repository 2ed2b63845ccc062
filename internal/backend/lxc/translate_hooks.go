package lxc

// Translation of hooks.

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hooks: prestart and createRuntime run on the host after the container
// is set up (lxc.hook.start-host), createContainer in the container's
// mount namespace before pivot_root, where host paths still resolve
// (lxc.hook.mount). LXC runs a hook line with /bin/sh -c, so the runner
// and state directory are shell-quoted; lxc.hook.version = 1 passes LXC's
// own arguments in the environment instead of appending them to ours.
func (t *translator) hooks() {
	h := t.s.Hooks
	if h == nil {
		h = &specs.Hooks{}
	}
	if len(h.StartContainer) > 0 {
		t.fail("hooks.startContainer is not supported by the lxc backend (LXC's start hook runs inside the container, where the hook runner does not exist)")
		return
	}
	t.cfg.PostStart, t.cfg.PostStop = h.Poststart, h.Poststop
	type hook struct{ lxc, kind string }
	var want []hook
	if len(h.Prestart)+len(h.CreateRuntime) > 0 { //nolint:staticcheck // prestart is deprecated but still run
		want = append(want, hook{"start-host", "createRuntime"})
	}
	if len(h.CreateContainer) > 0 || len(t.cfg.Sysctl) > 0 {
		want = append(want, hook{"mount", "createContainer"})
	}
	if len(want) == 0 {
		return
	}
	if !path.IsAbs(t.set.HookRunner) || !path.IsAbs(t.set.StateDir) {
		t.fail("hooks: the lxc backend needs the hook runner and the state directory as absolute paths (got %q, %q)", t.set.HookRunner, t.set.StateDir)
		return
	}
	t.add("hooks", "lxc.hook.version", "1")
	for _, w := range want {
		t.add("hooks."+w.kind, "lxc.hook."+w.lxc, fmt.Sprintf("%s lxc-hook %s %s", shellQuote(t.set.HookRunner), shellQuote(t.set.StateDir), w.kind))
	}
}

// shellQuote quotes s for /bin/sh when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>(){}*?[]#~!%=") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
