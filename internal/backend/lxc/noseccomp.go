//go:build !seccomp

package lxc

import (
	"errors"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const seccompBuilt = false

func compileSeccomp(*specs.LinuxSeccomp, *os.File) error {
	return errors.New("linux.seccomp: this proxcage was built without seccomp support (build with -tags seccomp)")
}
