package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxcage/proxcage/test/testnet"
)

// pveNet puts the double's CTs into a network namespace of the test's own
// with the bridge vmbr0 (the config's bridge) and, with dhcp, a DHCP server
// on it: the double's state file `netns` names it (test/pctdouble/netns.go).
// Every address lives in that namespace; it goes away with the test.
func (p *pveEnv) pveNet(dhcp bool) *testnet.Net {
	p.t.Helper()
	p.needDouble()
	n := testnet.New(p.t, "vmbr0")
	if dhcp {
		n.StartDHCP()
	}
	if err := os.WriteFile(filepath.Join(p.state, "netns"), []byte(n.Name+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
	// Registered after the namespace, so it runs before the namespace is
	// deleted: LXC's command sockets live in it.
	p.t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(p.state, "lxc"))
		for _, ent := range ents {
			_ = n.Exec("/usr/bin/lxc-stop", "-P", filepath.Join(p.state, "lxcpath"), "-n", strings.TrimSuffix(ent.Name(), ".conf"), "-k").Run() // best effort: stopped CTs fail
		}
	})
	return n
}

// leaseOf waits for dnsmasq's lease of a MAC address and returns the IP.
func leaseOf(t *testing.T, n *testnet.Net, mac string) string {
	t.Helper()
	mac = strings.ToLower(mac)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(n.Leases())
		for _, l := range strings.Split(string(b), "\n") {
			// "<expiry> <mac> <ip> <hostname> <client-id>"
			if f := strings.Fields(l); len(f) >= 3 && f[1] == mac {
				return f[2]
			}
		}
	}
	t.Fatalf("no DHCP lease for %s; dnsmasq:\n%s", mac, n.DHCPLog())
	return ""
}

// An application CT (busybox httpd) gets a real veth on the bridge in the
// test's namespace, its address from the DHCP server there (PVE runs the
// DHCP client for host-managed ip=dhcp NICs at start), and answers HTTP on
// it from inside that namespace.
func TestPVENetApplicationAnswersHTTPOnDHCPAddress(t *testing.T) {
	p := newPVEEnv(t)
	n := p.pveNet(true)
	b := p.bundle("web", []string{"/bin/httpd", "-f", "-p", "8080", "-h", "/www"}, nil)
	www := filepath.Join(b, "rootfs", "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from the CT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.ok("run", "-d", "--bundle", b, "web")
	vmid := vmidOf(t, p.state_("web"))
	conf := p.pct("config", strconv.Itoa(vmid))
	var mac string
	for _, l := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(l, "net0: "); ok {
			if !strings.Contains(v, "host-managed=1") || !strings.Contains(v, "ip=dhcp") || !strings.Contains(v, "bridge=vmbr0") {
				t.Fatalf("net0 is not a host-managed DHCP NIC on vmbr0: %s", v)
			}
			for _, kv := range strings.Split(v, ",") {
				if m, ok := strings.CutPrefix(kv, "hwaddr="); ok {
					mac = m
				}
			}
		}
	}
	if mac == "" {
		t.Fatalf("no net0 hwaddr:\n%s", conf)
	}
	ip := leaseOf(t, n, mac)
	if !strings.HasPrefix(ip, testnet.Prefix+".") {
		t.Fatalf("lease %s outside the namespace's subnet", ip)
	}
	if out := n.IP("-o", "link", "show", "master", "vmbr0"); !strings.Contains(out, "veth"+strconv.Itoa(vmid)+"i0@") {
		t.Fatalf("the CT's veth is not on vmbr0 in the namespace:\n%s", out)
	}
	if _, err := os.Stat("/sys/class/net/veth" + strconv.Itoa(vmid) + "i0"); err == nil {
		t.Fatal("the CT's veth is in the host's network namespace")
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := n.Exec("timeout", "5", "/bin/busybox", "wget", "-q", "-O", "-", "http://"+ip+":8080/").CombinedOutput() // not wget -T: busybox 1.35's crashes
		body = string(out)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if body != "hello from the CT\n" {
		c := n.Exec(filepath.Join(p.dir, "pvebin", "pct"), "exec", strconv.Itoa(vmid), "--", "sh", "-c", "ps; ip -4 addr; netstat -ltn")
		c.Env = append(os.Environ(), p.extraEnv...)
		ps, _ := c.CombinedOutput()
		t.Fatalf("GET http://%s:8080/ from the namespace: %q\nin the CT:\n%s", ip, body, ps)
	}
	p.ok("delete", "--force", "web")
	if out := p.pctList(); out != "" {
		t.Fatalf("CT left:\n%s", out)
	}
}

// A missing bridge fails at start, not at create (PVE reads the bridge's
// MTU when it writes the LXC config at start: pve-common Network.pm
// read_bridge_mtu): create succeeds, start fails with the bridge hint.
func TestPVENetMissingBridgeFailsAtStart(t *testing.T) {
	p := newPVEEnv(t)
	p.pveNet(false)
	cfg, _ := os.ReadFile(p.config)
	if err := os.WriteFile(p.config, []byte(strings.Replace(string(cfg), `bridge = "vmbr0"`, `bridge = "vmbr7"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	b := p.systemBundle("sys", nil)
	p.ok("create", "--bundle", b, "br")
	r := p.run("start", "br")
	wantError(t, "start on a missing bridge", r, 2, "bridge 'vmbr7' does not exist", "[pve] bridge")
	if st := p.state_("br"); st.Status != "created" {
		t.Fatalf("after the failed start: %s", st.Status)
	}
	p.ok("delete", "--force", "br")
}

// The same from an image on the 9.1 double (an OCI archive template, whose
// network PVE makes host-managed): `run -d --image` with a command serves
// HTTP on the CT's DHCP address inside the test's namespace.
func TestPVENetImageAnswersHTTPOnDHCPAddress(t *testing.T) {
	p := newPVEEnv(t)
	n := p.pveNet(true)
	withDataDir(t, p.env)
	reg := serveTestImages(t)
	p.ok("run", "-d", "-q", "--image", reg.Host+"/test/busybox:1", "img-web", "--",
		"sh", "-c", "mkdir -p /www && echo hello from the image > /www/index.html && exec httpd -f -p 8080 -h /www")
	vmid := vmidOf(t, p.state_("img-web"))
	var mac string
	for _, l := range strings.Split(p.pct("config", strconv.Itoa(vmid)), "\n") {
		if v, ok := strings.CutPrefix(l, "net0: "); ok {
			for _, kv := range strings.Split(v, ",") {
				if m, ok := strings.CutPrefix(kv, "hwaddr="); ok {
					mac = m
				}
			}
		}
	}
	ip := leaseOf(t, n, mac)
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := n.Exec("timeout", "5", "/bin/busybox", "wget", "-q", "-O", "-", "http://"+ip+":8080/").CombinedOutput()
		body = string(out)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if body != "hello from the image\n" {
		t.Fatalf("GET http://%s:8080/ from the namespace: %q", ip, body)
	}
	p.ok("delete", "--force", "img-web")
}
