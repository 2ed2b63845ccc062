package identifiers

import (
	"regexp"
	"strings"
)

// notLabel is a run of what a DNS label cannot hold once lower-cased.
var notLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// Hostname derives a hostname from a container id for a container whose
// spec names none: a valid DNS label (RFC 1123) of at most 63 characters,
// as containerd's 64-hex ids are not. Every backend and the image path use
// it, so one id gets one hostname wherever it runs.
func Hostname(id string) string {
	h := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(id), "-"), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "proxcage"
	}
	return h
}
