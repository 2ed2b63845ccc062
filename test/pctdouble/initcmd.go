package main

import (
	"strconv"
	"strings"
)

// How a CT's entrypoint string becomes its init's argv, written from the
// real code and independent of the runtime's own copy (so the two can
// disagree when either is wrong):
//   - PVE stores `entrypoint` verbatim and writes `lxc.init.cmd = VALUE`
//     (pve-container 6.1.10 src/PVE/LXC.pm update_lxc_config);
//   - LXC reads the line with parse_line (lxc src/lxc/confile.c, 6.0+):
//     blanks and tabs around the value trimmed, then one pair of equal
//     quotes around the whole value dropped;
//   - and splits it with lxc_string_split_quoted (src/lxc/string_utils.c):
//     a word starting with ' or " runs to the same quote (no escapes), any
//     other word to the next isspace(); an unterminated quoted word is lost.
//
// LXC 5.0.2 on the build hosts splits lxc.init.cmd at blanks only, so the
// double passes the argv it computes after `lxc-start ... --`.

func lxcInitCmdArgv(value string) []string {
	v := strings.TrimLeft(value, " \t")
	v = strings.TrimRight(v, " \t")
	if len(v) > 1 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	var words []string
	state := byte(' ')
	next := 0
	for p := 0; p < len(v); p++ {
		c := v[p]
		switch state {
		case ' ':
			if isCSpace(c) {
				continue
			}
			next = p
			if c == '"' || c == '\'' {
				state = c
			} else {
				state = 'a'
			}
		case 'a':
			if isCSpace(c) {
				words = append(words, v[next:p])
				state = ' '
			}
		default:
			if c == state {
				words = append(words, v[next+1:p])
				state = ' '
			}
		}
	}
	if state == 'a' {
		words = append(words, v[next:])
	}
	return words
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// atLeastContainer reports whether the double's pve-container (file
// `pve-container`) is at least major.minor.patch.
func atLeastContainer(major, minor, patch int) bool {
	parts := strings.SplitN(containerVersion(), ".", 3)
	var v [3]int
	for i := range parts {
		v[i], _ = strconv.Atoi(strings.SplitN(parts[i], "-", 2)[0])
	}
	for i, w := range [3]int{major, minor, patch} {
		if v[i] != w {
			return v[i] > w
		}
	}
	return true
}
