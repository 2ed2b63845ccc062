package pveschema

import (
	"regexp"
	"strings"
	"unicode"
)

// Cmd2String is PVE::Tools::cmd2string (pve-common PVE/Cmd.pm to_string):
// String::ShellQuote 1.04's shell_quote of each word on its own, joined
// by spaces.
func Cmd2String(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

var quoteRunRE = regexp.MustCompile(`(?:'\\''){2,}`)

// shellQuote is String::ShellQuote's quoting of one word, the first of
// its call: so a word with '=' is always quoted. Perl's \w is taken as
// Unicode letters, marks, digits and '_'.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	escape := strings.Contains(s, "=")
	for _, r := range s {
		word := r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
		if !word && !strings.ContainsRune("!%+,-./:=@^", r) {
			escape = true
		}
	}
	if !escape {
		return s
	}
	s = strings.ReplaceAll(s, "'", `'\''`)
	s = quoteRunRE.ReplaceAllStringFunc(s, func(m string) string { return `'"` + strings.Repeat("'", len(m)/4) + `"'` })
	s = "'" + s + "'"
	s = strings.TrimPrefix(s, "''")
	return strings.TrimSuffix(s, "''")
}
