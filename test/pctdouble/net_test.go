package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxcage/proxcage/test/testnet"
)

// A missing bridge does not fail create (without mtu=) but start, with
// read_bridge_mtu's text, as on PVE.
func TestMissingBridgeFailsAtStart(t *testing.T) {
	e := newEnv(t)
	e.create(190, "--net0", "name=eth0,bridge=vmbr9,ip=dhcp")
	e.fails("bridge 'vmbr9' does not exist\n", "pct", "start", "190")
	if got := e.ok("pct", "status", "190"); got != "status: stopped\n" {
		t.Fatalf("after the failed start: %q", got)
	}
	e.write("bridges", "vmbr0 vmbr9\n")
	e.ok("pct", "start", "190")
	e.ok("pct", "stop", "190")
}

// netEnv is an env whose CTs run in a network namespace of the test's own
// (state file `netns`) with a bridge vmbr0.
func netEnv(t *testing.T) (*env, *testnet.Net) {
	e := newEnv(t)
	n := testnet.New(t, "vmbr0")
	e.write("netns", n.Name+"\n")
	// Registered after the namespace: runs before it is deleted.
	t.Cleanup(func() {
		ents, _ := os.ReadDir(e.dir + "/lxc")
		for _, ent := range ents {
			_ = n.Exec("/usr/bin/lxc-stop", "-P", e.dir+"/lxcpath", "-n", strings.TrimSuffix(ent.Name(), ".conf"), "-k").Run() // best effort: a stopped CT fails
		}
	})
	return e, n
}

// In the namespace a CT gets a real veth on the bridge there (host side
// vethVMIDiN, nothing in the host's namespace), and ip=dhcp on a
// host-managed NIC gets a lease from the DHCP server on the bridge.
func TestNetnsVethAndDHCP(t *testing.T) {
	e, n := netEnv(t)
	n.StartDHCP()
	e.create(191, "--entrypoint", "sleep 1000", "--net0", "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1")
	e.ok("pct", "start", "191")
	if out := n.IP("-o", "link", "show", "master", "vmbr0"); !strings.Contains(out, "veth191i0@") {
		t.Fatalf("no veth191i0 on vmbr0 in the namespace:\n%s", out)
	}
	if _, err := os.Stat("/sys/class/net/veth191i0"); err == nil {
		t.Fatal("veth191i0 is in the host's network namespace")
	}
	addr := e.ok("pct", "exec", "191", "--", "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(addr, " "+testnet.Prefix+".") {
		t.Fatalf("eth0 has no DHCP address:\n%s\ndnsmasq:\n%s", addr, n.DHCPLog())
	}
	if st := e.ok("lxc-info", "-n", "191", "-s", "-H"); st != "RUNNING\n" {
		t.Fatalf("lxc-info in the namespace: %q", st)
	}
	if got := e.ok("pvesh", "get", "/nodes/pve/network", "--output-format", "json"); !strings.Contains(got, `"vmbr0"`) {
		t.Fatalf("the namespace's bridges: %s", got)
	}
	e.ok("pct", "stop", "191")
}

// With no DHCP server, start waits for the client's timeout, warns as PVE
// does ("DHCP failed - ..."), succeeds, and the CT has no address.
func TestNetnsDHCPWithoutServer(t *testing.T) {
	e, _ := netEnv(t)
	e.write("dhcp-timeout", "3\n")
	e.create(192, "--entrypoint", "sleep 1000", "--net0", "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1")
	start := time.Now()
	r := e.run("pct", "start", "192")
	took := time.Since(start)
	if r.code != 0 || !strings.Contains(r.stderr, "WARN: DHCP failed - command 'lxc-attach -n 192 -s 'NETWORK|UTSNAME' -- aa-exec -p unconfined /sbin/dhclient -1 -4 -pf /var/lib/lxc/192/hook/dhclient4-eth0.pid -lf /var/lib/lxc/192/hook/dhclient4-eth0.leases -e 'ROOTFS=/proc/") ||
		!strings.HasSuffix(r.stderr, "/root' -sf /usr/share/lxc/hooks/dhclient-script eth0' failed: exit code 2\n") {
		t.Fatalf("start: exit %d\n%s", r.code, r.stderr)
	}
	if took < 2*time.Second {
		t.Fatalf("start took %s: the DHCP client did not wait for its timeout", took)
	}
	if addr := e.ok("pct", "exec", "192", "--", "ip", "-4", "-o", "addr", "show", "eth0"); strings.Contains(addr, "inet ") {
		t.Fatalf("eth0 has an address without a DHCP server:\n%s", addr)
	}
	e.ok("pct", "stop", "192")
}
