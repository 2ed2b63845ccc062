package runtime

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func baseProcess() *specs.Process {
	return &specs.Process{
		Terminal: true,
		Args:     []string{"sh", "-c", "sleep 1"},
		Env:      []string{"PATH=/bin", "TERM=xterm"},
		Cwd:      "/srv",
		User:     specs.User{UID: 5, GID: 6, AdditionalGids: []uint32{7}},
	}
}

func TestBuildExecProcess(t *testing.T) {
	tests := []struct {
		name  string
		req   ExecRequest
		check func(t *testing.T, p *specs.Process)
	}{
		{"args replaced", ExecRequest{Args: []string{"ls", "-l"}}, func(t *testing.T, p *specs.Process) {
			if !reflect.DeepEqual(p.Args, []string{"ls", "-l"}) {
				t.Errorf("Args = %v", p.Args)
			}
			if p.Cwd != "/srv" {
				t.Errorf("Cwd = %q, want base /srv", p.Cwd)
			}
			if p.User.UID != 5 || p.User.GID != 6 {
				t.Errorf("User = %+v, want base 5:6", p.User)
			}
		}},
		{"env appended, not replacing", ExecRequest{Args: []string{"env"}, Env: []string{"A=1", "PATH=/x"}}, func(t *testing.T, p *specs.Process) {
			want := []string{"PATH=/bin", "TERM=xterm", "A=1", "PATH=/x"}
			if !reflect.DeepEqual(p.Env, want) {
				t.Errorf("Env = %v, want %v", p.Env, want)
			}
		}},
		{"cwd override", ExecRequest{Args: []string{"pwd"}, Cwd: "/tmp"}, func(t *testing.T, p *specs.Process) {
			if p.Cwd != "/tmp" {
				t.Errorf("Cwd = %q, want /tmp", p.Cwd)
			}
		}},
		{"user uid:gid", ExecRequest{Args: []string{"id"}, User: "1000:1000"}, func(t *testing.T, p *specs.Process) {
			if p.User.UID != 1000 || p.User.GID != 1000 {
				t.Errorf("User = %+v, want 1000:1000", p.User)
			}
		}},
		{"user uid only keeps gid", ExecRequest{Args: []string{"id"}, User: "1000"}, func(t *testing.T, p *specs.Process) {
			if p.User.UID != 1000 || p.User.GID != 6 {
				t.Errorf("User = %+v, want uid 1000, base gid 6", p.User)
			}
		}},
		{"user 0:0", ExecRequest{Args: []string{"id"}, User: "0:0"}, func(t *testing.T, p *specs.Process) {
			if p.User.UID != 0 || p.User.GID != 0 {
				t.Errorf("User = %+v, want 0:0", p.User)
			}
		}},
		{"additional gids appended", ExecRequest{Args: []string{"id"}, AddGids: []uint32{8, 9}}, func(t *testing.T, p *specs.Process) {
			if !reflect.DeepEqual(p.User.AdditionalGids, []uint32{7, 8, 9}) {
				t.Errorf("AdditionalGids = %v, want [7 8 9]", p.User.AdditionalGids)
			}
		}},
		{"tty off", ExecRequest{Args: []string{"x"}, Tty: false}, func(t *testing.T, p *specs.Process) {
			if p.Terminal {
				t.Error("Terminal = true, want false (exec without -t)")
			}
		}},
		{"tty on", ExecRequest{Args: []string{"x"}, Tty: true}, func(t *testing.T, p *specs.Process) {
			if !p.Terminal {
				t.Error("Terminal = false, want true")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := baseProcess()
			p, err := BuildExecProcess(base, tt.req)
			if err != nil {
				t.Fatalf("BuildExecProcess: %v", err)
			}
			tt.check(t, p)
			if !reflect.DeepEqual(base, baseProcess()) {
				t.Errorf("base mutated: %+v", base)
			}
			if p == base {
				t.Error("returned the base pointer itself")
			}
		})
	}
}

func TestBuildExecProcessDoesNotAlias(t *testing.T) {
	base := baseProcess()
	base.Env = make([]string, 2, 10) // spare capacity: a naive append would write into it
	copy(base.Env, []string{"PATH=/bin", "TERM=xterm"})
	base.User.AdditionalGids = make([]uint32, 1, 10)
	base.User.AdditionalGids[0] = 7
	p1, err := BuildExecProcess(base, ExecRequest{Args: []string{"a"}, Env: []string{"ONE=1"}, AddGids: []uint32{100}})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := BuildExecProcess(base, ExecRequest{Args: []string{"b"}, Env: []string{"TWO=2"}, AddGids: []uint32{200}})
	if err != nil {
		t.Fatal(err)
	}
	if p1.Env[2] != "ONE=1" || p2.Env[2] != "TWO=2" {
		t.Errorf("env slices alias: p1 %v, p2 %v", p1.Env, p2.Env)
	}
	if p1.User.AdditionalGids[1] != 100 || p2.User.AdditionalGids[1] != 200 {
		t.Errorf("gid slices alias: p1 %v, p2 %v", p1.User.AdditionalGids, p2.User.AdditionalGids)
	}
	p1.Args[0] = "changed"
	if p2.Args[0] != "b" || base.Args[0] != "sh" {
		t.Error("args alias between results or with base")
	}
}

func TestBuildExecProcessErrors(t *testing.T) {
	tests := []struct {
		name string
		req  ExecRequest
		want string
	}{
		{"non-numeric uid", ExecRequest{Args: []string{"x"}, User: "x:1"}, "uid must be a number"},
		{"user name", ExecRequest{Args: []string{"x"}, User: "root"}, "uid must be a number"},
		{"non-numeric gid", ExecRequest{Args: []string{"x"}, User: "1:y"}, "gid must be a number"},
		{"empty gid", ExecRequest{Args: []string{"x"}, User: "1:"}, "gid must be a number"},
		{"empty uid", ExecRequest{Args: []string{"x"}, User: ":1"}, "uid must be a number"},
		{"negative uid", ExecRequest{Args: []string{"x"}, User: "-1"}, "uid must be a number"},
		{"uid overflow", ExecRequest{Args: []string{"x"}, User: "4294967296"}, "uid must be a number"},
		{"no args", ExecRequest{}, "process.args must not be empty"},
		{"relative cwd", ExecRequest{Args: []string{"x"}, Cwd: "rel"}, "absolute"},
		{"bad env", ExecRequest{Args: []string{"x"}, Env: []string{"NOEQUALS"}}, "KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := baseProcess()
			p, err := BuildExecProcess(base, tt.req)
			if err == nil {
				t.Fatalf("BuildExecProcess succeeded: %+v", p)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !reflect.DeepEqual(base, baseProcess()) {
				t.Errorf("base mutated on error: %+v", base)
			}
		})
	}
}

func TestParseResources(t *testing.T) {
	res, err := ParseResources([]byte(`{"memory":{"limit":268435456,"swap":536870912},"cpu":{"shares":512,"cpus":"0-1"},"pids":{"limit":100}}`))
	if err != nil {
		t.Fatalf("ParseResources: %v", err)
	}
	if res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 268435456 ||
		res.Memory.Swap == nil || *res.Memory.Swap != 536870912 {
		t.Errorf("memory = %+v", res.Memory)
	}
	if res.CPU == nil || res.CPU.Shares == nil || *res.CPU.Shares != 512 || res.CPU.Cpus != "0-1" {
		t.Errorf("cpu = %+v", res.CPU)
	}
	if res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit != 100 {
		t.Errorf("pids = %+v", res.Pids)
	}
	empty, err := ParseResources([]byte(`{}`))
	if err != nil || empty.Memory != nil || empty.CPU != nil {
		t.Errorf("ParseResources({}) = %+v, %v", empty, err)
	}

	for _, bad := range []string{``, `{`, `not json`, `{"memory":{"limit":"big"}}`, `{"cpu":[]}`, `[]`} {
		t.Run(bad, func(t *testing.T) {
			res, err := ParseResources([]byte(bad))
			if err == nil {
				t.Fatalf("ParseResources(%q) = %+v, want error", bad, res)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), "resources JSON") {
				t.Errorf("error %q does not say resources JSON", err)
			}
		})
	}
}
