package pve

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The entrypoint of a CT is one string. PVE stores it verbatim (pct
// create --entrypoint) or makes it from an image's Entrypoint+Cmd with
// PVE::Tools::cmd2string (pve-common Cmd.pm to_string: String::ShellQuote
// per word), writes `lxc.init.cmd = STRING` into the LXC config
// (pve-container LXC.pm update_lxc_config), and LXC reads it back with
// parse_line (src/lxc/confile.c: blanks trimmed, one pair of matching
// quotes around the whole value removed) and splits it with
// lxc_string_split_quoted (src/lxc/string_utils.c): a word that starts
// with ' or " runs to the same quote, any other word to the next blank,
// and there are no escapes. So a word can be carried bare (no blank, not
// starting with a quote), in '...' (no '), or in "..." (no "); a word
// with both quote characters and a blank or a leading quote cannot.

// lxcInitArgv is the argv LXC runs for an lxc.init.cmd value.
func lxcInitArgv(value string) []string {
	v := strings.Trim(value, " \t")
	if len(v) > 1 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	return lxcSplitQuoted(v)
}

// lxcSplitQuoted is lxc_string_split_quoted (LXC 6.0+, the split of
// lxc.init.cmd): an unterminated quoted word is dropped.
func lxcSplitQuoted(s string) []string {
	res := []string{}
	state := byte(' ')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case ' ':
			if cSpace(c) {
				continue
			}
			start = i
			state = 'a'
			if c == '"' || c == '\'' {
				state = c
			}
		case 'a':
			if cSpace(c) {
				res = append(res, s[start:i])
				state = ' '
			}
		default:
			if c == state {
				res = append(res, s[start+1:i])
				state = ' '
			}
		}
	}
	if state == 'a' {
		res = append(res, s[start:])
	}
	return res
}

// cSpace is C's isspace in the C locale.
func cSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// shellQuoteSafe is what String::ShellQuote leaves unquoted.
var shellQuoteSafe = regexp.MustCompile(`^[A-Za-z0-9_!%+,\-./:=@^]+$`)

// cmd2string is PVE::Tools::cmd2string of an argv: String::ShellQuote
// (1.04) of each word, joined by blanks. A word is left bare only when it
// holds nothing but [\w!%+,\-./:=@^] and no '=' (a lone word with '=' is
// in "command position" for the module); otherwise ' becomes '\” (runs
// of them '"”"'), the word is put in '...', and a leading or trailing ”
// is dropped.
func cmd2string(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

var quoteRun = regexp.MustCompile(`(?:'\\''){2,}`)

func shellQuote(a string) string {
	if a == "" {
		return "''"
	}
	if shellQuoteSafe.MatchString(a) && !strings.Contains(a, "=") {
		return a
	}
	q := strings.ReplaceAll(a, "'", `'\''`)
	q = quoteRun.ReplaceAllStringFunc(q, func(run string) string {
		return `'"` + strings.Repeat("'", len(run)/4) + `"'`
	})
	q = "'" + q + "'"
	q = strings.TrimPrefix(q, "''")
	q = strings.TrimSuffix(q, "''")
	return q
}

// pveCarries reports whether PVE's own entrypoint of an image (cmd2string
// of Entrypoint+Cmd) reaches the process as args.
func pveCarries(args []string) bool {
	return slices.Equal(lxcInitArgv(cmd2string(args)), args)
}

// encodeWord gives a word as LXC can split it back, or false.
func encodeWord(w string) (string, bool) {
	switch {
	case w != "" && !strings.ContainsAny(w, " \t\n\v\f\r") && w[0] != '\'' && w[0] != '"':
		return w, true
	case !strings.Contains(w, "'"):
		return "'" + w + "'", true
	case !strings.Contains(w, `"`):
		return `"` + w + `"`, true
	}
	return "", false
}

// joinInitCmd renders args as an entrypoint that LXC splits back into
// exactly args, or false when no rendering can.
func joinInitCmd(args []string) (string, bool) {
	out := make([]string, len(args))
	for i, a := range args {
		e, ok := encodeWord(a)
		if !ok {
			return "", false
		}
		out[i] = e
	}
	s := strings.Join(out, " ")
	if slices.Equal(lxcInitArgv(s), args) {
		return s, true
	}
	// parse_line took the first word's opening quote and the last word's
	// closing one for a pair: quote one of them the other way.
	for _, i := range []int{len(args) - 1, 0} {
		if alt, ok := otherQuote(args[i], out[i]); ok {
			try := slices.Clone(out)
			try[i] = alt
			if s := strings.Join(try, " "); slices.Equal(lxcInitArgv(s), args) {
				return s, true
			}
		}
	}
	return "", false
}

func otherQuote(w, enc string) (string, bool) {
	switch {
	case strings.HasPrefix(enc, "'") && !strings.Contains(w, `"`):
		return `"` + w + `"`, true
	case strings.HasPrefix(enc, `"`) && !strings.Contains(w, "'"):
		return "'" + w + "'", true
	}
	return "", false
}

// rebuildScript is the wrapper for argv that no entrypoint string can
// carry: every word arrives as pieces that can ("+piece" continues a
// word, "-piece" ends it; the marker also keeps a piece from starting
// with a quote), and the CT's /bin/sh joins them and execs the result
// (after cd "$1" && shift when cwd). The script holds no ' so it
// travels in '...'. unset drops what the shell itself exported.
func rebuildScript(cwd bool, unset string) string {
	s := `w=; for a in "$@"; do shift; case $a in +*) w=$w${a#?};; *) set -- "$@" "$w${a#?}"; w=;; esac; done; `
	if cwd {
		s += `cd "$1" && shift && `
	}
	return s + unset + `exec "$@"`
}

// shellVars are what dash and busybox sh export to the program they
// exec although the environment had none (PWD, OLDPWD after cd, SHLVL).
var shellVars = []string{"OLDPWD", "PWD", "SHLVL"}

// unsetShellVars is the "unset ... && " that keeps the shell's own
// variables out of env, or "".
func unsetShellVars(env []string) string {
	var drop []string
	for _, k := range shellVars {
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			drop = append(drop, k)
		}
	}
	if len(drop) == 0 {
		return ""
	}
	return "unset " + strings.Join(drop, " ") + " && "
}

// pieces cuts w so that no piece holds both quote characters.
func pieces(w string) []string {
	var res []string
	start := 0
	sq, dq := false, false
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case '\'':
			if dq {
				res, start, dq = append(res, w[start:i]), i, false
			}
			sq = true
		case '"':
			if sq {
				res, start, sq = append(res, w[start:i]), i, false
			}
			dq = true
		}
	}
	return append(res, w[start:])
}

// wrapInitCmd renders args (after cwd, when not "") through the rebuild
// wrapper, for a process whose environment is env.
func wrapInitCmd(cwd string, args, env []string) (string, error) {
	script := rebuildScript(cwd != "", unsetShellVars(env))
	words := args
	if cwd != "" {
		words = append([]string{cwd}, args...)
	}
	argv := []string{"/bin/sh", "-c", script, "sh"}
	for _, w := range words {
		ps := pieces(w)
		for i, p := range ps {
			m := "+"
			if i == len(ps)-1 {
				m = "-"
			}
			argv = append(argv, m+p)
		}
	}
	s, ok := joinInitCmd(argv)
	if !ok {
		return "", fmt.Errorf("internal error: the entrypoint wrapper cannot carry %q", args)
	}
	return s, nil
}

// ctlChar finds a control character PVE's entrypoint and env patterns
// refuse (pve-container Config.pm: [^\x00-\x08\x0a-\x1F\x7F]; a tab
// only since 6.0.18), -1 when there is none.
func ctlChar(s string, tabOK bool) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && (c != '\t' || !tabOK) || c == 0x7f {
			return i
		}
	}
	return -1
}
