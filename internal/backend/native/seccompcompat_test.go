package native

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/backend"
)

func TestAllowStatxWithStat(t *testing.T) {
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	cases := []struct {
		name    string
		profile *specs.LinuxSeccomp
		added   bool
	}{
		{"nil profile", nil, false},
		{"default allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{allow("stat")}}, false},
		{"old profile allowing newfstatat", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allow("read", "newfstatat")}}, true},
		{"statx already allowed", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allow("stat", "statx")}}, false},
		{"statx explicitly denied", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allow("stat"), {Names: []string{"statx"}, Action: specs.ActErrno}}}, false},
		{"stat family denied", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allow("read", "write")}}, false},
		{"stat only allowed with arg filters", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"fstat"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}}}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before int
			if c.profile != nil {
				before = len(c.profile.Syscalls)
			}
			if got := allowStatxWithStat(c.profile); got != c.added {
				t.Fatalf("added=%v, want %v", got, c.added)
			}
			if c.profile == nil {
				return
			}
			after := len(c.profile.Syscalls)
			if c.added {
				last := c.profile.Syscalls[after-1]
				if after != before+1 || last.Names[0] != "statx" || last.Action != specs.ActAllow {
					t.Fatalf("profile not extended with statx: %+v", c.profile.Syscalls)
				}
			} else if after != before {
				t.Fatalf("profile changed: %+v", c.profile.Syscalls)
			}
		})
	}
}

func TestConvertRlimit(t *testing.T) {
	if _, err := convertRlimit(specs.POSIXRlimit{Type: "RLIMIT_NOPE", Hard: 1, Soft: 1}); err == nil {
		t.Fatal("unknown rlimit type accepted")
	}
	if _, err := convertRlimit(specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1, Soft: 2}); err == nil {
		t.Fatal("soft above hard accepted")
	}
	r, err := convertRlimit(specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 20, Soft: 10})
	if err != nil || r.Type != 7 || r.Hard != 20 || r.Soft != 10 {
		t.Fatalf("got %+v %v", r, err)
	}
}

func TestNormalizeSpec(t *testing.T) {
	s := &specs.Spec{
		Linux: &specs.Linux{Devices: []specs.LinuxDevice{
			{Path: "/dev/fifo", Type: "p", Major: 8, Minor: 666},
			{Path: "/dev/null2", Type: "c", Major: 1, Minor: 3},
		}},
		Mounts: []specs.Mount{
			{Destination: "/a", Type: "bind", Source: "/etc", Options: []string{"rbind", "ro", "mode=755", "size=1k"}},
			{Destination: "/b", Type: "none", Source: "/etc", Options: []string{"bind", "nosuid", "uid=5"}},
			{Destination: "/c", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=1k"}},
		},
	}
	normalizeSpec(slog.New(slog.NewTextHandler(io.Discard, nil)), s)
	if d := s.Linux.Devices[0]; d.Major != 0 || d.Minor != 0 {
		t.Errorf("fifo keeps numbers %d:%d", d.Major, d.Minor)
	}
	if d := s.Linux.Devices[1]; d.Major != 1 || d.Minor != 3 {
		t.Errorf("char device numbers changed: %d:%d", d.Major, d.Minor)
	}
	want := [][]string{{"rbind", "ro"}, {"bind", "nosuid"}, {"nosuid", "mode=755", "size=1k"}}
	for i, m := range s.Mounts {
		if !slices.Equal(m.Options, want[i]) {
			t.Errorf("mount %s options %v, want %v", m.Destination, m.Options, want[i])
		}
	}
}

// specFor works on a copy: the caller's spec is not changed, the rootfs
// and relative bind sources come out absolute against the bundle, so the
// backend needs no chdir into it.
func TestSpecForCopiesAndResolvesAgainstTheBundle(t *testing.T) {
	orig := &specs.Spec{
		Root:  &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{Devices: []specs.LinuxDevice{{Path: "/dev/fifo", Type: "p", Major: 8, Minor: 1}}},
		Mounts: []specs.Mount{
			{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind", "size=1k"}},
			{Destination: "/abs", Type: "bind", Source: "/etc", Options: []string{"bind"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		},
	}
	c := &backend.Container{ID: "x", Bundle: "/b", Rootfs: "/b/rootfs", Spec: orig}
	s, err := specFor(slog.New(slog.NewTextHandler(io.Discard, nil)), c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "/b/rootfs" || s.Mounts[0].Source != "/b/data" || s.Mounts[1].Source != "/etc" || s.Mounts[2].Source != "tmpfs" {
		t.Fatalf("paths: root %q, sources %q %q %q", s.Root.Path, s.Mounts[0].Source, s.Mounts[1].Source, s.Mounts[2].Source)
	}
	if s.Linux.Devices[0].Major != 0 || !slices.Equal(s.Mounts[0].Options, []string{"rbind"}) {
		t.Fatalf("not normalized: %+v %v", s.Linux.Devices[0], s.Mounts[0].Options)
	}
	if orig.Root.Path != "rootfs" || orig.Mounts[0].Source != "data" || orig.Linux.Devices[0].Major != 8 || len(orig.Mounts[0].Options) != 2 {
		t.Fatalf("the caller's spec changed: %+v", orig)
	}
	labels := []string{"a=b", "bundle=/somewhere/else"}
	bundleLabel(labels, "/b")
	if labels[1] != "bundle=/b" {
		t.Fatalf("labels %v", labels)
	}
}
