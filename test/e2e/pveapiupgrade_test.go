package e2e

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/pvesim"
)

// proxcage upgrade over the PVE API (the simulator): the same steps as
// over pct through the snapshot and config calls; what the API cannot do
// (an exec health check) is refused before anything changes. A failure
// (a failed start; a storage without snapshots), and a crash of
// proxcage while one of PVE's tasks runs followed by --resume or delete
// --force, leave the old CT as it was and nothing else: no scratch CT,
// snapshot, lock or template of the new image.

// simKept is what the simulator keeps (pvesim Server.Stored): CT vmid's
// config, and over the whole cluster the CT volumes, every CT's lock,
// every snapshot (a CT's section, a volume's) and proxcage's templates.
type simKept struct {
	conf      map[string]string
	vols      []string // NODE-less volids of CT volumes (…:vm-…)
	locks     []string // "VMID lock: L"
	snaps     []string // "VMID snapshot NAME", "VOLID@NAME"
	templates []string // local:vztmpl/proxcage-*
}

func kept(p *pveAPIEnv, vmid int) simKept {
	k := simKept{conf: map[string]string{}}
	for _, l := range p.sim.Stored() {
		first, rest, _ := strings.Cut(l, " ")
		id, err := strconv.Atoi(first)
		if err == nil { // a CT's line
			switch {
			case strings.HasPrefix(rest, "snapshot "):
				k.snaps = append(k.snaps, l)
			case strings.HasPrefix(rest, "lock: "):
				k.locks = append(k.locks, l)
			case strings.HasPrefix(rest, "["): // a snapshot's or the pending section's line
			case id == vmid:
				key, v, _ := strings.Cut(rest, ": ")
				k.conf[key] = v
			}
			continue
		}
		volid, snap, isSnap := strings.Cut(rest, " snapshot ") // a volume's line
		switch {
		case isSnap:
			k.snaps = append(k.snaps, volid+"@"+snap)
		case strings.HasPrefix(volid, "local:vztmpl/proxcage-"):
			k.templates = append(k.templates, volid)
		case strings.Contains(volid, ":vm-"):
			k.vols = append(k.vols, volid)
		}
	}
	slices.Sort(k.templates)
	k.templates = slices.Compact(k.templates) // each node's copy once
	return k
}

// nothingLeft: no lock and no snapshot anywhere on the cluster.
func nothingLeft(t *testing.T, p *pveAPIEnv, what string) {
	t.Helper()
	k := kept(p, 0)
	if len(k.locks) != 0 || len(k.snaps) != 0 {
		t.Fatalf("%s: locks %v snapshots %v left", what, k.locks, k.snaps)
	}
}

// asBefore: CT vmid of container id runs on its old image as before the
// upgrade: its whole config as it was (rootfs, env, entrypoint, mp0,
// net0, tags, description and the rest; no parent or unusedN added), the
// same guests and volumes, the templates that were there before, and no
// lock or snapshot anywhere.
func asBefore(t *testing.T, p *pveAPIEnv, id string, vmid int, before simKept, guests0, what string) {
	t.Helper()
	p.waitStatus(id, specs.StateRunning)
	now := kept(p, vmid)
	for k, v := range before.conf {
		if now.conf[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, now.conf[k], v)
		}
	}
	for k, v := range now.conf {
		if _, ok := before.conf[k]; !ok {
			t.Errorf("%s: %s = %q added", what, k, v)
		}
	}
	if g := strings.Join(simGuests(t, p), " "); g != guests0 {
		t.Errorf("%s: guests %s, want %s", what, g, guests0)
	}
	if strings.Join(now.vols, " ") != strings.Join(before.vols, " ") {
		t.Errorf("%s: volumes %v, want %v", what, now.vols, before.vols)
	}
	if strings.Join(now.templates, " ") != strings.Join(before.templates, " ") {
		t.Errorf("%s: templates %v, want %v (the new image's must go with the upgrade that failed)", what, now.templates, before.templates)
	}
	nothingLeft(t, p, what)
}

// upgraded: CT vmid runs on app:2 with its NIC, mount point, tags and
// description and as many volumes as before (the old rootfs freed),
// nothing locked or snapshotted, the new image's template kept as a
// create keeps one (a cache).
func upgraded(t *testing.T, p *pveAPIEnv, id string, vmid int, before simKept, guests0, what string) {
	t.Helper()
	p.waitStatus(id, specs.StateRunning)
	now := kept(p, vmid)
	if !strings.Contains(now.conf["env"], "APP_VERSION=2") || now.conf["rootfs"] == before.conf["rootfs"] {
		t.Fatalf("%s: %v", what, now.conf)
	}
	for _, k := range []string{"mp0", "net0", "tags", "description", "hostname"} {
		if now.conf[k] != before.conf[k] {
			t.Errorf("%s: %s = %q, want %q", what, k, now.conf[k], before.conf[k])
		}
	}
	if g := strings.Join(simGuests(t, p), " "); g != guests0 || len(now.vols) != len(before.vols) {
		t.Fatalf("%s: guests %s volumes %v, want %s and %d volumes", what, g, now.vols, guests0, len(before.vols))
	}
	for _, v := range now.vols {
		if strings.HasPrefix(before.conf["rootfs"], v+",") {
			t.Fatalf("%s: the old rootfs %s is still stored", what, v)
		}
	}
	if len(now.templates) != len(before.templates)+1 {
		t.Errorf("%s: templates %v (before: %v), want the new image's added", what, now.templates, before.templates)
	}
	nothingLeft(t, p, what)
}

// writes counts the requests that change something (all but GETs).
func writes(p *pveAPIEnv) int {
	n := 0
	for k, v := range p.sim.Calls() {
		if !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n
}

// refusedInOneLine runs proxcage, which must exit code (any non-zero
// code with 0) with one stderr line containing want and send PVE no
// request that changes anything.
func refusedInOneLine(t *testing.T, p *pveAPIEnv, code int, want string, args ...string) {
	t.Helper()
	w := writes(p)
	r := p.run(args...)
	if r.code == 0 || code != 0 && r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("%s: exit %d %q, want %q", strings.Join(args, " "), r.code, r.stderr, want)
	}
	oneLine(t, strings.Join(args, " "), r.stderr)
	if n := writes(p) - w; n != 0 {
		t.Fatalf("%s: refused, but sent %d requests that change things", strings.Join(args, " "), n)
	}
}

// apiSetRootfsStorage points [pve] rootfs_storage (where the CTs'
// rootfs and volumes go) at storage id.
func apiSetRootfsStorage(t *testing.T, p *pveAPIEnv, id string) {
	t.Helper()
	cfg, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^rootfs_storage = .*$`)
	if !re.Match(cfg) {
		t.Fatalf("no rootfs_storage in %s", cfg)
	}
	if err := os.WriteFile(p.config, re.ReplaceAll(cfg, []byte(`rootfs_storage = "`+id+`"`)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appCT runs test/app:1 as container id with a volume at /srv/data over
// the API, as every upgrade test starts, and returns the registry host,
// the CT's VMID, what the cluster keeps of it and the guests then.
func appCT(t *testing.T, p *pveAPIEnv, id string) (host string, vmid int, k0 simKept, guests0 string) {
	t.Helper()
	withDataDir(t, p.env)
	reg := serveAppImages(t)
	p.okLogged("run", "-d", "-q", "--image", reg.Host+"/test/app:1", "-u", "app", "-v", "appdata:/srv/data", id)
	vmid = vmidOf(t, p.waitStatus(id, specs.StateRunning))
	return reg.Host, vmid, kept(p, vmid), strings.Join(simGuests(t, p), " ")
}

func TestUpgradePVEAPI(t *testing.T) {
	p := newPVEAPIEnv(t)
	host, vmid, k0, guests0 := appCT(t, p, "web")
	app2, broken := host+"/test/app:2", host+"/test/app:broken"
	conf0 := k0.conf
	if !strings.Contains(conf0["env"], "APP_VERSION=1") || !strings.HasPrefix(conf0["mp0"], "local-lvm:vm-") || conf0["net0"] == "" {
		t.Fatalf("config before: %v", conf0)
	}
	if len(k0.templates) != 1 {
		t.Fatalf("templates before: %v", k0.templates)
	}

	// Refused before anything changes.
	r := p.run("upgrade", "-q", "web", "--image", app2, "--health-cmd", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "no exec over the API") && !strings.Contains(r.stderr, "which the API cannot reach") {
		t.Fatalf("exec health check over the API: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "health-cmd over the API", r.stderr)
	if g := strings.Join(simGuests(t, p), " "); g != guests0 {
		t.Fatalf("a refused upgrade left %s (before: %s)", g, guests0)
	}
	refusedInOneLine(t, p, 2, "which the API cannot reach", "upgrade", "-q", "web", "--image", app2, "--health-cmd", "true")
	// An image whose working directory and stop signal differ: raw
	// lxc.init.* lines, which the API cannot write.
	refusedInOneLine(t, p, 2, "the API cannot write those", "upgrade", "-q", "web", "--image", broken)
	// Nothing to resume.
	refusedInOneLine(t, p, 0, "no unfinished upgrade", "upgrade", "--resume", "web")
	asBefore(t, p, "web", vmid, k0, guests0, "after the refused upgrades")

	// A start that fails: the CT back as it was, the new image's
	// template gone with the scratch CT.
	p.sim.FailNextTask("vzstart", "startup for container '"+strconv.Itoa(vmid)+"' failed")
	r = p.runLogged("upgrade", "-q", "-t", "1s", "web", "--image", app2)
	if r.code == 0 || !strings.Contains(r.stderr, "is back on its old image") {
		t.Fatalf("failed start: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "failed start", r.stderr)
	asBefore(t, p, "web", vmid, k0, guests0, "after the failed upgrade")

	// The upgrade.
	out := p.okLogged("upgrade", "-t", "1s", "web", "--image", app2)
	if !strings.Contains(out, "web: upgraded to "+app2) {
		t.Fatalf("upgrade printed %q", out)
	}
	upgraded(t, p, "web", vmid, k0, guests0, "after the upgrade")
	refusedInOneLine(t, p, 0, "no unfinished upgrade", "upgrade", "--resume", "web")
	p.okLogged("delete", "--force", "--volumes", "web")
	if k := kept(p, vmid); len(k.vols) != 0 || len(simGuests(t, p)) != 0 {
		t.Fatalf("after delete: guests %v volumes %v", simGuests(t, p), k.vols)
	}
	nothingLeft(t, p, "after delete")
	p.assertRootEmpty()
	p.assertNoSecret("after the upgrades")
}

// On a storage without snapshots (type dir) the upgrade runs the same
// without one, as over pct (TestUpgradePVEWithoutSnapshots): PVE's
// snapshot task ends "snapshot feature is not available", proxcage warns
// and goes on, and a failure puts the saved config back (the data of the
// volumes is not rolled back: nothing could have taken it).
func TestUpgradePVEAPIWithoutSnapshots(t *testing.T) {
	p := newPVEAPIEnvWith(t, func(o *pvesim.Options) {
		o.Storages = []pvesim.StorageSpec{{ID: "ctdir", Type: "dir", Content: "rootdir,images"}}
	})
	apiSetRootfsStorage(t, p, "ctdir")
	host, vmid, k0, guests0 := appCT(t, p, "dirct")
	app2 := host + "/test/app:2"
	if !strings.HasPrefix(k0.conf["rootfs"], "ctdir:") || !strings.HasPrefix(k0.conf["mp0"], "ctdir:") {
		t.Fatalf("config before: %v", k0.conf)
	}

	p.sim.FailNextTask("vzstart", "startup for container '"+strconv.Itoa(vmid)+"' failed")
	r := p.runLogged("upgrade", "-q", "-t", "1s", "dirct", "--image", app2)
	if r.code == 0 || !strings.Contains(r.stderr, "is back on its old image") {
		t.Fatalf("failed start: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "failed start", r.stderr)
	asBefore(t, p, "dirct", vmid, k0, guests0, "after the failed upgrade without snapshots")
	if log, _ := os.ReadFile(p.log); !strings.Contains(string(log), "no snapshot: a volume's storage") {
		t.Errorf("no warning that the upgrade runs without a snapshot in the log")
	}

	p.okLogged("upgrade", "-q", "-t", "1s", "dirct", "--image", app2)
	upgraded(t, p, "dirct", vmid, k0, guests0, "after the upgrade without snapshots")
	p.okLogged("delete", "--force", "--volumes", "dirct")
	if k := kept(p, vmid); len(k.vols) != 0 || len(simGuests(t, p)) != 0 {
		t.Fatalf("after delete: guests %v volumes %v", simGuests(t, p), k.vols)
	}
	nothingLeft(t, p, "after delete")
	p.assertRootEmpty()
}

// crashAPIUpgrade starts an upgrade of id to ref and kills proxcage -9
// while PVE's task typ (made slow for it) runs for guest vmid (0: any):
// PVE's worker goes on without its client (RESTEnvironment.pm
// fork_worker). Then a new upgrade is refused in one line, with no
// request that changes anything, until the first is resumed.
func crashAPIUpgrade(t *testing.T, p *pveAPIEnv, id, ref, typ string, vmid int) {
	t.Helper()
	waitTasks(t, p) // a task of the last crash's may still run
	p.sim.SetTaskDuration(typ, 3*time.Second)
	defer p.sim.SetTaskDuration(typ, 100*time.Millisecond)
	c := p.cmd("--debug", "--log", p.log, "upgrade", "-t", "1s", id, "--image", ref)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errf := tempFile(t)
	c.Stdout, c.Stderr = errf, errf
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	want := typ + " "
	if vmid != 0 {
		want += strconv.Itoa(vmid)
	}
	runs := func() bool {
		return slices.ContainsFunc(p.sim.RunningTasks(), func(r string) bool { return strings.HasPrefix(r, want) })
	}
	for end := time.Now().Add(60 * time.Second); !runs(); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("the upgrade ended (%v) before a %s task ran: %q", err, typ, readAll(t, errf))
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("no %s task after 60 s (running: %v)", typ, p.sim.RunningTasks())
		}
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	<-exited
	if !runs() {
		t.Fatalf("the %s task ended before proxcage was killed: the crash is not mid-task", typ)
	}
	refusedInOneLine(t, p, 0, "did not finish", "upgrade", "-q", id, "--image", ref)
}

// waitTasks waits until the simulator runs no task.
func waitTasks(t *testing.T, p *pveAPIEnv) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); len(p.sim.RunningTasks()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("tasks still running after 30 s: %v", p.sim.RunningTasks())
		}
	}
}

// A crash of proxcage while PVE starts the CT on the new image (step
// start), then --resume: back on the old image, nothing extra left. A
// second crash there, then delete --force --volumes: no CT, volume,
// lock, snapshot or template of the crashed upgrade left.
func TestUpgradePVEAPICrashThenResume(t *testing.T) {
	p := newPVEAPIEnv(t)
	host, vmid, k0, guests0 := appCT(t, p, "web")
	app2 := host + "/test/app:2"

	crashAPIUpgrade(t, p, "web", app2, "vzstart", vmid)
	if out := p.okLogged("upgrade", "--resume", "web"); !strings.Contains(out, "finished") {
		t.Fatalf("resume printed %q", out)
	}
	asBefore(t, p, "web", vmid, k0, guests0, "after --resume")
	refusedInOneLine(t, p, 0, "no unfinished upgrade", "upgrade", "--resume", "web")

	// A second crash, then delete --force: everything goes, but the
	// template the CT was made from (a cache, as after any delete).
	crashAPIUpgrade(t, p, "web", app2, "vzstart", vmid)
	p.okLogged("delete", "--force", "--volumes", "web")
	k := kept(p, vmid)
	if g := simGuests(t, p); len(g) != 0 || len(k.vols) != 0 {
		t.Fatalf("after delete: guests %v volumes %v", g, k.vols)
	}
	if strings.Join(k.templates, " ") != strings.Join(k0.templates, " ") {
		t.Errorf("after delete: templates %v, want %v (the crashed upgrade's gone)", k.templates, k0.templates)
	}
	nothingLeft(t, p, "after delete")
	p.assertRootEmpty()
	p.assertNoSecret("after the crashes")
}

// Crashes at other steps than the start, each then --resume: while PVE
// makes the scratch CT (vzcreate) or the snapshot (vzsnapshot) the
// upgrade goes back, the CT as before; while it removes the snapshot at
// the commit (vzdelsnapshot: the new image had passed) it goes forward,
// the CT on the new image. Nothing extra is left either way. A --resume
// while the crashed upgrade's task still holds the CT's lock (snapshot,
// snapshot-delete) fails in one line that says to wait, and keeps what
// a later --resume needs; one for the scratch CT's create waits for it.
func TestUpgradePVEAPICrashAtOtherSteps(t *testing.T) {
	for _, c := range []struct {
		typ     string
		scratch bool   // the task is the scratch CT's, not the CT's
		lock    string // what the task holds the CT's lock for
		forward bool
	}{
		{"vzcreate", true, "", false},
		{"vzsnapshot", false, "snapshot", false},
		{"vzdelsnapshot", false, "snapshot-delete", true},
	} {
		t.Run(c.typ, func(t *testing.T) {
			p := newPVEAPIEnv(t)
			host, vmid, k0, guests0 := appCT(t, p, "web")
			app2 := host + "/test/app:2"
			on := vmid
			if c.scratch {
				on = 0
			}
			crashAPIUpgrade(t, p, "web", app2, c.typ, on)
			if c.lock != "" {
				r := p.runLogged("upgrade", "--resume", "web")
				if r.code == 0 || !strings.Contains(r.stderr, "CT is locked ("+c.lock+")") || !strings.Contains(r.stderr, "wait for it to finish") {
					t.Fatalf("--resume while the crashed upgrade's task runs: exit %d %q", r.code, r.stderr)
				}
				oneLine(t, "--resume while locked", r.stderr)
				waitTasks(t, p)
			}
			if out := p.okLogged("upgrade", "--resume", "web"); !strings.Contains(out, "finished") {
				t.Fatalf("resume printed %q", out)
			}
			if c.forward {
				upgraded(t, p, "web", vmid, k0, guests0, "after --resume")
			} else {
				asBefore(t, p, "web", vmid, k0, guests0, "after --resume")
			}
			refusedInOneLine(t, p, 0, "no unfinished upgrade", "upgrade", "--resume", "web")
			p.okLogged("delete", "--force", "--volumes", "web")
			if g, k := simGuests(t, p), kept(p, vmid); len(g) != 0 || len(k.vols) != 0 {
				t.Fatalf("after delete: guests %v volumes %v", g, k.vols)
			}
			nothingLeft(t, p, "after delete")
			p.assertRootEmpty()
		})
	}
}
