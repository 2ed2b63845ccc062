// Command pctdouble is a test double of the Proxmox VE command line tools a
// container runtime calls on a PVE node: pct, pvesh, pvesm, pveversion, and
// the lxc-info / lxc-attach wrappers. It behaves by the name it is called as
// (argv[0]'s base name); install.sh creates the symlinks. `pctdouble TOOL
// ARGS...` works too.
//
// State lives under $PCTDOUBLE_DIR (see README.md). Configs, listings and
// error texts follow Proxmox VE 9.1; the containers run for real with the
// host's LXC (lxc-start/lxc-stop/lxc-attach), from a directory rootfs.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// exitError carries a message for stderr and an exit status. pct and pvesh
// exit 255 (-1) on every failure.
type exitError struct {
	msg  string
	code int
}

func (e *exitError) Error() string { return e.msg }

// fail returns the standard failure: the message on stderr, exit 255.
func fail(format string, a ...any) error {
	return &exitError{msg: fmt.Sprintf(format, a...), code: 255}
}

// tools maps a tool name to its implementation.
var tools = map[string]func(args []string) error{
	"pct":        pctMain,
	"pvesh":      pveshMain,
	"pvesm":      pvesmMain,
	"pveversion": pveversionMain,
	"lxc-info":   lxcInfoMain,
	"lxc-attach": lxcAttachMain,
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if _, ok := tools[name]; !ok && len(args) > 0 {
		// pctdouble TOOL ARGS...
		name, args = args[0], args[1:]
	}
	run, ok := tools[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "pctdouble: called as %q; use one of pct, pvesh, pvesm, pveversion, lxc-info, lxc-attach (symlink or first argument)\n", filepath.Base(os.Args[0]))
		os.Exit(2)
	}
	err := initState()
	if err == nil {
		recordCall(name, args)
		err = applyFaults(name, args)
	}
	if err == nil {
		err = run(args)
	}
	if err != nil {
		var ee *exitError
		code := 255
		msg := err.Error()
		if errors.As(err, &ee) {
			code = ee.code
			msg = ee.msg
		}
		if msg != "" {
			if !strings.HasSuffix(msg, "\n") {
				msg += "\n"
			}
			fmt.Fprint(os.Stderr, msg)
		}
		os.Exit(code)
	}
}

// recordCall appends "TOOL SUBCOMMAND" to $PCTDOUBLE_DIR/calls: on a node
// each such call is a process (for pct/pvesh/pvesm a Perl interpreter
// that loads the PVE stack), which bench/spawns.sh counts per lifecycle
// phase. One write with O_APPEND: parallel calls do not interleave.
func recordCall(name string, args []string) {
	line := name
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		line += " " + args[0]
	}
	f, err := os.OpenFile(statePath("calls"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	_, _ = f.WriteString(line + "\n")
	_ = f.Close()
}
