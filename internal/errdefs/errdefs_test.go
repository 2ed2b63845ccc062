package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
)

var categories = []struct {
	name string
	cat  error
	code int
}{
	{"internal", ErrInternal, 1},
	{"invalid argument", ErrInvalidArgument, 2},
	{"not found", ErrNotFound, 3},
	{"already exists", ErrAlreadyExists, 4},
	{"failed precondition", ErrFailedPrecondition, 5},
	{"unavailable", ErrUnavailable, 6},
	{"permission denied", ErrPermissionDenied, 7},
}

func TestExitCodePerCategory(t *testing.T) {
	for _, c := range categories {
		t.Run(c.name, func(t *testing.T) {
			forms := map[string]error{
				"sentinel":  c.cat,
				"New":       New(c.cat, "boom %d", 1),
				"Wrap":      Wrap(c.cat, errors.New("cause"), "op"),
				"Context":   Context(New(c.cat, "boom"), "create", "web"),
				"WithHint":  WithHint(New(c.cat, "boom"), "do this"),
				"fmt %w":    fmt.Errorf("outer: %w", New(c.cat, "boom")),
				"all three": WithHint(Context(Wrap(c.cat, os.ErrClosed, "x"), "kill", "id"), "h"),
			}
			for form, err := range forms {
				if got := ExitCode(err); got != c.code {
					t.Errorf("%s: ExitCode = %d, want %d", form, got, c.code)
				}
				if got := Category(err); got != c.cat {
					t.Errorf("%s: Category = %v, want %v", form, got, c.cat)
				}
			}
		})
	}
}

func TestExitCodeUncategorised(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("plain"), 1},
		{"wrapped plain", fmt.Errorf("x: %w", os.ErrNotExist), 1},
		{"context of plain", Context(errors.New("plain"), "state", "x"), 1},
		{"hint on plain", WithHint(errors.New("plain"), "h"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if got := Category(errors.New("plain")); got != ErrInternal {
		t.Errorf("Category(plain) = %v, want ErrInternal", got)
	}
	if got := Category(nil); got != ErrInternal {
		t.Errorf("Category(nil) = %v, want ErrInternal", got)
	}
}

// The doc of Wrap says it "returns an error of category cat": the category
// the caller chose must win over a different category carried by the cause.
func TestWrapOuterCategoryWins(t *testing.T) {
	tests := []struct {
		outer, inner error
		code         int
	}{
		{ErrNotFound, ErrInvalidArgument, 3},
		{ErrInternal, ErrNotFound, 1},
		{ErrPermissionDenied, ErrInvalidArgument, 7},
	}
	for _, tt := range tests {
		err := Wrap(tt.outer, New(tt.inner, "inner"), "outer")
		if got := Category(err); got != tt.outer {
			t.Errorf("Category(Wrap(%v, New(%v))) = %v, want %v", tt.outer, tt.inner, got, tt.outer)
		}
		if got := ExitCode(err); got != tt.code {
			t.Errorf("ExitCode(Wrap(%v, New(%v))) = %d, want %d", tt.outer, tt.inner, got, tt.code)
		}
	}
}

func TestNilPassThrough(t *testing.T) {
	if err := Wrap(ErrNotFound, nil, "x"); err != nil {
		t.Errorf("Wrap(nil) = %v, want nil", err)
	}
	if err := WithHint(nil, "h"); err != nil {
		t.Errorf("WithHint(nil) = %v, want nil", err)
	}
	if err := Context(nil, "op", "id"); err != nil {
		t.Errorf("Context(nil) = %v, want nil", err)
	}
}

func TestErrorsIsThroughWrappers(t *testing.T) {
	cause := fs.ErrNotExist
	base := Wrap(ErrNotFound, cause, "open record")
	chains := map[string]error{
		"Wrap":                 base,
		"Context":              Context(base, "state", "web"),
		"WithHint":             WithHint(base, "h"),
		"Context(WithHint)":    Context(WithHint(base, "h"), "delete", "web"),
		"WithHint(Context)":    WithHint(Context(base, "delete", "web"), "h"),
		"fmt.Errorf(Context)":  fmt.Errorf("x: %w", Context(base, "kill", "")),
		"Wrap(other, Context)": Wrap(ErrNotFound, Context(base, "a", "b"), "c"),
	}
	for name, err := range chains {
		t.Run(name, func(t *testing.T) {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(%v, ErrNotFound) = false", err)
			}
			if !errors.Is(err, cause) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = false (cause lost)", err)
			}
			if errors.Is(err, ErrAlreadyExists) {
				t.Errorf("errors.Is(%v, ErrAlreadyExists) = true", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Cat != ErrNotFound {
				t.Errorf("errors.As(*Error) failed or wrong Cat: %v", e)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"msg only", New(ErrNotFound, "container %q does not exist", "web"), `container "web" does not exist`},
		{"cause only", &Error{Cat: ErrInternal, Cause: errors.New("disk full")}, "disk full"},
		{"msg and cause", Wrap(ErrInternal, errors.New("disk full"), "save %s", "web"), "save web: disk full"},
		{"context with id", Context(errors.New("boom"), "create", "web"), "create web: boom"},
		{"context without id", Context(errors.New("boom"), "list", ""), "list: boom"},
		{"hint does not change text", WithHint(errors.New("boom"), "try again"), "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHint(t *testing.T) {
	plain := errors.New("plain")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", plain, ""},
		{"New without hint", New(ErrNotFound, "x"), ""},
		{"WithHint", WithHint(plain, "one"), "one"},
		{"outer WithHint wins", WithHint(WithHint(plain, "inner"), "outer"), "outer"},
		{"Error.Hint", &Error{Cat: ErrInvalidArgument, Msg: "m", Hint: "field"}, "field"},
		{"WithHint over Error.Hint", WithHint(&Error{Cat: ErrInvalidArgument, Msg: "m", Hint: "inner"}, "outer"), "outer"},
		{"Error.Hint over inner WithHint", &Error{Cat: ErrInvalidArgument, Msg: "m", Hint: "outer", Cause: WithHint(plain, "inner")}, "outer"},
		{"through Wrap without hint", Wrap(ErrInternal, WithHint(plain, "inner"), "op"), "inner"},
		{"through Context", Context(WithHint(plain, "ctx"), "create", "web"), "ctx"},
		{"through fmt %w", fmt.Errorf("x: %w", WithHint(plain, "fmt")), "fmt"},
		{"through Context and Wrap", Context(Wrap(ErrNotFound, WithHint(plain, "deep"), "m"), "op", ""), "deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Hint(tt.err); got != tt.want {
				t.Errorf("Hint = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithHintKeepsCategory(t *testing.T) {
	err := WithHint(New(ErrUnavailable, "pve down"), "check the API")
	if got := ExitCode(err); got != 6 {
		t.Errorf("ExitCode = %d, want 6", got)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Error("errors.Is(ErrUnavailable) = false")
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"simple", errors.New("boom"), "boom"},
		{"newlines folded", errors.New("first line\nsecond line\n"), "first line second line"},
		{"crlf and tabs", errors.New("a\r\n\tb  c"), "a b c"},
		{"hint appended", WithHint(errors.New("boom"), "try again"), "boom (hint: try again)"},
		{"hint with newline folded", WithHint(errors.New("x\ny"), "a\nb"), "x y (hint: a b)"},
		{"context and hint", Context(&Error{Cat: ErrNotFound, Msg: "gone", Hint: "create it"}, "start", "web"),
			"start web: gone (hint: create it)"},
		{"wrapped tool output", Wrap(ErrInternal, errors.New("exit status 1\nstderr: bad thing\n"), "run tool"),
			"run tool: exit status 1 stderr: bad thing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := OneLine(tt.err)
			if got != tt.want {
				t.Errorf("OneLine = %q, want %q", got, tt.want)
			}
		})
	}
}

// An OS refusal (EACCES, EPERM) is a permission problem the operator can
// fix: exit 7, also when a caller wrapped it as internal.
func TestPermissionFromTheOS(t *testing.T) {
	perm := &fs.PathError{Op: "open", Path: "/run/proxcage", Err: fs.ErrPermission}
	for name, err := range map[string]error{
		"plain":           perm,
		"wrapped":         fmt.Errorf("list: %w", perm),
		"Wrap internal":   Wrap(ErrInternal, perm, "list"),
		"WrapOS":          WrapOS(ErrInternal, perm, "run as root", "list"),
		"Context(WrapOS)": Context(WrapOS(ErrInvalidArgument, perm, "run as root", "read"), "create", "x"),
	} {
		if ExitCode(err) != 7 {
			t.Errorf("%s: exit %d", name, ExitCode(err))
		}
	}
	// A category chosen on purpose stays.
	if got := ExitCode(Wrap(ErrNotFound, perm, "x")); got != 3 {
		t.Errorf("Wrap(not found, EACCES): exit %d", got)
	}
	if h := Hint(WrapOS(ErrInternal, perm, "run as root", "list")); h != "run as root" {
		t.Errorf("WrapOS hint %q", h)
	}
	if e := WrapOS(ErrInternal, os.ErrNotExist, "run as root", "x"); ExitCode(e) != 1 || Hint(e) != "" {
		t.Errorf("WrapOS of a non-permission error: %v %q", e, Hint(e))
	}
}

func TestClosest(t *testing.T) {
	keys := []string{"transport", "template_storage", "rootfs_storage", "bridge", "node", "url"}
	for in, want := range map[string]string{
		"brigde": "bridge", "bridg": "bridge", "rootfs_storag": "rootfs_storage", "trasnport": "transport",
		"nodes": "node", "zzz": "", "ur": "", "x": "", "template": "",
	} {
		if got := Closest(in, keys); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTextAndOneLine(t *testing.T) {
	err := WithHint(New(ErrInternal, "a\nb"), "do\nthis")
	if Text(err) != "a b" || OneLine(err) != "a b (hint: do this)" {
		t.Errorf("Text %q OneLine %q", Text(err), OneLine(err))
	}
}
