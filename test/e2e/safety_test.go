package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/test/testimages"
)

// What a first-time admin found unsafe: bad input or an image deciding
// for the operator, each now refused (or ignored) before anything is made.

// proxcageCTs is the double's CTs (pct list rows after the header).
func (p *pveEnv) proxcageCTs() []string {
	p.t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(p.pct("list")), "\n")[1:] {
		out = append(out, strings.Fields(l)[0])
	}
	return out
}

// storedTemplates is the template storage's files (the double's "local").
func (p *pveEnv) storedTemplates() []string {
	p.t.Helper()
	ents, _ := os.ReadDir(filepath.Join(p.state, "storage", "local", "template", "cache"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// assertNothingLeft: after a failed command, no record under --root, no CT
// on the double and no template in its template storage.
func (p *pveEnv) assertNothingLeft(what string) {
	p.t.Helper()
	p.assertRootEmpty()
	if out := p.pctList(); out != "" {
		p.t.Fatalf("%s: CT left:\n%s", what, out)
	}
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		p.t.Fatalf("%s: templates left: %v", what, tpls)
	}
}

// A foreground run of a system CT on pve is refused before a CT, record
// or template exists (exit 5, one line, a hint): no wrapper can read its
// init's exit status. An application container runs in the foreground
// (through a keeper, as runc run) and leaves nothing with --rm.
func TestPVEForegroundRunRefusedBeforeAnything(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	data := withDataDir(t, p.env)
	reg := serveTestImages(t)
	b := p.systemBundle("sys", nil)
	r := p.run("run", "--bundle", b, "ct-fg")
	if r.code != 5 || !strings.Contains(r.stderr, "does not support running a system CT (/sbin/init) in the foreground") || !strings.Contains(r.stderr, "--detach") {
		t.Fatalf("foreground system CT: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "foreground system CT", r.stderr)
	if cts := p.proxcageCTs(); len(cts) != 0 {
		t.Fatalf("CTs left: %v", cts)
	}
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		t.Fatalf("templates left: %v", tpls)
	}
	p.assertRootEmpty()
	// Detached, the same bundle runs.
	p.ok("run", "-d", "--bundle", b, "ct-fg")
	p.ok("delete", "--force", "ct-fg")

	// An image's program in the foreground: its output, its status.
	r = p.run("run", "--rm", "-q", "--image", reg.Host+"/test/busybox:1", "--", "sh", "-c", "echo hello; exit 4")
	if r.code != 4 || r.stdout != "hello\n" {
		t.Fatalf("foreground image run: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if cts := p.proxcageCTs(); len(cts) != 0 {
		t.Fatalf("CTs left after run --rm: %v", cts)
	}
	p.assertRootEmpty()
	if left := containersLeft(data); len(left) != 0 {
		t.Fatalf("image bundles left: %v", left)
	}
}

// An image's labels under org.proxcage. decide nothing: not the backend,
// not the VMID. Only the operator's --annotation (or the bundle, or the
// config) does. Before, a label org.proxcage.vmid=777 gave CT 777, and
// org.proxcage.backend=pve sent the image to Proxmox.
func TestImageLabelsNeverRouteOrChooseTheVMID(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	// The operator's default is native; the image asks for pve and a VMID.
	cfg, _ := os.ReadFile(p.config)
	os.WriteFile(p.config, []byte(strings.Replace(string(cfg), `default_backend = "pve"`, `default_backend = "native"`, 1)), 0o644)
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	labelled, err := testimages.WithLabels(bb, map[string]string{
		"org.proxcage.backend": "pve", "org.proxcage.vmid": "777", "org.proxcage.privileged": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := testimages.Serve(0, nil, map[string]v1.Image{"test/labelled:1": labelled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ref := reg.Host + "/test/labelled:1"

	route := p.ok("route", "--image", ref, "lab")
	if !strings.Contains(route, "backend: native") {
		t.Fatalf("route of a labelled image: %q", route)
	}
	r := p.run("run", "--rm", "-q", "--image", ref, "lab", "--", "echo", "ran-natively")
	if r.code != 0 || r.stdout != "ran-natively\n" || !strings.Contains(r.stderr, "image labels ignored") {
		t.Fatalf("run of a labelled image: exit %d out %q err %q", r.code, r.stdout, r.stderr)
	}
	if cts := p.proxcageCTs(); len(cts) != 0 {
		t.Fatalf("the image's label made CTs: %v", cts)
	}
	// The operator routes it, and picks the VMID.
	route = p.ok("route", "--image", ref, "--annotation", "org.proxcage.backend=pve", "lab")
	if !strings.Contains(route, "backend: pve") {
		t.Fatalf("route with --annotation: %q", route)
	}
	p.ok("create", "-q", "--image", ref, "--annotation", "org.proxcage.backend=pve", "ct-lab1", "--", "/sbin/init")
	if v := vmidOf(t, p.state_("ct-lab1")); v == 777 {
		t.Fatalf("the image's label chose VMID %d", v)
	}
	conf := p.pct("config", strconv.Itoa(vmidOf(t, p.state_("ct-lab1"))))
	if !strings.Contains(conf, "unprivileged: 1") {
		t.Fatalf("the image's label made the CT privileged:\n%s", conf)
	}
	p.ok("create", "-q", "--image", ref, "--annotation", "org.proxcage.backend=pve", "--annotation", "org.proxcage.vmid=4242",
		"ct-lab2", "--", "/sbin/init")
	if v := vmidOf(t, p.state_("ct-lab2")); v != 4242 {
		t.Fatalf("--annotation org.proxcage.vmid=4242 gave VMID %d", v)
	}
	// A bad --annotation is one line, and makes nothing.
	r = p.run("create", "-q", "--image", ref, "--annotation", "novalue", "ct-bad")
	if r.code != 2 || !strings.Contains(r.stderr, `--annotation "novalue": want KEY=VALUE`) || !strings.Contains(r.stderr, "(hint: for example --annotation org.proxcage.vmid=4242") {
		t.Fatalf("bad --annotation: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "bad --annotation", r.stderr)
	p.ok("delete", "ct-lab1")
	p.ok("delete", "ct-lab2")
	p.assertRootEmpty()
}

// With the state directory gone (a reboot clears /run), a create of the
// same id finds the CT that carries it and refuses: no second CT, and,
// with a requested VMID, no destroyed first one. `delete --force` then
// removes it. Before, the create made CT 101 beside CT 100.
func TestPVECreateRefusesAnIDACTCarries(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	b := p.systemBundle("sys", nil)
	p.ok("create", "--bundle", b, "ct-dup")
	vmid := vmidOf(t, p.state_("ct-dup"))
	if err := os.RemoveAll(p.root); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"create", "--bundle", b, "ct-dup"},
		{"create", "--bundle", b, "--annotation", "org.proxcage.vmid=" + strconv.Itoa(vmid), "ct-dup"},
		{"run", "-d", "--bundle", b, "ct-dup"},
	} {
		r := p.run(args...)
		want := fmt.Sprintf(`container "ct-dup" already exists as CT %d`, vmid)
		if r.code != 4 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "proxcage delete --force ct-dup") {
			t.Fatalf("%v: exit %d %q", args, r.code, r.stderr)
		}
		oneLine(t, strings.Join(args, " "), r.stderr)
		if cts := p.proxcageCTs(); len(cts) != 1 || cts[0] != strconv.Itoa(vmid) {
			t.Fatalf("after %v: CTs %v", args, cts)
		}
	}
	p.assertRootEmpty()
	// The CT carries the id in a tag too (how it was found in one listing).
	if conf := p.pct("config", strconv.Itoa(vmid)); !strings.Contains(conf, "tags: proxcage;proxcage-id.ct-dup") {
		t.Fatalf("config:\n%s", conf)
	}
	p.ok("delete", "--force", "ct-dup")
	if cts := p.proxcageCTs(); len(cts) != 0 {
		t.Fatalf("CTs after delete --force: %v", cts)
	}
	p.ok("create", "--bundle", b, "ct-dup")
	p.ok("delete", "ct-dup")

	// A CT of another node carrying the id: pct lists it (tags and all)
	// but cannot read its config from here; its tag is enough to refuse,
	// and delete --force says where to run.
	os.WriteFile(filepath.Join(p.state, "vms.json"),
		[]byte(`[{"vmid": 555, "name": "ct-remote", "node": "pve2", "type": "lxc", "tags": "proxcage;proxcage-id.ct-remote"}]`), 0o644)
	r := p.run("create", "--bundle", b, "ct-remote")
	if r.code != 4 || !strings.Contains(r.stderr, `"ct-remote" already exists as CT 555 on node pve2`) {
		t.Fatalf("create of an id a CT of another node carries: exit %d %q", r.code, r.stderr)
	}
	r = p.run("delete", "--force", "ct-remote")
	if r.code != 5 || !strings.Contains(r.stderr, "on pve2") {
		t.Fatalf("delete --force of another node's CT over pct: exit %d %q", r.code, r.stderr)
	}
	oneLine(t, "delete --force of another node's CT", r.stderr)
	p.assertRootEmpty()
}

// The OCI archive templates of images are listed, pruned when unused, and
// removed with their image (rmi, images prune). Before, `templates` did
// not list them and nothing ever removed them.
func TestPVEImageArchivesTrackedAndRemoved(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"
	archive := regexp.MustCompile(`^proxcage-oci-[0-9a-f]{16}-[0-9a-f]{16}\.tar$`)
	onlyArchive := func(what string) string {
		t.Helper()
		tpls := p.storedTemplates()
		if len(tpls) != 1 || !archive.MatchString(tpls[0]) {
			t.Fatalf("%s: templates %v", what, tpls)
		}
		return tpls[0]
	}

	// rmi takes the archive with the image.
	p.ok("create", "-q", "--image", ref, "ct-a")
	name := onlyArchive("after create")
	if list := p.ok("templates"); !regexp.MustCompile(`pve\s+local:vztmpl/` + regexp.QuoteMeta(name) + `\s+\d+\s+true\s+OCI image`).MatchString(list) {
		t.Fatalf("templates does not list the archive in use:\n%s", list)
	}
	if r := p.run("rmi", ref); r.code != 5 {
		t.Fatalf("rmi of an image in use: exit %d %q", r.code, r.stderr)
	}
	onlyArchive("after a refused rmi")
	p.ok("delete", "ct-a")
	out := p.ok("rmi", ref)
	if !strings.Contains(out, "template local:vztmpl/"+name) {
		t.Fatalf("rmi output %q", out)
	}
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		t.Fatalf("templates after rmi: %v", tpls)
	}

	// templates prune takes an unused one.
	p.ok("create", "-q", "--image", ref, "ct-b")
	name = onlyArchive("second create")
	p.ok("delete", "ct-b")
	if list := p.ok("templates"); !strings.Contains(list, name) || !regexp.MustCompile(`\s+false\s+OCI image`).MatchString(list) {
		t.Fatalf("templates:\n%s", list)
	}
	if out := p.ok("templates", "prune"); !strings.Contains(out, "removed local:vztmpl/"+name) {
		t.Fatalf("prune output %q", out)
	}
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		t.Fatalf("templates after prune: %v", tpls)
	}

	// images prune takes the archive of the unnamed image it removes.
	p.ok("create", "-q", "--image", ref, "ct-c")
	onlyArchive("third create")
	p.ok("rmi", "-f", ref) // untagged, still in use
	onlyArchive("after rmi -f")
	p.ok("delete", "ct-c")
	if out := p.ok("images", "prune"); !strings.Contains(out, "template local:vztmpl/proxcage-oci-") {
		t.Fatalf("images prune output %q", out)
	}
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		t.Fatalf("templates after images prune: %v", tpls)
	}
	p.assertRootEmpty()
}
