package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The lxc backend: real LXC containers (lxc-execute) from OCI bundles.

func newLXCEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if _, err := exec.LookPath("lxc-execute"); err != nil {
		t.Skip("needs lxc-execute (apt-get install lxc)")
	}
	if err := os.WriteFile(e.config, []byte("default_backend = \"lxc\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLXCRunExecKillDelete(t *testing.T) {
	e := newLXCEnv(t)
	b := e.bundle("lx", []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; while :; do sleep 0.1; done"}, func(s *specs.Spec) {
		s.Hostname = "lxc-box"
		s.Process.Env = append(s.Process.Env, "GREETING=hi")
	})
	pidFile := filepath.Join(e.dir, "pid")
	e.ok("create", "--bundle", b, "--pid-file", pidFile, "lx1")
	// created: the init and its namespaces exist, the process waits.
	created := e.state("lx1")
	if created.Status != specs.StateCreated || created.Pid <= 0 || !alive(created.Pid) {
		t.Fatalf("after create: %+v", created)
	}
	// Until start, pid 2 (under init.lxc) is the stand-in holding the
	// process back.
	if out := e.ok("exec", "lx1", "cat", "/proc/2/cmdline"); !strings.HasPrefix(out, "/dev/.proxcage-init\x00") {
		t.Fatalf("pid 2 before start: %q", out)
	}
	e.ok("start", "lx1")
	st := e.waitStatus("lx1", specs.StateRunning)
	if st.Pid != created.Pid {
		t.Fatalf("pid changed from %d to %d at start", created.Pid, st.Pid)
	}
	if out := e.ok("exec", "lx1", "cat", "/proc/2/cmdline"); !strings.HasPrefix(out, "sh\x00-c\x00") {
		t.Fatalf("pid 2 after start: %q", out)
	}
	if st.Pid <= 0 || !alive(st.Pid) {
		t.Fatalf("running container has no live pid: %+v", st)
	}
	if data, _ := os.ReadFile(pidFile); string(data) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q, state pid %d", data, st.Pid)
	}
	// The state's pid is the keeper's (lxc-execute, what the pid file
	// names); the init's is in an annotation, and its namespaces are not
	// the host's.
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/comm"); string(comm) != "lxc-execute\n" {
		t.Fatalf("state pid %d is %q, not the keeper lxc-execute", st.Pid, comm)
	}
	initPid := st.Annotations["org.proxcage.init-pid"]
	if ppid := procPPid(t, initPid); ppid != st.Pid {
		t.Fatalf("init %s has parent %d, not the keeper %d", initPid, ppid, st.Pid)
	}
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		ctr, _ := os.Readlink("/proc/" + initPid + "/ns/" + ns)
		if host == ctr {
			t.Errorf("%s namespace shared with the host", ns)
		}
	}
	if out := e.ok("exec", "lx1", "hostname"); out != "lxc-box\n" {
		t.Fatalf("exec hostname: %q", out)
	}
	if out := e.ok("exec", "--env", "X=1", "--cwd", "/tmp", "lx1", "sh", "-c", "echo $X $(pwd)"); out != "1 /tmp\n" {
		t.Fatalf("exec env/cwd: %q", out)
	}
	if r := e.run("exec", "lx1", "sh", "-c", "exit 6"); r.code != 6 {
		t.Fatalf("exec exit status %d", r.code)
	}
	var pids []int
	json.Unmarshal([]byte(e.ok("ps", "--format", "json", "lx1")), &pids)
	if len(pids) < 2 {
		t.Fatalf("ps: %v", pids)
	}
	if r := e.run("delete", "lx1"); r.code != 5 {
		t.Fatalf("delete of a running container: exit %d %q", r.code, r.stderr)
	}
	e.ok("pause", "lx1")
	e.waitStatus("lx1", specs.ContainerState("paused"))
	e.ok("resume", "lx1")
	e.waitStatus("lx1", specs.StateRunning)
	e.ok("kill", "lx1", "TERM")
	e.waitStatus("lx1", specs.StateStopped)
	e.ok("delete", "lx1")
	e.assertRootEmpty()
}

func TestLXCForegroundRunExitStatus(t *testing.T) {
	e := newLXCEnv(t)
	b := e.bundle("fg", []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, nil)
	r := e.run("run", "--bundle", b, "fg1")
	if r.code != 7 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err") {
		t.Fatalf("run: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	e.assertRootEmpty()
}

// procPPid reads a process's parent pid from /proc.
func procPPid(t *testing.T, pid string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold blanks, so cut after ')'.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

// An engine (conmon, containerd's shim) is the subreaper of what the pid
// file of `create` names, waits for it and reads the process's exit status
// from it, and gets the output on the fds it gave create.
func TestLXCKeeperIsWhatEnginesWaitFor(t *testing.T) {
	e := newLXCEnv(t)
	for _, c := range []struct {
		name string
		args []string
		kill string
		want int
	}{
		{"exit", []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, "", 7},
		{"killed", []string{"sleep", "1000"}, "KILL", 137},
	} {
		t.Run(c.name, func(t *testing.T) {
			subreaper(t)
			b := e.bundle("kp-"+c.name, c.args, nil)
			pidFile := filepath.Join(e.dir, "kp-"+c.name+".pid")
			out, errf := tempFile(t), tempFile(t)
			cmd := e.cmd("create", "--bundle", b, "--pid-file", pidFile, "kp-"+c.name)
			cmd.Stdout, cmd.Stderr = out, errf
			if err := cmd.Run(); err != nil {
				t.Fatalf("create: %v %s", err, readAll(t, errf))
			}
			data, _ := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(string(data))
			e.ok("start", "kp-"+c.name)
			if c.kill != "" {
				e.waitStatus("kp-"+c.name, specs.StateRunning)
				e.ok("kill", "kp-"+c.name, c.kill)
			}
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
				t.Fatalf("wait for the pid file's %d: %v", pid, err)
			}
			if !ws.Exited() || ws.ExitStatus() != c.want {
				t.Fatalf("pid file's process ended %v, want exit %d", ws, c.want)
			}
			if st := e.state("kp-" + c.name); st.Status != specs.StateStopped {
				t.Fatalf("after the keeper exited: %+v", st)
			}
			if c.kill == "" {
				if o, eo := readAll(t, out), readAll(t, errf); o != "out\n" || !strings.Contains(eo, "err") {
					t.Fatalf("stdout %q stderr %q", o, eo)
				}
			}
			e.ok("delete", "kp-"+c.name)
		})
	}
	e.assertRootEmpty()
}

// subreaper makes this test process the subreaper of orphans, as conmon
// and containerd's shim are, until the test ends.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

func TestLXCKillCreatedAndDeleteForce(t *testing.T) {
	e := newLXCEnv(t)
	b := e.bundle("kc", []string{"sleep", "1000"}, nil)
	e.ok("create", "--bundle", b, "kc1")
	e.ok("kill", "kc1", "KILL")
	// kill only sends the signal, as runc's: the keeper (lxc-execute)
	// sees its init die a moment later (under load, after the first look).
	e.waitStatus("kc1", specs.StateStopped)
	if r := e.run("start", "kc1"); r.code == 0 {
		t.Fatal("started a killed container")
	}
	e.ok("delete", "kc1")
	e.ok("run", "-d", "--bundle", b, "kc2")
	st := e.waitStatus("kc2", specs.StateRunning)
	e.ok("delete", "--force", "kc2")
	if alive(st.Pid) {
		t.Fatalf("pid %d alive after delete --force", st.Pid)
	}
	e.assertRootEmpty()
}

func TestLXCResourceLimitsInCgroups(t *testing.T) {
	e := newLXCEnv(t)
	limit := int64(64 << 20)
	pids := int64(64)
	shares := uint64(512)
	b := e.bundle("lim", []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &limit},
			Pids:   &specs.LinuxPids{Limit: &pids},
			CPU:    &specs.LinuxCPU{Shares: &shares},
		}
	})
	e.ok("run", "-d", "--bundle", b, "lim1")
	st := e.waitStatus("lim1", specs.StateRunning)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("cgroup v2 host: this check reads v1 files")
	}
	for file, want := range map[[2]string]string{
		{"memory", "memory.limit_in_bytes"}: strconv.FormatInt(limit, 10),
		{"pids", "pids.max"}:                strconv.FormatInt(pids, 10),
		{"cpu", "cpu.shares"}:               strconv.FormatUint(shares, 10),
	} {
		initPid, _ := strconv.Atoi(st.Annotations["org.proxcage.init-pid"])
		p := cgroupFile(t, initPid, file[0], file[1])
		data, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(data)) != want {
			t.Errorf("%s = %q (%v), want %s", p, data, err, want)
		}
	}
	e.ok("delete", "--force", "lim1")
}

func TestLXCDebianMinbase(t *testing.T) {
	e := newLXCEnv(t)
	rootfs := debianRootfs(t)
	b := e.bundle("deb", []string{"/bin/bash", "-c", "exec sleep infinity"}, func(s *specs.Spec) {
		s.Root.Path = rootfs
		s.Root.Readonly = true
	})
	e.ok("run", "-d", "--bundle", b, "deb1")
	e.waitStatus("deb1", specs.StateRunning)
	if out := e.ok("exec", "deb1", "cat", "/etc/debian_version"); !strings.HasPrefix(out, "12.") {
		t.Fatalf("/etc/debian_version %q", out)
	}
	if out := e.ok("exec", "--cwd", "/etc", "-u", "65534:65534", "deb1", "sh", "-c", "pwd; id -u"); out != "/etc\n65534\n" {
		t.Fatalf("exec --cwd/--user: %q", out)
	}
	if r := e.run("exec", "deb1", "touch", "/etc/x"); r.code == 0 {
		t.Fatal("wrote to a read-only rootfs")
	}
	e.ok("kill", "deb1", "KILL")
	e.waitStatus("deb1", specs.StateStopped)
	e.ok("delete", "deb1")
	e.assertRootEmpty()
}

func TestLXCHooksAndBadInput(t *testing.T) {
	e := newLXCEnv(t)
	out := filepath.Join(e.dir, "hook.json")
	b := e.bundle("hk", []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + out}}}}
	})
	e.ok("run", "-d", "--bundle", b, "hk1")
	st := e.waitStatus("hk1", specs.StateRunning)
	var hs specs.State
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &hs); err != nil || hs.ID != "hk1" || hs.Pid <= 0 || hs.Bundle != b {
		t.Fatalf("createRuntime hook got state %q (%v)", data, err)
	}
	_ = st
	e.ok("delete", "--force", "hk1")

	bad := e.bundle("bad", []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
	})
	r := e.run("create", "--bundle", bad, "bad1")
	if r.code != 2 || !strings.Contains(r.stderr, "startContainer") {
		t.Fatalf("startContainer hook: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "startContainer hook", r.stderr)
	e.assertRootEmpty()
}
