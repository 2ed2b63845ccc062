package e2e

import (
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// proxcage upgrade over the PVE API (the simulator): the same steps as
// over pct through the snapshot and config calls; what the API cannot do
// (an exec health check) is refused before anything changes.

// ctStored is what the simulator keeps of CT vmid (its config lines) and
// every volume on the cluster's storages.
func ctStored(p *pveAPIEnv, vmid int) (conf map[string]string, vols []string) {
	conf = map[string]string{}
	pre := strconv.Itoa(vmid) + " "
	for _, l := range p.sim.Stored() {
		if rest, ok := strings.CutPrefix(l, pre); ok {
			k, v, _ := strings.Cut(rest, ": ")
			conf[k] = v
		} else if _, vol, ok := strings.Cut(l, " "); ok && strings.Contains(vol, ":vm-") {
			vols = append(vols, vol)
		}
	}
	return conf, vols
}

func TestUpgradePVEAPI(t *testing.T) {
	p := newPVEAPIEnv(t)
	withDataDir(t, p.env)
	reg := serveAppImages(t)
	app1, app2 := reg.Host+"/test/app:1", reg.Host+"/test/app:2"
	p.okLogged("run", "-d", "-q", "--image", app1, "-u", "app", "-v", "appdata:/srv/data", "web")
	vmid := vmidOf(t, p.waitStatus("web", specs.StateRunning))
	conf0, vols0 := ctStored(p, vmid)
	if !strings.Contains(conf0["env"], "APP_VERSION=1") || !strings.HasPrefix(conf0["mp0"], "local-lvm:vm-") || conf0["net0"] == "" {
		t.Fatalf("config before: %v", conf0)
	}
	guests0 := strings.Join(simGuests(t, p), " ")

	// Refused before anything changes.
	r := p.run("upgrade", "-q", "web", "--image", app2, "--health-cmd", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "no exec over the API") && !strings.Contains(r.stderr, "which the API cannot reach") {
		t.Fatalf("exec health check over the API: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "health-cmd over the API", r.stderr)
	if g := strings.Join(simGuests(t, p), " "); g != guests0 {
		t.Fatalf("a refused upgrade left %s (before: %s)", g, guests0)
	}

	// A start that fails: the CT back as it was.
	p.sim.FailNextTask("vzstart", "startup for container '"+strconv.Itoa(vmid)+"' failed")
	r = p.runLogged("upgrade", "-q", "-t", "1s", "web", "--image", app2)
	if r.code == 0 || !strings.Contains(r.stderr, "is back on its old image") {
		t.Fatalf("failed start: exit %d %q", r.code, r.stderr)
	}
	p.waitStatus("web", specs.StateRunning)
	conf, vols := ctStored(p, vmid)
	for _, k := range []string{"rootfs", "env", "entrypoint", "mp0", "net0", "tags", "description"} {
		if conf[k] != conf0[k] {
			t.Errorf("after the failed upgrade %s = %q, want %q", k, conf[k], conf0[k])
		}
	}
	if g := strings.Join(simGuests(t, p), " "); g != guests0 || strings.Join(vols, " ") != strings.Join(vols0, " ") {
		t.Fatalf("after the failed upgrade: guests %s volumes %v, want %s %v", g, vols, guests0, vols0)
	}

	// The upgrade.
	out := p.okLogged("upgrade", "-t", "1s", "web", "--image", app2)
	if !strings.Contains(out, "web: upgraded to "+app2) {
		t.Fatalf("upgrade printed %q", out)
	}
	p.waitStatus("web", specs.StateRunning)
	conf, vols = ctStored(p, vmid)
	if !strings.Contains(conf["env"], "APP_VERSION=2") || conf["rootfs"] == conf0["rootfs"] {
		t.Fatalf("after the upgrade: %v", conf)
	}
	for _, k := range []string{"mp0", "net0", "tags", "description", "hostname"} {
		if conf[k] != conf0[k] {
			t.Errorf("after the upgrade %s = %q, want %q", k, conf[k], conf0[k])
		}
	}
	if g := strings.Join(simGuests(t, p), " "); g != guests0 || len(vols) != len(vols0) {
		t.Fatalf("after the upgrade: guests %s volumes %v, want %s and %d volumes", g, vols, guests0, len(vols0))
	}
	for _, v := range vols {
		if strings.HasPrefix(conf0["rootfs"], v+",") {
			t.Fatalf("the old rootfs %s is still stored", v)
		}
	}
	p.okLogged("delete", "--force", "--volumes", "web")
	if _, vols := ctStored(p, vmid); len(vols) != 0 || len(simGuests(t, p)) != 0 {
		t.Fatalf("after delete: guests %v volumes %v", simGuests(t, p), vols)
	}
	p.assertRootEmpty()
	p.assertNoSecret("after the upgrades")
}
