// Package errdefs defines the error categories every proxcage command uses,
// their process exit codes, and operator hints.
//
// A command error is built with New or Wrap: it carries a category sentinel
// (so errors.Is works across packages), the operation and container it was
// about, and an optional hint saying how to fix it. The CLI prints it as one
// line and exits with the category's code.
package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Category sentinels. Match them with errors.Is.
var (
	ErrInternal           = errors.New("internal error")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrPermissionDenied   = errors.New("permission denied")
)

// Exit codes per category. 1 stays the generic failure, as with runc, so a
// caller that only checks "non-zero" is unaffected; the others let scripts
// tell the categories apart without parsing text.
var exitCodes = []struct {
	cat  error
	code int
}{
	{ErrInvalidArgument, 2},
	{ErrNotFound, 3},
	{ErrAlreadyExists, 4},
	{ErrFailedPrecondition, 5},
	{ErrUnavailable, 6},
	{ErrPermissionDenied, 7},
	{ErrInternal, 1},
}

// ExitCode returns the process exit code for err: 0 for nil, the code of
// its category, or 1 when it has none.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	cat := Category(err)
	for _, e := range exitCodes {
		if e.cat == cat {
			return e.code
		}
	}
	return 1
}

// Category returns the category of err: that of the outermost *Error (so
// Wrap can re-categorise a cause), else the first sentinel found in the
// chain, else ErrInternal. An internal error caused by the OS refusing
// access (EACCES, EPERM) is a permission problem: the operator can fix it.
func Category(err error) error {
	cat := category(err)
	if cat == ErrInternal && errors.Is(err, fs.ErrPermission) {
		return ErrPermissionDenied
	}
	return cat
}

func category(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Cat != nil {
		return e.Cat
	}
	for _, e := range exitCodes {
		if errors.Is(err, e.cat) {
			return e.cat
		}
	}
	return ErrInternal
}

// Error is a categorised error with context.
type Error struct {
	Cat   error  // one of the Err* sentinels
	Msg   string // what failed, e.g. `container "web" does not exist`
	Hint  string // how the operator can fix it; may be empty
	Cause error  // the underlying error; may be nil
}

func (e *Error) Error() string {
	switch {
	case e.Cause == nil:
		return e.Msg
	case e.Msg == "":
		return e.Cause.Error()
	default:
		return e.Msg + ": " + e.Cause.Error()
	}
}

// Unwrap exposes both the category and the cause to errors.Is/As.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Cat}
	}
	return []error{e.Cat, e.Cause}
}

// New returns an error of category cat with a formatted message.
func New(cat error, format string, args ...any) *Error {
	return &Error{Cat: cat, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of category cat whose message prefixes cause.
// A nil cause gives a nil error, so `return errdefs.Wrap(..., err)` is safe.
func Wrap(cat error, cause error, format string, args ...any) error {
	if cause == nil {
		return nil
	}
	return &Error{Cat: cat, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// WrapOS is Wrap for a failed file system call: when the OS refused
// access (EACCES, EPERM) the error is ErrPermissionDenied with permHint,
// which says who may do it or what to point proxcage at instead.
func WrapOS(cat error, cause error, permHint string, format string, args ...any) error {
	if cause == nil {
		return nil
	}
	e := &Error{Cat: cat, Msg: fmt.Sprintf(format, args...), Cause: cause}
	if errors.Is(cause, fs.ErrPermission) {
		e.Cat, e.Hint = ErrPermissionDenied, permHint
	}
	return e
}

// WithHint attaches an operator hint to err, keeping its category. When err
// already has a hint the outer one wins (it knows more context).
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// Hint returns the outermost hint carried by err, or "".
func Hint(err error) string {
	for err != nil {
		switch e := err.(type) {
		case *hinted:
			return e.hint
		case *Error:
			if e.Hint != "" {
				return e.Hint
			}
			err = e.Cause
			continue
		}
		err = errors.Unwrap(err)
	}
	return ""
}

// Context prefixes err with the operation and container, e.g.
// "create web: ...", keeping category and hint.
func Context(err error, op, id string) error {
	if err == nil {
		return nil
	}
	prefix := op
	if id != "" {
		prefix += " " + id
	}
	return &contexted{prefix: prefix, err: err}
}

type contexted struct {
	prefix string
	err    error
}

func (c *contexted) Error() string { return c.prefix + ": " + c.err.Error() }
func (c *contexted) Unwrap() error { return c.err }

// Text renders err alone (no hint) on one line, for places that show the
// hint apart (doctor's checks).
func Text(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// OneLine renders err and its hint as a single line for the terminal and
// logs: newlines in wrapped tool output are folded so a caller reading the
// last line (containerd's shim does) still gets the whole message.
func OneLine(err error) string {
	msg := Text(err)
	if h := Hint(err); h != "" {
		msg += " (hint: " + strings.Join(strings.Fields(h), " ") + ")"
	}
	return msg
}
