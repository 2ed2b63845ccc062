package main

import (
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// cliArgs is a parsed PVE-style command line: positional arguments, options
// (--name value, -name value, --name=value; a boolean may omit its value),
// and whatever follows "--".
type cliArgs struct {
	pos    []string
	opts   map[string]string
	order  []string
	extra  []string
	dashes bool
}

// parseCLI parses args the way PVE's CLIHandler (Getopt::Long) does. isBool
// tells which options are booleans, whose value is optional.
func parseCLI(args []string, isBool func(string) bool) (*cliArgs, error) {
	return parseCLIx(args, isBool, nil)
}

// parseCLIx is parseCLI with a test for options the schema does not know.
func parseCLIx(args []string, isBool, unknownOption func(string) bool) (*cliArgs, error) {
	c := &cliArgs{opts: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			c.dashes = true
			c.extra = append(c.extra, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' && !isNumber(a) {
			name := strings.TrimLeft(a, "-")
			val, hasVal := "", false
			if n, v, ok := strings.Cut(name, "="); ok {
				name, val, hasVal = n, v, true
			}
			if !hasVal {
				next := ""
				if i+1 < len(args) {
					next = args[i+1]
				}
				switch {
				case isBool(name):
					// Getopt::Long "name:s": the next argument is the
					// value unless it looks like an option.
					if i+1 < len(args) && (!strings.HasPrefix(next, "-") || isNumber(next)) {
						val = next
						i++
					} else {
						val = "1"
					}
				case i+1 < len(args) && next != "--":
					val = next
					i++
				case unknownOption != nil && unknownOption(name):
					// Left for the schema check to report ("property is
					// not defined in schema ...").
					val = "1"
				default:
					return nil, fail("Option %s requires an argument\n400 unable to parse option", name)
				}
			}
			if _, seen := c.opts[name]; !seen {
				c.order = append(c.order, name)
			}
			c.opts[name] = val
			continue
		}
		c.pos = append(c.pos, a)
	}
	return c, nil
}

// unknownOf reports options that neither the method nor the CLI knows.
func unknownOf(m *pveschema.Method, extra ...string) func(string) bool {
	return func(name string) bool {
		if contains(extra, name) {
			return false
		}
		return m == nil || m.Lookup(name) == nil
	}
}

func isNumber(s string) bool { return pveschema.NumberRE.MatchString(s) }

// boolsOf returns an isBool function for a schema method plus extra
// CLI-only boolean options.
func boolsOf(m *pveschema.Method, extra ...string) func(string) bool {
	return func(name string) bool {
		for _, e := range extra {
			if e == name {
				return true
			}
		}
		if m == nil {
			return false
		}
		p := m.Lookup(name)
		return p != nil && p.Type == "boolean"
	}
}
