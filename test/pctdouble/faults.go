package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Fault injection. $PCTDOUBLE_DIR/faults is read on every call; each
// non-empty line that does not start with '#' is
//
//	<tool> <subcommand|*>[:<vmid>] <action>
//
// with action one of
//
//	fail <exitcode> <stderr text>      fail every matching call
//	failonce <exitcode> <stderr text>  fail once; the line is then removed
//	hang                               sleep until killed
//	delay <seconds>                    slow the call down (pct create: while
//	                                   the config carries "lock: create")
//	pve <condition> [once]             fail as a real node does in that
//	                                   condition, with its text and effect
//	                                   (pveerrors.go pveFault: noquorum,
//	                                   cfslock, race:NODE); exit 255
//
// In the text, "\n" becomes a newline and {vmid} the call's VMID. The
// subcommand is the first argument (pct start, pvesh get, pvesm path); for
// pvesh the API path matches too (pvesh /cluster/nextid ...). Tools without
// subcommands (pveversion, lxc-info, lxc-attach) match "*" only.

// faultTextRE takes the text after "<tool> <sub> <action> <exitcode>".
var faultTextRE = regexp.MustCompile(`^\S+\s+\S+\s+\S+\s+\S+\s+(.*)$`)

// faultDelay is set by a matching "delay" line.
var faultDelay time.Duration

func callVMID(tool string, args []string) string {
	switch tool {
	case "pct":
		if len(args) > 1 {
			if _, err := strconv.Atoi(args[1]); err == nil {
				return args[1]
			}
		}
	case "lxc-info", "lxc-attach":
		for i, a := range args {
			if a == "-n" && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, "--name="); ok {
				return v
			}
		}
	case "pvesh":
		for i, a := range args {
			if (a == "--vmid" || a == "-vmid") && i+1 < len(args) {
				return args[i+1]
			}
		}
		if len(args) > 1 {
			if m := regexp.MustCompile(`/(?:lxc|qemu)/(\d+)`).FindStringSubmatch(args[1]); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

func faultMatches(tool string, args []string, vmid string, ftool, fsub string) bool {
	if ftool != tool {
		return false
	}
	sub, fvmid, _ := strings.Cut(fsub, ":")
	if fvmid != "" && fvmid != vmid {
		return false
	}
	if sub == "*" {
		return true
	}
	switch tool {
	case "pct", "pvesm":
		return len(args) > 0 && args[0] == sub
	case "pvesh":
		return (len(args) > 0 && args[0] == sub) || (len(args) > 1 && strings.TrimRight(args[1], "/") == strings.TrimRight(sub, "/"))
	}
	return false
}

func applyFaults(tool string, args []string) error {
	path := statePath("faults")
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	vmid := callVMID(tool, args)
	unlock, err := lockState()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		unlock()
		return nil
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) < 3 || !faultMatches(tool, args, vmid, f[0], f[1]) {
			continue
		}
		action := f[2]
		switch action {
		case "hang":
			unlock()
			for {
				time.Sleep(time.Hour)
			}
		case "delay":
			if len(f) > 3 {
				if s, err := strconv.ParseFloat(f[3], 64); err == nil {
					faultDelay = time.Duration(s * float64(time.Second))
				}
			}
			continue
		case "pve":
			if len(f) < 4 {
				unlock()
				return fail("pctdouble: faults: %q: pve needs a condition", t)
			}
			text, err := pveFault(f[3], args, vmid)
			if err == nil && len(f) > 4 && f[4] == "once" {
				lines = append(lines[:i:i], lines[i+1:]...)
				err = writeFileAtomic(path, []byte(strings.Join(lines, "\n")))
			}
			unlock()
			if err != nil {
				return err
			}
			return &exitError{msg: text, code: 255}
		case "fail", "failonce":
			code := 255
			if len(f) > 3 {
				if c, err := strconv.Atoi(f[3]); err == nil {
					code = c
				}
			}
			// The text is everything after the exit code, spacing kept.
			text := ""
			if m := faultTextRE.FindStringSubmatch(t); m != nil {
				text = m[1]
			}
			text = strings.ReplaceAll(text, `\n`, "\n")
			text = strings.ReplaceAll(text, "{vmid}", vmid)
			if action == "failonce" {
				lines = append(lines[:i:i], lines[i+1:]...)
				if err := writeFileAtomic(path, []byte(strings.Join(lines, "\n"))); err != nil {
					unlock()
					return fail("pctdouble: faults: %v", err)
				}
			}
			unlock()
			return &exitError{msg: text, code: code}
		}
	}
	unlock()
	if faultDelay > 0 && (tool != "pct" || len(args) == 0 || args[0] != "create") {
		time.Sleep(faultDelay)
	}
	return nil
}
