package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/testimages"
)

// Volumes of image containers on this host's backends: DATA/volumes/NAME,
// seeded from the image, kept past delete, reused by -v NAME:/PATH.

// serveAppImages serves test/app:1 and test/app:2 (testimages.App: a
// VOLUME at /srv/data) besides test/busybox:1.
func serveAppImages(t *testing.T) *testimages.Registry {
	t.Helper()
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	imgs := map[string]v1.Image{"test/busybox:1": bb}
	for _, v := range []string{"1", "2", "broken"} {
		a, err := testimages.App(bb, v)
		if err != nil {
			t.Fatal(err)
		}
		imgs["test/app:"+v] = a
	}
	// test/app:broken's command does not exist.
	broken, err := mutate.Config(imgs["test/app:broken"], v1.Config{Cmd: []string{"/opt/app/missing"}, Env: []string{"PATH=/bin"}, Volumes: map[string]struct{}{"/srv/data": {}}})
	if err != nil {
		t.Fatal(err)
	}
	imgs["test/app:broken"] = broken
	r, err := testimages.Serve(0, nil, imgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

type listedVolume struct {
	Name      string
	Dir       string
	Users     []string
	Anonymous bool
}

func volumes(t *testing.T, e *env) map[string]listedVolume {
	t.Helper()
	var list []listedVolume
	if err := json.Unmarshal([]byte(e.ok("volumes", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]listedVolume{}
	for _, v := range list {
		out[v.Name] = v
	}
	return out
}

func TestVolumesNative(t *testing.T) { testVolumes(t, newEnv(t)) }

func TestVolumesLXC(t *testing.T) { testVolumes(t, newLXCEnv(t)) }

func testVolumes(t *testing.T, e *env) {
	data := withDataDir(t, e)
	reg := serveAppImages(t)
	app1 := reg.Host + "/test/app:1"

	// A named volume at the image's VOLUME, and the image's files in it.
	// As the image's app user (1000), the owner of the image's /srv/data:
	// runc's default capabilities have no CAP_DAC_OVERRIDE for root.
	out := e.ok("run", "-q", "--image", app1, "-u", "app", "-v", "appdata:/srv/data", "v1", "--",
		"sh", "-c", "cat /srv/data/seed; stat -c '%u:%g %a' /srv/data; echo written > /srv/data/f")
	if out != "seeded by 1\n1000:1000 750\n" {
		t.Fatalf("first run: %q", out)
	}
	vols := volumes(t, e)
	if v, ok := vols["appdata"]; !ok || len(vols) != 1 || len(v.Users) != 0 || v.Anonymous ||
		v.Dir != filepath.Join(data, "volumes", "appdata", "_data") {
		t.Fatalf("after run: volumes %+v (the run's anonymous ones gone, the named kept)", vols)
	}
	// Mounted again: the data, not a new seed.
	if out := e.ok("run", "-q", "--image", app1, "-u", "app", "-v", "appdata:/srv/data", "v2", "--", "cat", "/srv/data/f", "/srv/data/seed"); out != "written\nseeded by 1\n" {
		t.Fatalf("second run: %q", out)
	}
	// Without -v the image's VOLUME is an anonymous volume ID-0, kept by
	// delete, gone with delete --volumes.
	e.ok("create", "-q", "--image", app1, "-u", "app", "c3", "--", "sh", "-c", "echo anon > /srv/data/g")
	e.ok("start", "c3")
	e.waitStatus("c3", "stopped")
	vols = volumes(t, e)
	if v := vols["c3-0"]; !v.Anonymous || len(v.Users) != 1 || v.Users[0] != "c3" {
		t.Fatalf("anonymous volume: %+v", vols)
	}
	if b, _ := os.ReadFile(filepath.Join(vols["c3-0"].Dir, "g")); string(b) != "anon\n" {
		t.Fatalf("anonymous volume content %q", b)
	}
	e.ok("delete", "c3")
	if v, ok := volumes(t, e)["c3-0"]; !ok || len(v.Users) != 0 {
		t.Fatalf("delete dropped the volume or its user: %+v", v)
	}
	e.ok("create", "-q", "--image", app1, "-v", "appdata:/srv/data", "c4", "--", "true")
	e.ok("create", "-q", "--image", app1, "-u", "app", "-v", "appdata:/srv/data:ro", "c5", "--", "sh", "-c", "echo x > /srv/data/ro")
	e.ok("start", "c5")
	e.waitStatus("c5", "stopped")
	if _, err := os.Stat(filepath.Join(vols["appdata"].Dir, "ro")); err == nil {
		t.Fatal("a :ro volume was written")
	}
	// delete --volumes spares a volume another container uses.
	e.ok("delete", "--volumes", "c5")
	if v := volumes(t, e)["appdata"]; len(v.Users) != 1 || v.Users[0] != "c4" {
		t.Fatalf("delete --volumes of c5: appdata %+v", v)
	}
	e.ok("delete", "--volumes", "c4")
	if _, ok := volumes(t, e)["appdata"]; ok {
		t.Fatal("delete --volumes of its last user kept appdata")
	}
	r := e.run("volumes", "rm", "appdata")
	if r.code != 3 || !strings.Contains(r.stderr, `volume "appdata" not found`) {
		t.Fatalf("volumes rm of a removed volume: %d %q", r.code, r.stderr)
	}
	oneLine(t, "volumes rm", r.stderr)
	e.ok("volumes", "rm", "c3-0")
	if v := volumes(t, e); len(v) != 0 {
		t.Fatalf("volumes left: %+v", v)
	}
	e.assertRootEmpty()
}

func TestVolumesBadInput(t *testing.T) {
	e := newEnv(t)
	data := withDataDir(t, e)
	reg := serveAppImages(t)
	app1 := reg.Host + "/test/app:1"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-q", "--image", app1, "-v", "/etc:/srv/data", "b1"}, "a host path is not a volume"},
		{[]string{"run", "-q", "--image", app1, "-v", "data", "b2"}, "want NAME:/PATH"},
		{[]string{"run", "-q", "--image", app1, "-v", "data:/", "b3"}, "cannot be mounted on /"},
		{[]string{"run", "-q", "--image", app1, "-v", "a:/x", "-v", "b:/x", "b4"}, "two volumes at /x"},
		{[]string{"run", "-v", "a:/x", "b5"}, "--volume needs --image"},
		{[]string{"volumes", "--format", "yaml"}, `--format "yaml"`},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d %q, want 2 and %q", c.args, r.code, r.stderr, c.want)
			continue
		}
		oneLine(t, strings.Join(c.args, " "), r.stderr)
	}
	// A create that fails after its volumes were made takes them along;
	// one that existed before stays.
	e.ok("create", "-q", "--image", app1, "-v", "kept:/srv/data", "k1", "--", "true")
	e.ok("delete", "k1")
	r := e.run("create", "-q", "--image", app1, "-v", "kept:/srv/data", "-v", "fresh:/fresh", "--pid-file", "/nonexistent/dir/pid", "b6", "--", "true")
	if r.code == 0 {
		t.Fatal("create with a pid file in a missing directory succeeded")
	}
	vols := volumes(t, e)
	if _, ok := vols["kept"]; !ok || len(vols) != 1 {
		t.Fatalf("after a failed create: %+v, want only the earlier volume", vols)
	}
	e.assertRootEmpty()
	if left := containersLeft(data); len(left) != 0 {
		t.Fatalf("image bundles left: %v", left)
	}
}

// On pve a volume is a mount point volume of the CT on rootfs_storage,
// made by the create call (so the image's files land in it); PVE frees
// it with the CT, so delete refuses without --volumes.
func TestVolumesPVE(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	reg := serveAppImages(t)
	app1 := reg.Host + "/test/app:1"
	p.ok("run", "-d", "-q", "--image", app1, "-u", "app", "-v", "appdata:/srv/data", "ct-vol")
	st := p.waitStatus("ct-vol", specs.StateRunning)
	vmid := vmidOf(t, st)
	conf := p.pct("config", strconv.Itoa(vmid))
	want := fmt.Sprintf("mp0: local-lvm:vm-%d-disk-1,mp=/srv/data,backup=1,size=8G\n", vmid)
	if !strings.Contains(conf, want) {
		t.Fatalf("CT config lacks %q:\n%s", want, conf)
	}
	var out string
	for range 100 {
		if out = p.ok("exec", "ct-vol", "sh", "-c", "cat /srv/data/seed; stat -c '%u:%g %a' /srv/data; echo kept > /srv/data/f; cat /srv/data/f"); out != "" {
			break
		}
	}
	if out != "seeded by 1\n1000:1000 750\nkept\n" {
		t.Fatalf("the volume in the CT: %q", out)
	}
	vol := filepath.Join(p.state, "volumes", "local-lvm", fmt.Sprintf("vm-%d-disk-1", vmid))
	if b, err := os.ReadFile(filepath.Join(vol, "f")); err != nil || string(b) != "kept\n" {
		t.Fatalf("the write is not in the volume %s: %q %v", vol, b, err)
	}
	r := p.run("delete", "--force", "ct-vol")
	if r.code == 0 || !strings.Contains(r.stderr, "holds the volumes appdata at /srv/data") {
		t.Fatalf("delete without --volumes: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "delete without --volumes", r.stderr)
	if s := p.state_("ct-vol"); s.Status != specs.StateRunning {
		t.Fatalf("refused delete changed the CT: %+v", s)
	}
	// A foreground run cannot keep a named volume: refused before any CT.
	r = p.run("run", "-q", "--image", app1, "-v", "other:/srv/data", "ct-fg", "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "the named volume would go too") {
		t.Fatalf("foreground run with a named volume: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "foreground named volume", r.stderr)
	p.ok("delete", "--force", "--volumes", "ct-vol")
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Fatalf("volume left after delete --volumes: %v", err)
	}
	p.assertRootEmpty()
}
