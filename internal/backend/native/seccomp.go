//go:build seccomp

package native

import (
	"fmt"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

const seccompCompiledIn = true

func seccompVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}
