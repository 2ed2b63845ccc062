package lxc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The stand-in is found where a build tree and an installed package put
// it, in that order; and a miss names every place looked at.
func TestInitHelperLocations(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing in PATH
	touch := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prefix := t.TempDir()
	b := &Backend{runner: filepath.Join(prefix, "bin", "proxcage")}

	_, err := b.initHelper()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(prefix, "libexec", "proxcage")) {
		t.Fatalf("missing helper: %v", err)
	}

	libexec := filepath.Join(prefix, "libexec", "proxcage", InitHelper)
	touch(libexec)
	if got, err := b.initHelper(); err != nil || got != libexec {
		t.Fatalf("installed layout: %q, %v; want %q", got, err, libexec)
	}

	beside := filepath.Join(prefix, "bin", InitHelper)
	touch(beside)
	if got, err := b.initHelper(); err != nil || got != beside {
		t.Fatalf("build tree: %q, %v; want %q", got, err, beside)
	}
}
