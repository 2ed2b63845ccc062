package identifiers

import (
	"regexp"
	"strings"
	"testing"
)

// The cases of the lxc backend's TestLabelFromID (moved here with the
// function), and the pve backend's rule for long ids.
func TestHostname(t *testing.T) {
	long := strings.Repeat("ab", 40)
	hex := strings.Repeat("0123456789abcdef", 4)
	for in, want := range map[string]string{
		"web-1":    "web-1",
		"My_Box.2": "my-box-2",
		"--x--":    "x",
		"___":      "proxcage",
		"":         "proxcage",
		"a--b":     "a--b",
		"a+.b":     "a-b",
		long:       long[:63],
		hex:        hex[:63],
		// A cut that ends in '-' drops it.
		strings.Repeat("a", 62) + "_b": strings.Repeat("a", 62),
	} {
		if got := Hostname(in); got != want {
			t.Errorf("Hostname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostnameIsADNSLabel(t *testing.T) {
	dnsLabel := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	for _, id := range []string{"web-1", "A_b+c-d.e", "_x", "a..b", strings.Repeat("x-", 600), "+", "0"} {
		if h := Hostname(id); !dnsLabel.MatchString(h) {
			t.Errorf("Hostname(%q) = %q: not a DNS label", id, h)
		}
	}
}
