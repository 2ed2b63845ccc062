// Package testnet gives a test a network namespace of its own with a
// bridge in it, and optionally a DHCP server (dnsmasq) on that bridge: the
// network the pct double (test/pctdouble, state file `netns`) plugs its
// CTs' veths into. Every address lives only in that namespace: nothing in
// it routes anywhere, and the namespace with its bridge, veths and dnsmasq
// is removed when the test ends, failed or not.
package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// Subnet of the bridge; the same in every namespace (they never meet).
	Prefix = "10.213.0"
	// BridgeIP is the bridge's own address (the DHCP server's).
	BridgeIP = Prefix + ".1"
)

// Net is one test's namespace.
type Net struct {
	Name   string // for `ip netns exec Name`
	Bridge string
	dir    string
	t      *testing.T
}

// New makes the namespace "pxc-<random>" with lo up and the bridge (with
// BridgeIP/24). It skips the test without root or ip.
func New(t *testing.T, bridge string) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	if _, err := os.Stat("/bin/ip"); err != nil {
		t.Skip("needs /bin/ip (apt-get install iproute2)")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	n := &Net{Name: "pxc-" + hex.EncodeToString(b), Bridge: bridge, dir: t.TempDir(), t: t}
	if out, err := exec.Command("/bin/ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", n.Name, err, out)
	}
	t.Cleanup(n.remove)
	n.IP("link", "set", "lo", "up")
	n.IP("link", "add", bridge, "type", "bridge")
	n.IP("addr", "add", BridgeIP+"/24", "dev", bridge)
	n.IP("link", "set", bridge, "up")
	return n
}

// IP runs `ip -n NAME ARGS...` and fails the test on error.
func (n *Net) IP(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("/bin/ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -n %s %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Exec is a command run inside the namespace.
func (n *Net) Exec(name string, args ...string) *exec.Cmd {
	return exec.Command("/bin/ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// StartDHCP runs dnsmasq on the bridge (DHCP only, no DNS), handing out
// Prefix.100-200. It skips the test without /usr/sbin/dnsmasq.
func (n *Net) StartDHCP() {
	n.t.Helper()
	const dnsmasq = "/usr/sbin/dnsmasq"
	if _, err := os.Stat(dnsmasq); err != nil {
		n.t.Skip("needs dnsmasq (apt-get install dnsmasq)")
	}
	cmd := n.Exec(dnsmasq, "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=0", "--interface="+n.Bridge, "--bind-interfaces",
		"--dhcp-range="+Prefix+".100,"+Prefix+".200,255.255.255.0,1h",
		"--dhcp-leasefile="+n.Leases(), "--pid-file="+filepath.Join(n.dir, "dnsmasq.pid"))
	log, err := os.Create(filepath.Join(n.dir, "dnsmasq.log"))
	if err != nil {
		n.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("dnsmasq: %v", err)
	}
	n.t.Cleanup(func() {
		_ = cmd.Process.Kill() // ours, by pid
		_ = cmd.Wait()         // reaped; its exit status is the kill's
		log.Close()
	})
	// Ready when it listens on the DHCP port.
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, _ := n.Exec("cat", "/proc/net/udp").Output()
		if strings.Contains(string(out), ":0043 ") { // port 67
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(n.dir, "dnsmasq.log"))
			n.t.Fatalf("dnsmasq did not start:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Leases is dnsmasq's lease file.
func (n *Net) Leases() string { return filepath.Join(n.dir, "leases") }

// DHCPLog is what dnsmasq logged (for failure messages).
func (n *Net) DHCPLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "dnsmasq.log"))
	return string(b)
}

// remove deletes the namespace: its bridge and the host sides of the veths
// go with it (a CT still running keeps only its own end, which the kernel
// removes with the CT).
func (n *Net) remove() {
	out, err := exec.Command("/bin/ip", "netns", "del", n.Name).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testnet: ip netns del %s: %v\n%s", n.Name, err, out)
	}
}
