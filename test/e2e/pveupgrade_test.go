package e2e

import (
	"bufio"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// proxcage upgrade on pve (the pct double): the CT keeps its VMID, NIC
// (MAC), mount point and data; only the rootfs and the image's lines
// change. Failures (a missing command, a failing health check, on a
// storage with snapshots and on one without) and a crash followed by
// --resume or delete --force leave the old CT as it was and nothing
// else: no scratch CT, snapshot, volume or template of the new image.

// pveLeft lists the double's CT configs and volumes.
func pveLeft(t *testing.T, p *pveEnv) (cts, vols []string) {
	t.Helper()
	confs, _ := filepath.Glob(filepath.Join(p.state, "lxc", "*.conf"))
	for _, c := range confs {
		cts = append(cts, strings.TrimSuffix(filepath.Base(c), ".conf"))
	}
	dirs, _ := filepath.Glob(filepath.Join(p.state, "volumes", "*", "vm-*"))
	for _, d := range dirs {
		vols = append(vols, filepath.Base(filepath.Dir(d))+":"+filepath.Base(d))
	}
	snaps, _ := filepath.Glob(filepath.Join(p.state, "volumes", "*", ".snap", "*", "*"))
	for _, s := range snaps {
		vols = append(vols, "snapshot "+s)
	}
	sort.Strings(cts)
	sort.Strings(vols)
	return cts, vols
}

// pveTemplates lists proxcage's templates on the double's storages.
func pveTemplates(p *pveEnv) []string {
	tpls, _ := filepath.Glob(filepath.Join(p.state, "storage", "*", "template", "cache", "proxcage-*"))
	sort.Strings(tpls)
	return tpls
}

// sameTemplates: the templates are those of before (an upgrade that
// failed took the new image's, which its scratch CT had stored, away).
func sameTemplates(t *testing.T, p *pveEnv, before []string, what string) {
	t.Helper()
	if now := pveTemplates(p); strings.Join(now, " ") != strings.Join(before, " ") {
		t.Fatalf("%s: templates %v, want %v", what, now, before)
	}
}

func confLine(conf, key string) string {
	for _, l := range strings.Split(conf, "\n") {
		if strings.HasPrefix(l, key+":") {
			return l
		}
	}
	return ""
}

func TestUpgradePVE(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	reg := serveAppImages(t)
	app1, app2, broken := reg.Host+"/test/app:1", reg.Host+"/test/app:2", reg.Host+"/test/app:broken"

	p.ok("run", "-d", "-q", "--image", app1, "-u", "app", "-e", "KEEP=me", "-v", "appdata:/srv/data", "web")
	st := p.waitStatus("web", specs.StateRunning)
	vmid := vmidOf(t, st)
	id := strconv.Itoa(vmid)
	look := func() string {
		t.Helper()
		var out string
		for range 100 {
			r := p.run("exec", "web", "sh", "-c", `cat /opt/app/version; echo $APP_VERSION $KEEP; id -u; cat /srv/data/f`)
			if out = r.stdout; r.code == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return out
	}
	p.ok("exec", "web", "sh", "-c", "echo precious > /srv/data/f")
	if out := look(); out != "1\n1 me\n1000\nprecious\n" {
		t.Fatalf("before: %q", out)
	}
	conf := p.pct("config", id)
	net0, mp0, tags := confLine(conf, "net0"), confLine(conf, "mp0"), confLine(conf, "tags")
	if !strings.Contains(net0, "hwaddr=") || mp0 == "" {
		t.Fatalf("config before: %s", conf)
	}
	cts0, vols0 := pveLeft(t, p)
	tpls0 := pveTemplates(p)
	if len(tpls0) != 1 {
		t.Fatalf("templates before: %v", tpls0)
	}

	same := func(what string) {
		t.Helper()
		p.waitStatus("web", specs.StateRunning)
		if out := look(); out != what {
			t.Fatalf("in the CT: %q, want %q", out, what)
		}
		conf := p.pct("config", id)
		for _, l := range []string{net0, mp0, tags} {
			if !strings.Contains(conf, l+"\n") {
				t.Fatalf("config lost %q:\n%s", l, conf)
			}
		}
		if strings.Contains(conf, "lock:") {
			t.Fatalf("config left locked:\n%s", conf)
		}
	}
	nothingExtra := func(what string) {
		t.Helper()
		cts, vols := pveLeft(t, p)
		if strings.Join(cts, " ") != strings.Join(cts0, " ") || len(vols) != len(vols0) {
			t.Fatalf("%s: CTs %v volumes %v, want CTs %v and %d volumes (%v)", what, cts, vols, cts0, len(vols0), vols0)
		}
	}

	// A new image whose command is missing: the CT back on app:1.
	r := p.run("upgrade", "-q", "-t", "1s", "web", "--image", broken)
	if r.code == 0 || !strings.Contains(r.stderr, "failed, CT "+id+" is back on its old image") {
		t.Fatalf("broken upgrade: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "broken upgrade", r.stderr)
	same("1\n1 me\n1000\nprecious\n")
	nothingExtra("after the broken upgrade")
	sameTemplates(t, p, tpls0, "after the broken upgrade")

	// A failing health check, after the new image wrote to the volume:
	// the snapshot takes the write back.
	r = p.run("upgrade", "-q", "-t", "1s", "web", "--image", app2, "--health-cmd", "echo spoilt > /srv/data/f; false", "--health-timeout", "1s")
	if r.code == 0 || !strings.Contains(r.stderr, "health check") {
		t.Fatalf("unhealthy upgrade: exit %d %q", r.code, r.stderr)
	}
	same("1\n1 me\n1000\nprecious\n")
	nothingExtra("after the unhealthy upgrade")
	sameTemplates(t, p, tpls0, "after the unhealthy upgrade")

	// The upgrade.
	out := p.ok("upgrade", "-t", "1s", "web", "--image", app2, "--health-cmd", "test -e /srv/data/f")
	if !strings.Contains(out, "web: upgraded to "+app2) {
		t.Fatalf("upgrade printed %q", out)
	}
	same("2\n2 me\n1000\nprecious\n")
	nothingExtra("after the upgrade")
	if st := p.state_("web"); vmidOf(t, st) != vmid || st.Annotations["org.opencontainers.image.ref.name"] != app2 {
		t.Fatalf("state after the upgrade: %+v", st)
	}
	if out := p.ok("upgrade", "-q", "web", "--image", app2); !strings.Contains(out, "up to date") {
		t.Fatalf("second upgrade: %q", out)
	}

	// A crash during the health check, then --resume: app:2 again.
	crashUpgrade(t, p, "web", app1)
	if out := p.ok("upgrade", "--resume", "web"); !strings.Contains(out, "finished") {
		t.Fatalf("resume printed %q", out)
	}
	same("2\n2 me\n1000\nprecious\n")
	nothingExtra("after --resume")
	r = p.run("upgrade", "--resume", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "no unfinished upgrade") {
		t.Fatalf("resume without an upgrade: %d %q", r.code, r.stderr)
	}
	// Back to app:1: the scratch CT gets the VMID the last one had, whose
	// name the CT's rootfs carries now.
	p.ok("upgrade", "-q", "-t", "1s", "web", "--image", app1)
	same("1\n1 me\n1000\nprecious\n")
	nothingExtra("after the upgrade back")

	// A crash, then delete --force --volumes: both CTs and all volumes go.
	crashUpgrade(t, p, "web", app2)
	p.ok("delete", "--force", "--volumes", "web")
	if cts, vols := pveLeft(t, p); len(cts) != 0 || len(vols) != 0 {
		t.Fatalf("after delete: CTs %v volumes %v", cts, vols)
	}
	p.assertRootEmpty()
}

// crashUpgrade starts an upgrade of id to ref, kills proxcage -9 while
// the health check runs (the CT swapped and started), and checks that a
// new upgrade is refused until the first is resumed.
func crashUpgrade(t *testing.T, p *pveEnv, id, ref string) {
	t.Helper()
	c := p.cmd("upgrade", "-t", "1s", id, "--image", ref, "--health-cmd", "sleep 60", "--health-timeout", "120s")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "checking its health") {
			break
		}
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	_ = c.Wait()
	r := p.run("upgrade", "-q", id, "--image", ref)
	if r.code == 0 || !strings.Contains(r.stderr, "did not finish") {
		t.Fatalf("upgrade after a crash: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "upgrade after a crash", r.stderr)
}

// On a dir storage (no snapshots) the upgrade runs the same; a failure
// puts the saved config back (the data of the volumes is not rolled
// back: nothing could have taken it).
func TestUpgradePVEWithoutSnapshots(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	p.writeState("storages.json", []map[string]string{{"storage": "local", "type": "dir", "content": "vztmpl,iso,backup,rootdir"}})
	p.setRootfsStorage("local")
	reg := serveAppImages(t)
	app1, app2, broken := reg.Host+"/test/app:1", reg.Host+"/test/app:2", reg.Host+"/test/app:broken"
	p.ok("run", "-d", "-q", "--image", app1, "-u", "app", "-v", "appdata:/srv/data", "dirct")
	vmid := strconv.Itoa(vmidOf(t, p.waitStatus("dirct", specs.StateRunning)))
	p.ok("exec", "dirct", "sh", "-c", "echo precious > /srv/data/f")
	cts0, vols0 := pveLeft(t, p)
	tpls0 := pveTemplates(p)
	conf0 := p.pct("config", vmid)

	r := p.run("upgrade", "-q", "-t", "1s", "dirct", "--image", broken)
	if r.code == 0 || !strings.Contains(r.stderr, "is back on its old image") {
		t.Fatalf("broken upgrade: exit %d %q", r.code, r.stderr)
	}
	p.waitStatus("dirct", specs.StateRunning)
	if conf := p.pct("config", vmid); conf != conf0 {
		t.Fatalf("config after the failed upgrade:\n%s\nwant:\n%s", conf, conf0)
	}
	if cts, vols := pveLeft(t, p); strings.Join(cts, " ") != strings.Join(cts0, " ") || strings.Join(vols, " ") != strings.Join(vols0, " ") {
		t.Fatalf("left: %v %v, want %v %v", cts, vols, cts0, vols0)
	}
	sameTemplates(t, p, tpls0, "after the broken upgrade")
	p.ok("upgrade", "-q", "-t", "1s", "dirct", "--image", app2)
	p.waitStatus("dirct", specs.StateRunning)
	var out string
	for range 100 {
		if out = p.run("exec", "dirct", "sh", "-c", "cat /opt/app/version /srv/data/f").stdout; out != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out != "2\nprecious\n" {
		t.Fatalf("after the upgrade: %q", out)
	}
	if cts, vols := pveLeft(t, p); len(cts) != 1 || len(vols) != len(vols0) {
		t.Fatalf("left after the upgrade: %v %v", cts, vols)
	}
	p.ok("delete", "--force", "--volumes", "dirct")
	if cts, vols := pveLeft(t, p); len(cts) != 0 || len(vols) != 0 {
		t.Fatalf("after delete: CTs %v volumes %v", cts, vols)
	}
}
