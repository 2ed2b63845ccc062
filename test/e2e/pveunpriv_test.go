package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/subids"
)

// needUnprivileged prepares the host for the double's unprivileged CTs as a
// PVE node is: root's subordinate ids (root:100000:65536 in /etc/subuid and
// /etc/subgid, taken back once no test needs them), and a state dir the
// mapped root (host uid 100000) can walk to (go test's temp dirs are 0700;
// /var/lib/lxc is 0755).
func needUnprivileged(t *testing.T, state string) {
	t.Helper()
	release, err := subids.Acquire(t.Name())
	if err != nil {
		t.Fatalf("subordinate ids for unprivileged CTs: %v", err)
	}
	t.Cleanup(release)
	for dir := state; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// unprivilegedShift is where PVE's default id map puts an unprivileged
// CT's id 0 on the host (pve-container src/PVE/LXC.pm parse_id_maps).
const unprivilegedShift = 100000

// A rootfs with an owner outside the unprivileged CT's 65536 ids is refused
// in one line before anything is made: on PVE the create task would die in
// tar inside the CT's user namespace, after the template upload.
func TestPVEUnprivilegedIDRangeRefusedBeforeCreate(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	b := p.systemBundle("big", nil)
	f := filepath.Join(b, "rootfs", "etc", "big")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 70000, 0); err != nil {
		t.Fatal(err)
	}
	r := p.run("create", "--bundle", b, "big")
	wantError(t, "owner outside the id map", r, 2, "rootfs /etc/big is owned by uid 70000, gid 0", "ids 0-65535", "allow_privileged")
	p.assertRootEmpty()
	if out := p.pctList(); out != "" {
		t.Fatalf("CT left:\n%s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.state, "storage", "local", "template", "cache")); len(ents) != 0 {
		t.Fatalf("a template was written for a rootfs that cannot be extracted: %v", ents)
	}
}

// The double's CTs are unprivileged for real: init runs as host uid
// 100000, the CT sees the id map PVE writes, and its rootfs on disk is
// owned by the mapped root.
func TestPVEUnprivilegedCTRunsInTheIDMap(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	b := p.systemBundle("sys", nil)
	p.ok("run", "-d", "--bundle", b, "unpriv")
	st := p.state_("unpriv")
	var s syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d", st.Pid), &s); err != nil || s.Uid != unprivilegedShift {
		t.Fatalf("init %d runs as host uid %d (%v), want %d", st.Pid, s.Uid, err, unprivilegedShift)
	}
	if out := p.ok("exec", "unpriv", "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != "0 100000 65536" {
		t.Fatalf("uid_map: %q", out)
	}
	vmid := vmidOf(t, st)
	if lxc, err := os.ReadFile(filepath.Join(p.state, "lxcpath", strconv.Itoa(vmid), "config")); err != nil ||
		!strings.Contains(string(lxc), "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n") {
		t.Fatalf("LXC config lacks PVE's id map (%v):\n%s", err, lxc)
	}
	if err := syscall.Stat(filepath.Join(p.ctRootfs(vmid), "sbin", "init"), &s); err != nil || s.Uid != unprivilegedShift {
		t.Fatalf("rootfs owned by %d (%v)", s.Uid, err)
	}
	p.ok("delete", "--force", "unpriv")
}

// A writable bind mount of a host directory the CT's mapped root cannot
// write gets a warning at create (PVE binds it as it is: host-owned files
// are nobody's in the CT); chowned to the mapped root it is writable and
// quiet.
func TestPVEUnprivilegedBindMountOwners(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	hostDir := filepath.Join(p.dir, "hostdata")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := p.systemBundle("bind", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "rw"}})
	})
	r := p.run("run", "-d", "--bundle", b, "b1")
	if r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	want := "bind mount " + hostDir + " -> /data: the unprivileged CT sees host uid 0 as nobody and its root (host uid 100000) cannot write there; chown it to 100000:100000"
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("no warning %q:\n%s", want, r.stderr)
	}
	if out := p.ok("exec", "b1", "stat", "-c", "%u", "/data"); out != "65534\n" {
		t.Fatalf("/data owner in the CT: %q, want 65534 (nobody)", out)
	}
	if r := p.run("exec", "b1", "touch", "/data/x"); r.code == 0 {
		t.Fatal("the CT's root wrote to a host directory it does not own")
	}
	p.ok("delete", "--force", "b1")
	if err := os.Chown(hostDir, unprivilegedShift, unprivilegedShift); err != nil {
		t.Fatal(err)
	}
	r = p.run("run", "-d", "--bundle", b, "b2")
	if r.code != 0 || strings.Contains(r.stderr, "bind mount") {
		t.Fatalf("run with the dir owned by the mapped root: exit %d: %s", r.code, r.stderr)
	}
	p.ok("exec", "b2", "touch", "/data/x")
	p.ok("delete", "--force", "b2")
	// World-writable and root's (as podman's shm tmpfs, mode 1777): the
	// CT's root writes there as anyone may, so no warning. A warning here
	// reached a podman run's output in CI.
	if err := os.Chown(hostDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(hostDir, 0o1777); err != nil {
		t.Fatal(err)
	}
	r = p.run("run", "-d", "--bundle", b, "b3")
	if r.code != 0 || strings.Contains(r.stderr, "bind mount") {
		t.Fatalf("run with a world-writable dir: exit %d: %s", r.code, r.stderr)
	}
	p.ok("exec", "b3", "touch", "/data/y")
	p.ok("delete", "--force", "b3")
}
