package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// IsBind reports whether m is a bind mount: of type "bind", or with a
// "bind" or "rbind" option (runc's rule, which backends share).
func IsBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}
