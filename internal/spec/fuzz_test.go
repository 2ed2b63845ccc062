package spec

import "testing"

// FuzzParse checks that Parse never panics and that it only accepts specs
// every backend can run: a nil error implies a process with arguments.
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`,
		`{"ociVersion":"1.2.0","root":{"path":"/abs"},"process":{"args":["a","b"],"cwd":"/","env":["A=1"]}}`,
		`{"ociVersion":"2.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":[],"cwd":"/"}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":null}`,
		`{"ociVersion":"1.0.2"} trailing`,
		"{\n\"ociVersion\": 1\n}",
		`null`,
		``,
		`[`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned both a spec and error %v", err)
			}
			return
		}
		if s == nil || s.Process == nil || len(s.Process.Args) == 0 {
			t.Fatalf("Parse accepted %q without process args: %+v", data, s)
		}
		if s.Root == nil || s.Root.Path == "" {
			t.Fatalf("Parse accepted %q without root.path", data)
		}
	})
}
