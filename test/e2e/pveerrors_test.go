package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Issue 14, point 8 on the pct double: the texts a real node prints for
// these conditions (the double prints them at the real stage, see
// test/pctdouble/pveerrors.go) reach the operator as one line with the
// right exit code and a hint, and nothing is left behind.

func (p *pveEnv) writeState(name string, v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.state, name), b, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// cmdPvesh is the double's pvesh, as an operator would run it.
func (p *pveEnv) cmdPvesh(args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(filepath.Dir(p.pctPath()), "pvesh"), args...)
	c.Env = append(os.Environ(), p.extraEnv...)
	return c
}

func (p *pveEnv) setRootfsStorage(sid string) {
	p.t.Helper()
	cfg, err := os.ReadFile(p.config)
	if err != nil {
		p.t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^rootfs_storage = .*$`).ReplaceAllString(string(cfg), `rootfs_storage = "`+sid+`"`)
	if err := os.WriteFile(p.config, []byte(s), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func TestPVEErrorTextsOfARealNode(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	b := p.systemBundle("sys", nil)
	faults := filepath.Join(p.state, "faults")
	type storage struct {
		Storage  string   `json:"storage"`
		Type     string   `json:"type"`
		Content  string   `json:"content"`
		Disabled bool     `json:"disabled,omitempty"`
		Nodes    []string `json:"nodes,omitempty"`
	}
	std := func() []storage {
		return []storage{{Storage: "local", Type: "dir", Content: "vztmpl,iso,backup"}, {Storage: "local-lvm", Type: "lvmthin", Content: "rootdir,images"}}
	}
	failing := []struct {
		name  string
		setup func()
		want  []string // in stderr
		code  int
	}{
		{"storage without container directories", func() { p.setRootfsStorage("local") },
			[]string{"400 Parameter verification failed.", "storage: storage 'local' does not support container directories", `[pve] rootfs_storage = "local"`, "content rootdir"}, 2},
		{"storage disabled", func() {
			s := std()
			s[1].Disabled = true
			p.writeState("storages.json", s)
		}, []string{"storage 'local-lvm' is disabled", `[pve] rootfs_storage = "local-lvm"`, "pvesm set local-lvm --disable 0"}, 2},
		{"storage of other nodes", func() {
			s := std()
			s[1].Nodes = []string{"pve2"}
			p.writeState("storages.json", s)
		}, []string{"storage 'local-lvm' is not available on node 'pve'", `[pve] rootfs_storage = "local-lvm"`, "limited to other nodes"}, 2},
		{"no quorum", func() { os.WriteFile(faults, []byte("pct create pve noquorum\n"), 0o644) },
			[]string{"cluster not ready - no quorum?", "pvecm status"}, 6},
	}
	for _, c := range failing {
		func() { // sections, not subtests: pveEnv fails its own t
			c.setup()
			defer func() {
				os.Remove(faults)
				os.Remove(filepath.Join(p.state, "storages.json"))
				p.setRootfsStorage("local-lvm")
			}()
			r := p.run("create", "--bundle", b, "bad")
			if r.code != c.code {
				t.Errorf("%s: exit %d, want %d: %s", c.name, r.code, c.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("%s: stderr lacks %q: %s", c.name, w, r.stderr)
				}
			}
			oneLine(t, c.name, r.stderr)
			p.assertNothingLeft(c.name)
		}()
	}

	// A VMID lost to a create on another node at the same moment: another
	// VMID is picked, the racer's CT is left alone.
	func() { // cross-node VMID race
		os.WriteFile(faults, []byte("pct create pve race:pve2 once\n"), 0o644)
		defer os.Remove(faults)
		p.ok("create", "--bundle", b, "racy")
		out := p.pct("list")
		if !strings.Contains(out, "101 ") || strings.Contains(out, "100 ") {
			t.Errorf("want the CT at 101 (100 is the racer's on pve2):\n%s", out)
		}
		vms, _ := os.ReadFile(filepath.Join(p.state, "vms.json"))
		if !strings.Contains(string(vms), `"vmid":100`) || !strings.Contains(string(vms), `"node":"pve2"`) {
			t.Errorf("racer: %s", vms)
		}
		p.ok("delete", "-f", "racy")
		os.Remove(filepath.Join(p.state, "vms.json"))
	}()

	// A cluster lock held elsewhere for a moment: retried, not surfaced.
	func() { // cfs-lock timeout
		os.WriteFile(faults, []byte("pct create pve cfslock once\n"), 0o644)
		defer os.Remove(faults)
		p.ok("create", "--bundle", b, "cfs")
		p.ok("delete", "-f", "cfs")
	}()

	// A lock name with a dash (AbstractConfig.pm check_lock): unavailable,
	// retried, then said with the lock's name.
	func() { // lock with a dash
		p.ok("create", "--bundle", b, "locked")
		vmid := strings.Fields(p.pct("list"))[4] // header: VMID Status Lock Name
		p.pct("set", vmid, "--lock", "snapshot-delete")
		r := p.run("start", "locked")
		if r.code != 6 || !strings.Contains(r.stderr, "CT is locked (snapshot-delete)") || !strings.Contains(r.stderr, "a 'snapshot-delete' operation holds the CT lock") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
		oneLine(t, "locked", r.stderr)
		p.pct("unlock", vmid)
		p.ok("delete", "-f", "locked")
	}()

	// nextid says "VM N" for a CT too (pve-manager API2/Cluster.pm).
	func() { // nextid of a taken VMID
		p.ok("create", "--bundle", b, "held")
		vmid := strings.Fields(p.pct("list"))[4]
		c := p.cmdPvesh("get", "/cluster/nextid", "--vmid", vmid)
		out, err := c.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "vmid: VM "+vmid+" already exists") {
			t.Errorf("pvesh nextid --vmid %s: %v %s", vmid, err, out)
		}
		p.ok("delete", "-f", "held")
	}()
}
