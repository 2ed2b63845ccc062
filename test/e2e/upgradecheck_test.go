package e2e

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/testimages"
)

// Pinning and provenance: `create/run --image NAME@sha256:...` on every
// backend, what `list` says a container was made from, and `upgrade
// --check` against a registry whose tag moves on.

// busyboxV2 is test/busybox:1 with a label more: another image (manifest
// digest) for a tag to move to.
func busyboxV2(t *testing.T) v1.Image {
	t.Helper()
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	img, err := testimages.WithLabels(bb, map[string]string{"org.example.version": "2"})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// busyboxDigest is the manifest digest of test/busybox:1 (the images are
// reproducible: the one serveTestImages serves).
func busyboxDigest(t *testing.T) string {
	t.Helper()
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	return digestOf(t, bb)
}

type listed struct {
	ID          string
	Status      string
	Backend     string
	Image       string
	ImageDigest string
}

func listJSON(t *testing.T, e *env) []listed {
	t.Helper()
	var out []listed
	if err := json.Unmarshal([]byte(e.ok("list", "--format", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type upgradeRow struct {
	ID        string `json:"id"`
	Image     string `json:"image"`
	Current   string `json:"current"`
	Available string `json:"available"`
	UpToDate  bool   `json:"upToDate"`
	Error     string `json:"error"`
}

// upgradeCheck runs `upgrade --check --format json` (it must exit code)
// and decodes the report.
func upgradeCheck(t *testing.T, e *env, code int, ids ...string) []upgradeRow {
	t.Helper()
	r := e.run(append([]string{"upgrade", "--check", "--format", "json"}, ids...)...)
	if r.code != code {
		t.Fatalf("upgrade --check %v: exit %d, want %d\nstdout %s\nstderr %s", ids, r.code, code, r.stdout, r.stderr)
	}
	var rows []upgradeRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("upgrade --check json: %v: %q", err, r.stdout)
	}
	return rows
}

// runPinned runs a container of test/busybox:1 by its digest on e's
// default backend and checks what list and upgrade --check say of it.
func runPinned(t *testing.T, e *env, id, backend string) {
	t.Helper()
	reg := serveTestImages(t)
	d := busyboxDigest(t)
	pin := reg.Host + "/test/busybox@" + d
	// The tag first, so the store already has the image under that name:
	// the container must still record the pin it was given.
	e.ok("pull", "-q", reg.Host+"/test/busybox:1")
	e.ok("run", "-d", "-q", "--image", pin, id, "--", "sh", "-c", "cat /etc/motd > /tmp/motd; exec sleep 100000")
	e.waitStatus(id, specs.StateRunning)
	var out string
	for range 100 {
		if out = e.ok("exec", id, "sh", "-c", "cat /tmp/motd 2>/dev/null || true"); out != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out != "from layer 2\n" {
		t.Fatalf("the pinned container's image: /etc/motd %q", out)
	}
	ls := listJSON(t, e)
	if len(ls) != 1 || ls[0].ID != id || ls[0].Backend != backend || ls[0].Image != pin || ls[0].ImageDigest != d {
		t.Fatalf("list --format json: %+v, want backend %s, image %s, digest %s", ls, backend, pin, d)
	}
	if table := e.ok("list"); !regexp.MustCompile(`(?m)^` + id + ` .* ` + regexp.QuoteMeta(reg.Host+"/test/busybox@"+d[:len("sha256:")+12]) + `$`).MatchString(table) {
		t.Fatalf("list IMAGE column:\n%s", table)
	}
	// Pinned: up to date even once the tag moves, and without asking.
	if err := reg.Push("test/busybox:1", busyboxV2(t)); err != nil {
		t.Fatal(err)
	}
	rows := upgradeCheck(t, e, 0)
	if len(rows) != 1 || !rows[0].UpToDate || rows[0].Current != d || rows[0].Available != d || rows[0].Image != pin {
		t.Fatalf("upgrade --check of a pinned container: %+v", rows)
	}
	reg.Close()
	if rows := upgradeCheck(t, e, 0); len(rows) != 1 || !rows[0].UpToDate || rows[0].Error != "" {
		t.Fatalf("upgrade --check of a pinned container, registry down: %+v", rows)
	}
	e.ok("delete", "--force", id)
	e.assertRootEmpty()
}

func TestPinnedImageNative(t *testing.T) {
	e := newEnv(t)
	withDataDir(t, e)
	runPinned(t, e, "pin-native", "native")
}

func TestPinnedImageLXC(t *testing.T) {
	e := newLXCEnv(t)
	withDataDir(t, e)
	runPinned(t, e, "pin-lxc", "lxc")
}

func TestPinnedImagePVE(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	runPinned(t, p.env, "pin-pve", "pve")
}

// upgradeCheckScenario: three containers of two tags, one tag moves on:
// the report names exactly its container, in JSON and in the table, and
// nothing changes.
func upgradeCheckScenario(t *testing.T, e *env, ids [3]string) {
	t.Helper()
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	reg, err := testimages.Serve(0, nil, map[string]v1.Image{"test/app:1": bb, "test/other:1": busyboxV2(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	app1, other := reg.Host+"/test/app:1", reg.Host+"/test/other:1"
	d1, d2 := digestOf(t, bb), digestOf(t, busyboxV2(t))
	e.ok("create", "-q", "--image", app1, ids[0])
	e.ok("create", "-q", "--image", app1, ids[1])
	e.ok("create", "-q", "--image", other, ids[2])
	before := listJSON(t, e)
	imagesBefore := images(t, e)

	want := []upgradeRow{
		{ids[0], app1, d1, d1, true, ""},
		{ids[1], app1, d1, d1, true, ""},
		{ids[2], other, d2, d2, true, ""},
	}
	if rows := upgradeCheck(t, e, 0); !slices.Equal(rows, want) {
		t.Fatalf("upgrade --check before the push:\n%+v\nwant\n%+v", rows, want)
	}
	// test/other:1 moves on to another image.
	moved, err := testimages.WithLabels(bb, map[string]string{"org.example.version": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push("test/other:1", moved); err != nil {
		t.Fatal(err)
	}
	d3 := digestOf(t, moved)
	want[2] = upgradeRow{ids[2], other, d2, d3, false, ""}
	if rows := upgradeCheck(t, e, 0); !slices.Equal(rows, want) {
		t.Fatalf("upgrade --check after the push:\n%+v\nwant\n%+v", rows, want)
	}
	// Named: only that one.
	if rows := upgradeCheck(t, e, 0, ids[2]); !slices.Equal(rows, want[2:]) {
		t.Fatalf("upgrade --check %s: %+v", ids[2], rows)
	}
	table := e.ok("upgrade", "--check")
	short := func(d string) string { return d[:len("sha256:")+12] }
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^ID +IMAGE +CURRENT +AVAILABLE +STATUS$`).MatchString(lines[0]) {
		t.Fatalf("upgrade --check table:\n%s", table)
	}
	for i, w := range []string{
		ids[0] + ` +` + regexp.QuoteMeta(app1) + ` +` + short(d1) + ` +` + short(d1) + ` +up to date`,
		ids[1] + ` +` + regexp.QuoteMeta(app1) + ` +` + short(d1) + ` +` + short(d1) + ` +up to date`,
		ids[2] + ` +` + regexp.QuoteMeta(other) + ` +` + short(d2) + ` +` + short(d3) + ` +update available`,
	} {
		if !regexp.MustCompile(`^` + w + `$`).MatchString(lines[i+1]) {
			t.Errorf("table row %q does not match %s", lines[i+1], w)
		}
	}
	// Nothing changed: the same containers, states and digests; no image
	// pulled.
	after := listJSON(t, e)
	if !slices.Equal(before, after) {
		t.Fatalf("list changed by the check:\n%+v\n%+v", before, after)
	}
	if imagesAfter := images(t, e); len(imagesAfter) != len(imagesBefore) {
		t.Fatalf("the check pulled: images %+v, before %+v", imagesAfter, imagesBefore)
	}

	// The registry gone: every row says why, exit 6 (unavailable), one line.
	reg.Close()
	r := e.run("upgrade", "--check", "--format", "json")
	var rows []upgradeRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 3 || r.code != 6 {
		t.Fatalf("registry down: exit %d %q %q (%v)", r.code, r.stdout, r.stderr, err)
	}
	for _, row := range rows {
		if row.Error == "" || row.Available != "" || row.UpToDate || !strings.Contains(row.Error, reg.Host) {
			t.Errorf("registry down, row %+v", row)
		}
	}
	oneLine(t, "registry down", r.stderr)
	for _, id := range ids {
		e.ok("delete", id)
	}
	e.assertRootEmpty()
}

func TestUpgradeCheckNative(t *testing.T) {
	e := newEnv(t)
	withDataDir(t, e)
	upgradeCheckScenario(t, e, [3]string{"up-a", "up-b", "up-c"})
}

func TestUpgradeCheckPVE(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	upgradeCheckScenario(t, p.env, [3]string{"ct-up-a", "ct-up-b", "ct-up-c"})
}

func TestUpgradeCheckBadInput(t *testing.T) {
	e := newEnv(t)
	withDataDir(t, e)
	reg := serveTestImages(t)
	e.ok("create", "-q", "--image", reg.Host+"/test/busybox:1", "img")
	e.ok("create", "--bundle", e.bundle("bun", []string{"true"}, nil), "bun")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"upgrade", "--check", "nosuch"}, 3, `container "nosuch" does not exist`},
		{[]string{"upgrade", "--check", "img", "bun"}, 2, `container "bun" was not made from an image`},
		{[]string{"upgrade", "--check", "--format", "yaml"}, 2, `--format "yaml": want table or json`},
		{[]string{"upgrade", "img", "other"}, 2, "upgrade: name one container"},
	} {
		r := e.run(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q, want %d and %q", c.args, r.code, r.stdout, r.stderr, c.code, c.want)
			continue
		}
		oneLine(t, strings.Join(c.args, " "), r.stderr)
	}
	// Listing all skips the bundle container.
	if rows := upgradeCheck(t, e, 0); len(rows) != 1 || rows[0].ID != "img" || !rows[0].UpToDate {
		t.Fatalf("upgrade --check with a bundle container: %+v", rows)
	}
	if ls := listJSON(t, e); len(ls) != 2 || ls[0].ID != "bun" || ls[0].Image != "" || ls[1].ImageDigest != busyboxDigest(t) {
		t.Fatalf("list: %+v", ls)
	}
	e.ok("delete", "img")
	e.ok("delete", "bun")
}
