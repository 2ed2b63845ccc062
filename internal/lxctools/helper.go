package lxctools

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// FindHelper finds a helper program of proxcage's (proxcage-lxc-init, the
// static init the lxc backend and pve keepers put into containers): next
// to the proxcage binary runner (a build tree's bin/), in
// ../libexec/proxcage/ from it (where `make install` and the Debian
// package put a helper no user runs), or in PATH.
func FindHelper(runner, name string) (string, error) {
	dir := filepath.Dir(runner)
	for _, p := range []string{
		filepath.Join(dir, name),
		filepath.Join(dir, "..", "libexec", "proxcage", name),
	} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	return "", &errdefs.Error{Cat: errdefs.ErrFailedPrecondition,
		Msg:  name + " not found next to " + runner + ", in " + filepath.Join(filepath.Dir(dir), "libexec", "proxcage") + " or in PATH",
		Hint: "build it with `make build` (CGO_ENABLED=0 go build ./cmd/" + name + ") and install it beside proxcage, or run `make install`"}
}
