package e2e

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// proxcage upgrade on this host's backends: the container is made again
// from the new image with its id, volumes and overrides; a new container
// that fails to start or its health check is replaced by the old again.

func TestUpgradeNative(t *testing.T) { testUpgrade(t, newEnv(t)) }

func TestUpgradeLXC(t *testing.T) { testUpgrade(t, newLXCEnv(t)) }

func testUpgrade(t *testing.T, e *env) {
	withDataDir(t, e)
	reg := serveAppImages(t)
	app1, app2 := reg.Host+"/test/app:1", reg.Host+"/test/app:2"
	e.ok("run", "-d", "-q", "--image", app1, "-u", "app", "-e", "KEEP=me", "-v", "appdata:/srv/data", "up1")
	e.waitStatus("up1", specs.StateRunning)
	e.ok("exec", "up1", "sh", "-c", "echo precious > /srv/data/f")
	before := e.state("up1")

	look := func() string {
		t.Helper()
		return e.ok("exec", "up1", "sh", "-c", `cat /opt/app/version; echo $APP_VERSION $KEEP; id -u; cat /srv/data/f`)
	}
	if out := look(); out != "1\n1 me\n1000\nprecious\n" {
		t.Fatalf("before: %q", out)
	}

	// The same image: nothing happens.
	if out := e.ok("upgrade", "up1"); !strings.Contains(out, "up to date") {
		t.Fatalf("upgrade to the same digest printed %q", out)
	}
	if st := e.state("up1"); st.Pid != before.Pid {
		t.Fatalf("an up-to-date upgrade restarted the container: pid %d -> %d", before.Pid, st.Pid)
	}

	// A new image whose command is missing: the old container is back.
	r := e.run("upgrade", "-q", "-t", "1s", "up1", "--image", reg.Host+"/test/app:broken")
	if r.code == 0 || !strings.Contains(r.stderr, "runs "+before.Annotations["org.proxcage.image.digest"]+" again") {
		t.Fatalf("upgrade to a broken image: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// One line of proxcage's (on lxc the stand-in's own exec error, the
	// container's stderr, comes before it).
	if n := strings.Count(r.stderr, "proxcage: "); n != 1 || !strings.HasPrefix(r.stderr[strings.LastIndex(strings.TrimSuffix(r.stderr, "\n"), "\n")+1:], "proxcage: ") {
		t.Fatalf("broken upgrade: want proxcage's one error line last, got %q", r.stderr)
	}
	e.waitStatus("up1", specs.StateRunning)
	if out := look(); out != "1\n1 me\n1000\nprecious\n" {
		t.Fatalf("after the failed upgrade: %q", out)
	}
	// A health check that fails: the same.
	r = e.run("upgrade", "-q", "-t", "1s", "up1", "--image", app2, "--health-cmd", "test -e /srv/data/never", "--health-timeout", "2s")
	if r.code == 0 || !strings.Contains(r.stderr, "health check") {
		t.Fatalf("upgrade with a failing health check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.waitStatus("up1", specs.StateRunning)
	if out := look(); out != "1\n1 me\n1000\nprecious\n" {
		t.Fatalf("after the unhealthy upgrade: %q", out)
	}

	// The upgrade: the new image's files and env, the user's -u and -e,
	// the volume's data.
	out := e.ok("upgrade", "-t", "1s", "up1", "--image", app2, "--health-cmd", "test -e /srv/data/f")
	if !strings.Contains(out, "upgraded") {
		t.Fatalf("upgrade printed %q", out)
	}
	e.waitStatus("up1", specs.StateRunning)
	if out := look(); out != "2\n2 me\n1000\nprecious\n" {
		t.Fatalf("after the upgrade: %q", out)
	}
	after := e.state("up1")
	if after.Annotations["org.opencontainers.image.ref.name"] != app2 || after.Annotations["org.proxcage.image.digest"] == before.Annotations["org.proxcage.image.digest"] {
		t.Fatalf("the upgraded container's image: %v", after.Annotations)
	}
	if v := volumes(t, e); len(v) != 1 || len(v["appdata"].Users) != 1 {
		t.Fatalf("volumes after the upgrades: %+v", v)
	}
	// Bad input changes nothing.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"upgrade", "-q", "nosuch"}, `container "nosuch" does not exist`},
		{[]string{"upgrade", "-q", "-t", "1s", "up1", "--image", reg.Host + "/test/app:nope"}, "nope"},
		{[]string{"upgrade", "up1", "up2"}, "name one container"},
		{[]string{"upgrade", "--check", "--image", app2}, "--image does not go with --check"},
	} {
		r := e.run(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d %q", c.args, r.code, r.stderr)
		}
		oneLine(t, strings.Join(c.args, " "), r.stderr)
	}
	if st := e.state("up1"); st.Pid != after.Pid {
		t.Fatal("bad input restarted the container")
	}
	b := e.bundle("plain", []string{"sleep", "1000"}, nil)
	e.ok("create", "--bundle", b, "plain1")
	r = e.run("upgrade", "-q", "plain1")
	if r.code != 2 || !strings.Contains(r.stderr, `container "plain1" was not made from an image`) {
		t.Fatalf("upgrade of a bundle container: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "upgrade bundle container", r.stderr)
	e.ok("delete", "plain1")
	e.ok("delete", "--force", "--volumes", "up1")
	e.assertRootEmpty()
}
