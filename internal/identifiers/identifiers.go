// Package identifiers checks container ids, the one rule the state store,
// the image store's users and the CLI share, and derives the one hostname
// of an id that every backend gives. Like containerd's package of the same
// name, it imports only errdefs.
package identifiers

import (
	"regexp"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// validID follows runc's rule, minus a leading dot (reserved for the
// store's own files).
var validID = regexp.MustCompile(`^[A-Za-z0-9_+\-][A-Za-z0-9_+\-.]*$`)

// Validate checks a container id.
func Validate(id string) error {
	if id == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "container id must not be empty")
	}
	if len(id) > 1024 || !validID.MatchString(id) {
		return errdefs.New(errdefs.ErrInvalidArgument,
			"invalid container id %q: use letters, digits, '_', '+', '-', '.', not starting with '.'", id)
	}
	return nil
}
