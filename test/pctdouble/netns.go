package main

// CT networking. Two modes, chosen by the state file `netns`:
//
//   - `netns` names a network namespace (one `ip netns add NAME` made, so
//     /run/netns/NAME): every LXC tool the double runs (lxc-start, -stop,
//     -info, -attach, -wait) runs inside it through `ip netns exec NAME`.
//     The bridges are that namespace's real bridges, each netN becomes a
//     real veth pair (host side vethVMIDiN, as PVE names it) enslaved to the
//     bridge there, and ip=dhcp on a host-managed NIC runs a DHCP client in
//     the CT's netns after start, as PVE runs dhclient. Nothing touches the
//     host's own network namespace. The LXC tools must all run in the same
//     namespace: their command socket is an abstract unix socket, and those
//     are per network namespace.
//   - no `netns`: the bridges are the names in the file `bridges` (default
//     vmbr0) and a CT gets no NIC (lxc.net.0.type = empty); the bridge and
//     MTU checks behave as in the first mode.
//
// The checks follow PVE at the stage where PVE makes them: a missing bridge
// fails `pct start` (update_lxc_config calls pve-common Network.pm
// read_bridge_mtu: "bridge 'X' does not exist"), and fails create/set only
// when the NIC sets mtu= (Config.pm update_pct_config).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/test/pveschema"
)

// netnsName is the network namespace the CTs' LXC runs in ("" = none).
func netnsName() string { return readTrimmed("netns", "") }

// lxcArgv is the argv that runs an LXC tool, inside the namespace when one is
// configured.
func lxcArgv(tool string, args ...string) []string {
	argv := append([]string{lxcBin(tool)}, args...)
	if ns := netnsName(); ns != "" {
		argv = append([]string{"/bin/ip", "netns", "exec", ns}, argv...)
	}
	return argv
}

// lxcCmd is exec.Command for an LXC tool (see lxcArgv).
func lxcCmd(tool string, args ...string) *exec.Cmd {
	argv := lxcArgv(tool, args...)
	return exec.Command(argv[0], argv[1:]...)
}

// netnsBridges lists the bridges of the namespace.
func netnsBridges(ns string) map[string]bool {
	res := map[string]bool{}
	out, err := exec.Command("/bin/ip", "-n", ns, "-o", "link", "show", "type", "bridge").Output()
	if err != nil {
		return res
	}
	for _, l := range strings.Split(string(out), "\n") {
		// "3: vmbr0: <BROADCAST,...> mtu 1500 ..."
		f := strings.Fields(l)
		if len(f) > 1 {
			res[strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")] = true
		}
	}
	return res
}

// readBridgeMTU is pve-common Network.pm read_bridge_mtu: the first line of
// /sys/class/net/BRIDGE/mtu (in the namespace: `ip netns exec` mounts its
// own /sys), or "bridge 'X' does not exist".
func readBridgeMTU(bridge string) (int, error) {
	var line string
	if ns := netnsName(); ns != "" {
		out, err := exec.Command("/bin/ip", "netns", "exec", ns, "cat", "/sys/class/net/"+bridge+"/mtu").Output()
		if err == nil && !strings.Contains(bridge, "/") {
			line = strings.TrimSpace(string(out))
		}
	} else if bridges()[bridge] {
		line = "1500"
	}
	if line == "" {
		return 0, fail("bridge '%s' does not exist", bridge)
	}
	mtu, err := strconv.Atoi(line)
	if err != nil {
		return 0, fail("unexpeted error: unable to parse mtu value '%s' as integer", line) // sic, as in Network.pm
	}
	return mtu, nil
}

// checkNetMTU is update_pct_config's check of a netN at create/set: only a
// NIC with mtu= reads the bridge.
func checkNetMTU(key string, n map[string]string) error {
	mtu, _ := strconv.Atoi(n["mtu"])
	if mtu == 0 {
		return nil
	}
	bmtu, err := readBridgeMTU(n["bridge"])
	if err != nil {
		return err
	}
	if mtu > bmtu {
		return fail("%s: MTU size '%d' is bigger than bridge MTU '%d'", key, mtu, bmtu)
	}
	return nil
}

// netConfig writes the lxc.net.* lines of update_lxc_config, in its order
// (netN sorted as strings, as Perl's sort keys). Without a namespace the
// checks run and the CT gets no NIC.
func netConfig(vmid int, c *ctConf, w func(k, v string)) error {
	format := method("lxc-create").Properties["net[n]"].PropertyFormat
	ns := netnsName()
	nics := 0
	for _, k := range sortedKeys(c.Keys) {
		if !pveschema.IndexedNameRE.MatchString(k) || !strings.HasPrefix(k, "net") {
			continue
		}
		ind := strings.TrimPrefix(k, "net")
		d := pveschema.SplitPropertyString(format, c.Keys[k])
		bmtu, err := readBridgeMTU(d["bridge"])
		if err != nil {
			return err
		}
		mtu := bmtu
		if m, _ := strconv.Atoi(d["mtu"]); m != 0 {
			mtu = m
		}
		if mtu > bmtu {
			return fail("%s: MTU size '%d' is bigger than bridge MTU '%d'", k, mtu, bmtu)
		}
		if ns == "" {
			continue
		}
		nics++
		p := "lxc.net." + ind + "."
		w(p+"type", "veth")
		w(p+"veth.pair", fmt.Sprintf("veth%di%s", vmid, ind))
		if d["hwaddr"] != "" {
			w(p+"hwaddr", d["hwaddr"])
		}
		if d["name"] != "" {
			w(p+"name", d["name"])
		}
		w(p+"mtu", strconv.Itoa(mtu))
		// PVE: lxc.net.N.script.up = lxcnetaddbr, which sets the host side
		// up and plugs it into the bridge; lxc.net.N.link does the same.
		w(p+"link", d["bridge"])
		if b, _ := pveschema.ParseBoolean(d["link_down"]); b != "1" && isHostManaged(d) {
			if ip := d["ip"]; ip != "" && ip != "dhcp" && ip != "manual" {
				w(p+"ipv4.address", ip)
			}
			if d["gw"] != "" {
				w(p+"ipv4.gateway", d["gw"])
			}
			if ip6 := d["ip6"]; ip6 != "" {
				if ip6 == "auto" {
					return fail("%s: SLAAC is not supported for host-managed network configuration", k)
				}
				if ip6 != "dhcp" && ip6 != "manual" {
					w(p+"ipv6.address", ip6)
				}
			}
			if d["gw6"] != "" {
				w(p+"ipv6.gateway", d["gw6"])
			}
			w(p+"flags", "up")
		}
	}
	if nics == 0 {
		w("lxc.net.0.type", "empty")
	}
	return nil
}

func isHostManaged(d map[string]string) bool {
	b, _ := pveschema.ParseBoolean(d["host-managed"])
	return b == "1"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dhcpTimeout is how long the DHCP client tries: dhclient's default timeout
// (60 s); the state file `dhcp-timeout` (seconds) shortens it for tests.
func dhcpTimeout() int {
	n, err := strconv.Atoi(readTrimmed("dhcp-timeout", "60"))
	if err != nil || n < 1 {
		return 60
	}
	return n
}

// udhcpcScript stands in for lxc's hooks/dhclient-script: it runs in the
// CT's network namespace (with the host's mount namespace, as dhclient
// does under lxc-attach -s NETWORK|UTSNAME) and configures the lease.
const udhcpcScript = `#!/bin/sh
# written by pctdouble: the DHCP client's event script (lxc dhclient-script's part that sets the address)
case "$1" in
deconfig) /bin/ip -4 addr flush dev "$interface"; /bin/ip link set dev "$interface" up ;;
bound|renew)
	/bin/ip -4 addr flush dev "$interface"
	/bin/ip -4 addr add "$ip/${mask:-24}" dev "$interface"
	if [ -n "$router" ]; then /bin/ip -4 route replace default via "${router%% *}" dev "$interface"; fi ;;
esac
exit 0
`

// startDHCP is the end of PVE::LXC::vm_start: for each host-managed NIC
// with ip=dhcp, manage_dhclient('start', ...) runs the host's
// `dhclient -1` in the CT's network namespace; a failure is a warning
// ("DHCP failed - ..."), not a failed start. The double runs busybox's
// udhcpc (the host has no dhclient) the same way: lxc-attach -s
// NETWORK|UTSNAME, trying for dhcpTimeout seconds. Only with a namespace:
// without one the CT has no NIC.
func startDHCP(vmid int, c *ctConf) {
	if netnsName() == "" {
		return
	}
	format := method("lxc-create").Properties["net[n]"].PropertyFormat
	var eths []string
	for _, k := range sortedKeys(c.Keys) {
		if !pveschema.IndexedNameRE.MatchString(k) || !strings.HasPrefix(k, "net") {
			continue
		}
		d := pveschema.SplitPropertyString(format, c.Keys[k])
		if isHostManaged(d) && d["ip"] == "dhcp" {
			eths = append(eths, d["name"])
		}
	}
	if len(eths) == 0 {
		return
	}
	hook := filepath.Join(lxcPath(), strconv.Itoa(vmid), "hook")
	script := filepath.Join(hook, "udhcpc-script")
	if err := os.MkdirAll(hook, 0o755); err == nil {
		_ = os.WriteFile(script, []byte(udhcpcScript), 0o755) // a missing script shows as the failed DHCP below
	}
	pid := ctPID(vmid)
	t := dhcpTimeout()
	tries := (t + 1) / 2
	for _, eth := range eths {
		// What PVE runs (LXC.pm manage_dhclient), for the warning's text.
		pveCmd := []string{"lxc-attach", "-n", strconv.Itoa(vmid), "-s", "NETWORK|UTSNAME", "--",
			"aa-exec", "-p", "unconfined", "/sbin/dhclient", "-1", "-4",
			"-pf", fmt.Sprintf("/var/lib/lxc/%d/hook/dhclient4-%s.pid", vmid, eth),
			"-lf", fmt.Sprintf("/var/lib/lxc/%d/hook/dhclient4-%s.leases", vmid, eth),
			"-e", fmt.Sprintf("ROOTFS=/proc/%d/root", pid), "-sf", "/usr/share/lxc/hooks/dhclient-script", eth}
		cmd := lxcCmd("lxc-attach", "-P", lxcPath(), "-n", strconv.Itoa(vmid), "-s", "NETWORK|UTSNAME", "--",
			"/bin/busybox", "udhcpc", "-i", eth, "-n", "-q", "-t", strconv.Itoa(tries), "-T", "2", "-A", "1",
			"-s", script, "-p", filepath.Join(hook, "udhcpc4-"+eth+".pid"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			// dhclient -1 exits 2 when it got no lease.
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
				err = fmt.Errorf("exit code 2")
			}
			if os.Getenv("PCTDOUBLE_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "pctdouble: udhcpc after %s: %s", time.Since(start).Round(time.Second), out)
			}
			fmt.Fprintf(os.Stderr, "WARN: DHCP failed - command '%s' failed: %v\n", cmd2string(pveCmd), exitErrText(err))
		}
	}
}

func exitErrText(err error) string {
	if _, ok := err.(*exec.ExitError); ok {
		return exitText(err)
	}
	return err.Error()
}
