package identifiers

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// (Moved from internal/store with the function it tests, assertions
// unchanged.)
func TestValidate(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"web-1", true},
		{"A_b+c-d.e", true},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"a..b", true},
		{"_x", true},
		{strings.Repeat("a", 1024), true},
		{"", false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{".lock", false},
		{"a/b", false},
		{"../etc", false},
		{"a b", false},
		{"a\n", false},
		{"a:b", false},
		{"é", false},
		{strings.Repeat("a", 1025), false},
	}
	for _, tt := range tests {
		name := tt.id
		if len(name) > 20 {
			name = fmt.Sprintf("%s...(%d)", name[:10], len(name))
		}
		t.Run(name, func(t *testing.T) {
			err := Validate(tt.id)
			if tt.ok && err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tt.id, err)
			}
			if !tt.ok {
				if err == nil {
					t.Errorf("Validate(%q) = nil, want error", tt.id)
				} else if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("Validate(%q) = %v, not ErrInvalidArgument", tt.id, err)
				}
			}
		})
	}
}
