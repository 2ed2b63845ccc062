package main

import (
	"io"
	"regexp"
	"strings"
	"testing"
)

// TestHelpDescribesEveryBackend: the root --help says what each backend
// runs a container with, not only native.
func TestHelpDescribesEveryBackend(t *testing.T) {
	e := newEnv(t)
	r := e.run("--help")
	for _, b := range []string{"native", "pve", "lxc"} {
		if !regexp.MustCompile(`(?m)^- ` + b + `: \S`).MatchString(r.stdout) {
			t.Errorf("--help has no line \"- %s: ...\" describing the backend:\n%s", b, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "proxcage-config.toml(5)") {
		t.Errorf("--help does not point at proxcage-config.toml(5)")
	}
}

// TestUsageShowsImageForm: create's and run's usage line has the image
// form, `--image REF [ID] [-- CMD...]`, next to the bundle one.
func TestUsageShowsImageForm(t *testing.T) {
	e := newEnv(t)
	for _, c := range []string{"create", "run"} {
		r := e.run(c, "--help")
		_, usage, _ := strings.Cut(r.stdout, "Usage:\n")
		usage, _, _ = strings.Cut(usage, "\n")
		for _, w := range []string{"<container-id>", "--image REF", "[-- CMD...]"} {
			if !strings.Contains(usage, w) {
				t.Errorf("%s --help: usage %q lacks %q", c, usage, w)
			}
		}
	}
}

// TestCompatFlagsSayWhy: a flag accepted for runc's sake that does
// nothing (or only on native) is hidden or says so in its help.
func TestCompatFlagsSayWhy(t *testing.T) {
	root := (&app{stdout: io.Discard, stderr: io.Discard}).rootCommand()
	tests := []struct{ cmd, flag, want string }{
		{"", "rootless", "ignored"},
		{"", "systemd-cgroup", "native"},
		{"create", "no-new-keyring", "native"},
		{"create", "no-pivot", "native"},
		{"create", "pidfd-socket", "runc"},
		{"run", "no-new-keyring", "native"},
		{"run", "no-pivot", "native"},
		{"run", "pidfd-socket", "runc"},
		{"run", "no-subreaper", "ignored"},
		{"run", "keep", "runc"},
	}
	for _, tt := range tests {
		c := root
		if tt.cmd != "" {
			var err error
			if c, _, err = root.Find([]string{tt.cmd}); err != nil {
				t.Fatal(err)
			}
		}
		f := c.Flags().Lookup(tt.flag)
		if f == nil {
			f = c.PersistentFlags().Lookup(tt.flag)
		}
		switch {
		case f == nil:
			t.Errorf("%s --%s: no such flag", tt.cmd, tt.flag)
		case f.Hidden:
		case !strings.Contains(f.Usage, tt.want):
			t.Errorf("%s --%s: help %q does not say %q", tt.cmd, tt.flag, f.Usage, tt.want)
		}
	}
}
