// Package golden compares a test's output with a file kept beside its
// input (testdata/NAME.golden), and rewrites those files under `go test
// -update`: the one harness of the translators' and the image-spec golden
// tests.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Updating reports whether the test runs with -update.
func Updating() bool { return *update }

// Check compares got with the content of file, or writes it there under
// -update. what names the output in the failure message.
func Check(t *testing.T, file, got, what string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s changed from %s:\n--- got\n%s--- want\n%s", what, file, got, want)
	}
}

// Cases runs fn as a subtest for each file matching pattern (for example
// "testdata/translate/*.json"), named by its base name without extension,
// with the file's content; fn's result is checked against the file with
// its extension replaced by .golden.
func Cases(t *testing.T, pattern, what string, fn func(t *testing.T, input []byte) string) {
	t.Helper()
	inputs, err := filepath.Glob(pattern)
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs match %s: %v", pattern, err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := fn(t, data)
			Check(t, strings.TrimSuffix(in, filepath.Ext(in))+".golden", got, what)
		})
	}
}
