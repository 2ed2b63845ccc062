package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the (empty) parent cgroups the tests' cgroupsPath made;
// libcontainer removes only each container's own leaf.
func TestMain(m *testing.M) {
	code := m.Run()
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/proxcage-e2e")
	for _, d := range dirs {
		_ = os.Remove(d)
	}
	os.Exit(code)
}
