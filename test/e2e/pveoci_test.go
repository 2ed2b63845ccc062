package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/test/testimages"
)

// Images on PVE 9.1 as the real node takes them: the archive proxcage
// uploads must be OCI throughout (proxmox-oci refuses Docker media
// types), and the command-line overrides must survive restore_oci_archive
// (pve-container Create.pm), which applies the image config over the
// create options. The pct double follows both (test/pctdouble/oci.go).

// readOCIArchive returns the media types and the config's process fields
// of an OCI layout tar.
func readOCIArchive(t *testing.T, file string) (mediaTypes []string, proc map[string]any) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	type desc struct{ MediaType, Digest string }
	blob := func(d string) []byte {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")]
		if !ok {
			t.Fatalf("archive %s lacks blob %s", file, d)
		}
		return b
	}
	var idx struct{ Manifests []desc }
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) == 0 {
		t.Fatalf("index.json %q: %v", files["index.json"], err)
	}
	var m struct {
		MediaType string
		Config    desc
		Layers    []desc
	}
	if err := json.Unmarshal(blob(idx.Manifests[0].Digest), &m); err != nil {
		t.Fatal(err)
	}
	mediaTypes = append(mediaTypes, idx.Manifests[0].MediaType, m.MediaType, m.Config.MediaType)
	for _, l := range m.Layers {
		mediaTypes = append(mediaTypes, l.MediaType)
	}
	var cfg struct{ Config map[string]any }
	if err := json.Unmarshal(blob(m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	return mediaTypes, cfg.Config
}

// procOf reads what the kernel says about a host pid.
func procOf(t *testing.T, pid int) (env []string, cwd string, status string, cmdline []string) {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid)
	e, err := os.ReadFile(dir + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env = strings.Split(strings.TrimRight(string(e), "\x00"), "\x00")
	cwd, _ = os.Readlink(dir + "/cwd")
	s, _ := os.ReadFile(dir + "/status")
	c, _ := os.ReadFile(dir + "/cmdline")
	return env, cwd, string(s), strings.Split(strings.TrimRight(string(c), "\x00"), "\x00")
}

func statusField(status, key string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// `run -d --image` of a Docker-format image on PVE 9.1: the archive has
// only OCI media types, and the CT's init got the command-line args, -e
// merged over the image's Env, -w and -u. Before, the archive held the
// Docker manifest (the real node, and now the double, refuse it inside
// pct create: "Unsupported CPU architecture"), and restore_oci_archive's
// mapping of the image config replaced the entrypoint and env proxcage
// gave (-w and -u were not passed at all).
func TestPVEOCIImageOverridesReachTheProcess(t *testing.T) {
	p := newPVEEnv(t)
	withDataDir(t, p.env)
	reg := serveTestImages(t)
	ref := reg.Host + "/test/busybox:1"

	// The test image is Docker-format, as Docker Hub's are.
	req, _ := http.NewRequest("GET", "http://"+reg.Host+"/v2/test/busybox/manifests/1", nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Fatalf("test/busybox:1 is served as %q, not as a Docker v2 image", ct)
	}

	p.ok("run", "-d", "-q", "--image", ref, "-e", "GREETING=override", "-e", "EXTRA=1", "-w", "/tmp", "-u", "app",
		"ct-oci", "--", "/bin/sleep", "100001")
	st := p.waitStatus("ct-oci", specs.StateRunning)
	if st.Pid <= 0 {
		t.Fatalf("no pid: %+v", st)
	}
	var env []string
	var cwd, status string
	var cmdline []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		env, cwd, status, cmdline = procOf(t, st.Pid)
		if len(cmdline) > 0 && cmdline[0] == "/bin/sleep" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Join(cmdline, " ") != "/bin/sleep 100001" {
		t.Errorf("the CT's init runs %q, want the command-line args /bin/sleep 100001", cmdline)
	}
	for _, want := range []string{"PATH=/bin", "GREETING=override", "EXTRA=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("init's environ %q lacks %s (-e merged over the image's Env)", env, want)
		}
	}
	if slices.Contains(env, "GREETING=hello") {
		t.Errorf("init's environ %q keeps the image's GREETING", env)
	}
	if !strings.HasSuffix(cwd, "/tmp") {
		t.Errorf("init's cwd %q, want the rootfs's /tmp (-w)", cwd)
	}
	// -u app: uid and gid 1000 from the image's passwd, and its
	// supplementary group video (44) from its group file; seen from the
	// host either as they are or through an unprivileged CT's id map
	// (PVE's default: CT 0 = host 100000).
	ids := func(key string, want int) {
		t.Helper()
		f := strings.Fields(statusField(status, key))
		if len(f) == 0 || (f[0] != strconv.Itoa(want) && f[0] != strconv.Itoa(want+100000)) || (key == "Groups" && len(f) != 1) {
			t.Errorf("init's %s: %q, want %d (-u app)", key, statusField(status, key), want)
		}
	}
	ids("Uid", 1000)
	ids("Gid", 1000)
	// The supplementary group is PVE's to write (lxc.init.groups from
	// resolve_oci_user) and LXC's to apply: LXC applies lxc.init.groups in
	// a user namespace only since v7.0.0 (lxc commit 9e6caeabe, "start:
	// Respect lxc.init.groups also in new user namespace"), so in an
	// unprivileged CT on an older LXC (this host's 5.0, PVE 9's lxc-pve 6)
	// the process has none. The config must carry it either way.
	if !p.real {
		if conf := p.pct("config", strconv.Itoa(vmidOf(t, st))); !strings.Contains(conf, "lxc.init.groups: 44\n") {
			t.Errorf("the CT config lacks lxc.init.groups: 44 (-u app):\n%s", conf)
		}
	}
	if g := statusField(status, "Groups"); strings.TrimSpace(g) != "" {
		ids("Groups", 44)
	}
	if p.real {
		p.ok("delete", "--force", "ct-oci")
		return
	}

	tpls, _ := filepath.Glob(filepath.Join(p.state, "storage", "local", "template", "cache", "proxcage-oci-*.tar"))
	if len(tpls) != 1 || !regexp.MustCompile(`/proxcage-oci-[0-9a-f]{16}-[0-9a-f]{16}\.tar$`).MatchString(tpls[0]) {
		t.Fatalf("OCI archive templates: %v", tpls)
	}
	types, proc := readOCIArchive(t, tpls[0])
	for _, mt := range types {
		if !strings.HasPrefix(mt, "application/vnd.oci.image.") {
			t.Errorf("the archive has the media type %q (proxmox-oci takes OCI types only): %q", mt, types)
		}
	}
	got, _ := json.Marshal(proc)
	for _, want := range []string{`"Cmd":["/bin/sleep","100001"]`, `"Env":["PATH=/bin","GREETING=override","EXTRA=1"]`, `"User":"app"`, `"WorkingDir":"/tmp"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the archive's config %s lacks %s", got, want)
		}
	}

	// Another set of overrides is another archive of the same image; rmi
	// takes both once no CT uses them.
	p.ok("create", "-q", "--image", ref, "-e", "GREETING=second", "ct-oci2")
	if tpls, _ := filepath.Glob(filepath.Join(p.state, "storage", "local", "template", "cache", "proxcage-oci-*.tar")); len(tpls) != 2 {
		t.Fatalf("two override sets, archives %v", tpls)
	}
	p.ok("delete", "--force", "ct-oci")
	p.ok("delete", "ct-oci2")
	out := p.ok("rmi", ref)
	if strings.Count(out, "template local:vztmpl/proxcage-oci-") != 2 {
		t.Fatalf("rmi output %q", out)
	}
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		t.Fatalf("templates after rmi: %v", tpls)
	}
	p.assertRootEmpty()
}

// initOf waits until the init of a running container runs argv0 and
// returns its cmdline and environ.
func (p *pveEnv) initOf(id, argv0 string) (cmdline, env []string) {
	p.t.Helper()
	st := p.waitStatus(id, specs.StateRunning)
	deadline := time.Now().Add(10 * time.Second)
	for {
		env, _, _, cmdline = procOf(p.t, st.Pid)
		if len(cmdline) > 0 && cmdline[0] == argv0 || time.Now().After(deadline) {
			return cmdline, env
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An image that is OCI already: without overrides the archive is the
// image itself (its digest names it twice); with a command and -e the
// config is derived, so restore_oci_archive, which puts the image's
// Entrypoint+Cmd and Env over the create options, maps the overrides.
// Before, proxcage passed --entrypoint and --env to pct create and the
// image config replaced both: the CT ran the image's own command.
func TestPVEOCIImageOverridesWinOverTheImageConfig(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	withDataDir(t, p.env)
	bb, err := testimages.Busybox("/bin/busybox")
	if err != nil {
		t.Skip(err)
	}
	oci, err := testimages.OCI(bb)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := testimages.Serve(0, nil, map[string]v1.Image{"test/busybox-oci:1": oci})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ref := reg.Host + "/test/busybox-oci:1"

	p.ok("run", "-d", "-q", "--image", ref, "-e", "GREETING=override", "ct-ovr", "--", "/bin/sleep", "100002")
	conf := p.pct("config", strconv.Itoa(vmidOf(t, p.state_("ct-ovr"))))
	if !strings.Contains(conf, "entrypoint: /bin/sleep 100002\n") || !strings.Contains(conf, "GREETING=override") {
		t.Fatalf("the CT config lost the overrides to the image config:\n%s", conf)
	}
	cmdline, env := p.initOf("ct-ovr", "/bin/sleep")
	if strings.Join(cmdline, " ") != "/bin/sleep 100002" {
		t.Errorf("the CT's init runs %q, want /bin/sleep 100002", cmdline)
	}
	if !slices.Contains(env, "GREETING=override") || !slices.Contains(env, "PATH=/bin") {
		t.Errorf("init's environ %q, want GREETING=override merged over the image's PATH=/bin", env)
	}
	p.ok("delete", "--force", "ct-ovr")
	p.ok("create", "-q", "--image", ref, "ct-plain")
	tpls := p.storedTemplates()
	own := 0
	for _, n := range tpls {
		if m := regexp.MustCompile(`^proxcage-oci-([0-9a-f]{16})-([0-9a-f]{16})\.tar$`).FindStringSubmatch(n); len(m) == 3 && m[1] == m[2] {
			own++
		}
	}
	if len(tpls) != 2 || own != 1 {
		t.Fatalf("an OCI image with and without overrides: archives %v, want one derived and the image's own (its digest twice)", tpls)
	}
	p.ok("delete", "ct-plain")

	p.assertRootEmpty()
}

// A value PVE cannot take in an image config (a control character but
// tab) is refused before anything is made, in one line that names the
// variable, not its value. Before, the create reached pct (a newline in
// --env, or in an image's Env, breaks the CT config into two lines).
func TestPVEOCIControlCharacterRefusedBeforeCreate(t *testing.T) {
	p := newPVEEnv(t)
	p.needDouble()
	data := withDataDir(t, p.env)
	reg := serveTestImages(t)
	r := p.run("run", "-d", "-q", "--image", reg.Host+"/test/busybox:1", "-e", "TOKEN=abc\nlxc.apparmor.profile: unconfined", "ct-ctl", "--", "/bin/sleep", "1")
	if r.code != 2 || !strings.Contains(r.stderr, `Env "TOKEN" holds the control character U+000A`) || strings.Contains(r.stderr, "abc") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	oneLine(t, "control character", r.stderr)
	if tpls := p.storedTemplates(); len(tpls) != 0 {
		t.Fatalf("templates made: %v", tpls)
	}
	if left := containersLeft(data); len(left) != 0 {
		t.Fatalf("bundles left: %v", left)
	}
	if l := p.pctList(); strings.Count(l, "\n") > 1 {
		t.Fatalf("a CT was made:\n%s", l)
	}
	p.assertRootEmpty()
}

// TestPVEOCIImageQuotedArgsSurvive: a command whose words PVE's cmd2string
// cannot carry (a quote) is set again after the create, because
// restore_oci_archive replaces the create's entrypoint with the image
// config's (pve-container 6.1.10 Create.pm). Before, the CT ran
// ["/bin/sh", "-c", "exec /bin/sleep ", ...]: sleep without its operand.
func TestPVEOCIImageQuotedArgsSurvive(t *testing.T) {
	p := newPVEEnv(t)
	withDataDir(t, p.env)
	reg := serveTestImages(t)
	p.ok("run", "-d", "-q", "--image", reg.Host+"/test/busybox:1", "ct-quote", "--", "/bin/sh", "-c", "exec /bin/sleep '100003'")
	st := p.waitStatus("ct-quote", specs.StateRunning)
	var cmdline []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, _, _, cmdline = procOf(t, st.Pid); strings.Join(cmdline, " ") == "/bin/sleep 100003" {
			break
		}
	}
	if strings.Join(cmdline, " ") != "/bin/sleep 100003" {
		t.Fatalf("the CT's init runs %q, want /bin/sleep 100003 (sh -c \"exec /bin/sleep '100003'\")", cmdline)
	}
	p.ok("delete", "--force", "ct-quote")
}
