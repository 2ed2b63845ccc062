package main

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// ParseSignal accepts a number, or a name with or without SIG, any case.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.New(errdefs.ErrInvalidArgument, "unknown signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, errdefs.New(errdefs.ErrInvalidArgument, "unknown signal %q", s)
	}
	return sig, nil
}

// signalNames are the names ParseSignal takes, in kill -l's order, with
// their numbers; with SIG when that is what was typed, in the case typed.
func signalNames(prefix string) []string {
	upper := strings.ToUpper(prefix)
	var out []string
	for n := unix.Signal(1); n < 32; n++ {
		name := unix.SignalName(n)
		if name == "" {
			continue
		}
		if !strings.HasPrefix(upper, "SIG") {
			name = strings.TrimPrefix(name, "SIG")
		}
		if !strings.HasPrefix(name, upper) {
			continue
		}
		if prefix != upper {
			name = strings.ToLower(name)
		}
		out = append(out, name+"\t"+strconv.Itoa(int(n)))
	}
	return out
}
