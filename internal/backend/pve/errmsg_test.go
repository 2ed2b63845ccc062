package pve

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/test/pvesim"
)

// The messages a first-time PVE admin meets when the [pve] config is
// wrong: each says what is wrong, on one line, with a hint that names the
// key to fix, and exits with the category the README gives.

// wantLine checks category, one line, and pieces of message and hint.
func wantLine(t *testing.T, what string, err error, cat error, msg, hint []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	line := errdefs.OneLine(err)
	t.Logf("%s: %s", what, line)
	if errdefs.Category(err) != cat {
		t.Errorf("%s: category %v, want %v: %s", what, errdefs.Category(err), cat, line)
	}
	for _, m := range msg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: message %q lacks %q", what, err.Error(), m)
		}
	}
	h := errdefs.Hint(err)
	if h == "" {
		t.Errorf("%s: no hint: %s", what, line)
	}
	for _, m := range hint {
		if !strings.Contains(h, m) {
			t.Errorf("%s: hint %q lacks %q", what, h, m)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("%s: not one line: %q", what, line)
	}
}

func TestVMIDRangeSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"19999-10000", "FIRST 19999 is greater than LAST 10000"},
		{"50-200", "FIRST 50 is out of range"},
		{"100-1000000000", "LAST 1000000000 is out of range"},
		{"a-200", `FIRST "a" is not a number`},
		{"100-b", `LAST "b" is not a number`},
		{"100", "no '-'"},
	} {
		_, err := parseVMIDRange(c.in)
		wantLine(t, c.in, err, errdefs.ErrInvalidArgument, []string{`[pve] vmid_range "` + c.in + `"`, c.want}, []string{"FIRST-LAST"})
		if strings.Contains(err.Error(), "want FIRST-LAST within") {
			t.Errorf("%s: the old catch-all %q", c.in, err)
		}
	}
	// Through the backend's constructor the message is not wrapped again.
	_, err := New(config.PVE{Transport: "pct", Timeout: "1m", VMIDRange: "19999-10000"}, slog.Default())
	if err == nil || !strings.HasPrefix(err.Error(), `[pve] vmid_range "19999-10000": FIRST`) {
		t.Errorf("New: %v", err)
	}
}

func TestAPITLSUnverifiedNamesTheKeysAndTheFingerprint(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	_, err := newAPIClient(config.PVE{URL: s.URL(), TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o600)}, slog.Default())
	wantLine(t, "no fingerprint", err, errdefs.ErrInvalidArgument, []string{"TLS cannot be verified"},
		[]string{"fingerprint = \"" + s.Fingerprint() + "\"", "ca_file", "insecure", "pvenode cert info"})
	// Unreachable: the keys still, and why there is no fingerprint.
	_, err = newAPIClient(config.PVE{URL: "https://127.0.0.1:1", TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o600)}, slog.Default())
	wantLine(t, "unreachable", err, errdefs.ErrInvalidArgument, nil, []string{"fingerprint", "ca_file", "insecure", "could not be read"})
}

func TestAPITokenAndUserConflict(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	_, err := newAPIClient(config.PVE{URL: s.URL(), Fingerprint: s.Fingerprint(), TokenID: simToken,
		User: "root@pam", PasswordFile: secretFile(t, "rootpw", 0o600)}, slog.Default())
	wantLine(t, "token_id and user", err, errdefs.ErrInvalidArgument, []string{"token_id", "user", "both set"},
		[]string{"remove user", "remove token_id"})
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("speaks of a secret, not of the conflict: %v", err)
	}
}

// A url copied with the API path works (the path is not doubled), and
// doctor says it was normalised.
func TestAPIURLWithAPIPath(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	for _, u := range []string{s.URL() + "/api2/json", s.URL() + "/api2/json/"} {
		c, err := newAPIClient(config.PVE{URL: u, TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o600),
			Fingerprint: s.Fingerprint()}, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := c.call(context.Background(), "version", 0, http.MethodGet, "/version", nil, &v); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	f := newAPIFixture(t, pvesim.Options{})
	f.cfg.URL += "/api2/json"
	found := false
	for _, c := range f.backend().Doctor(context.Background()) {
		if c.Name == "pve: url" {
			found = c.Warn && strings.Contains(c.Detail, "/api2/json") && strings.Contains(c.Detail, "drop")
		}
		if !c.OK && !c.Warn {
			t.Errorf("doctor: %+v", c)
		}
	}
	if !found {
		t.Error("doctor does not say the url was normalised")
	}
}

func TestAPIUnknownNode(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{Nodes: []string{"pve1", "pve2"}})
	f.cfg.Node = "pve9"
	b := f.backend()
	err := b.Create(context.Background(), f.container("x", nil), backend.CreateOpts{})
	wantLine(t, "create on pve9", err, errdefs.ErrInvalidArgument, []string{`node "pve9" is not in the cluster (nodes: pve1, pve2)`}, []string{"[pve] node"})
	if strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), "hostname lookup") {
		t.Errorf("PVE's 500 shows: %v", err)
	}
	if cts := simCTs(t, f); len(cts) != 0 {
		t.Errorf("CTs left: %v", cts)
	}
	var node *backend.Check
	checks := b.Doctor(context.Background())
	for i := range checks {
		if strings.HasPrefix(checks[i].Name, "pve: node") {
			node = &checks[i]
		}
	}
	if node == nil || node.OK || !strings.Contains(node.Detail, `node "pve9" is not in the cluster (nodes: pve1, pve2)`) || node.Hint == "" {
		t.Fatalf("doctor passes an unknown node: %+v", node)
	}
}

// A doctor check made from an error carries its hint once: the CLI prints
// the hint after the detail.
func TestAPIDoctorHintOnce(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{})
	f.cfg.TokenSecretFile = secretFile(t, "not-the-secret-0000", 0o600)
	for _, c := range f.backend().Doctor(context.Background()) {
		if c.Hint != "" && strings.Contains(c.Detail, c.Hint) {
			t.Errorf("%s: the hint is in the detail too: %q -- %q", c.Name, c.Detail, c.Hint)
		}
		if !c.OK && c.Hint == "" {
			t.Errorf("%s failed without a hint: %q", c.Name, c.Detail)
		}
	}
}

// Storage errors name the one [pve] key that is wrong, its storage and the
// content it needs.
func TestStorageHintNamesTheKey(t *testing.T) {
	err := classify("pct create", 100, 255, "unable to create CT 100 - content type 'rootdir' is not available or configured on storage 'local'").asError()
	wantLine(t, "rootdir", err, errdefs.ErrInvalidArgument, nil, []string{`[pve] rootfs_storage = "local"`, "content rootdir", "pvesm status --content rootdir"})
	if strings.Contains(errdefs.Hint(err), "template_storage") {
		t.Errorf("hint names template_storage too: %q", errdefs.Hint(err))
	}
	// What a create reaches instead (API2/LXC.pm create_vm): a 400 on
	// "storage".
	err = classify("create CT", 100, -1, "400 Parameter verification failed.\nstorage: storage 'local' does not support container directories").asError()
	wantLine(t, "no container directories", err, errdefs.ErrInvalidArgument, nil, []string{`[pve] rootfs_storage = "local"`, "content rootdir"})

	// A storage PVE does not know: the backend knows which key names it.
	f := newAPIFixture(t, pvesim.Options{})
	f.cfg.Node, f.cfg.RootfsStorage = "pve1", "fast"
	err = f.backend().Create(context.Background(), f.container("x", nil), backend.CreateOpts{})
	wantLine(t, "rootfs storage missing", err, errdefs.ErrInvalidArgument, []string{"storage 'fast' does not exist"}, []string{`[pve] rootfs_storage = "fast"`, "rootdir"})
	if strings.Contains(errdefs.Hint(err), "template_storage") {
		t.Errorf("hint names template_storage too: %q", errdefs.Hint(err))
	}
	f.cfg.RootfsStorage, f.cfg.TemplateStorage = "local-lvm", "tpl"
	err = f.backend().Create(context.Background(), f.container("y", nil), backend.CreateOpts{})
	wantLine(t, "template storage missing", err, errdefs.ErrInvalidArgument, []string{"storage 'tpl' does not exist"}, []string{`[pve] template_storage = "tpl"`, "vztmpl"})
	if strings.Contains(errdefs.Hint(err), "rootfs_storage") {
		t.Errorf("hint names rootfs_storage too: %q", errdefs.Hint(err))
	}
	// Placement over the API: every node lacks the rootfs storage.
	f.cfg.Node, f.cfg.TemplateStorage, f.cfg.RootfsStorage = "auto", "local", "fast"
	err = f.backend().Create(context.Background(), f.container("z", nil), backend.CreateOpts{})
	wantLine(t, "placement, rootfs storage", err, errdefs.ErrInvalidArgument, []string{"no storage fast for rootdir"}, []string{`[pve] rootfs_storage = "fast"`, "rootdir"})
	if cts := simCTs(t, f); len(cts) != 0 {
		t.Errorf("CTs left: %v", cts)
	}
}

// A missing bridge is one config fault, whether pct says it or placement
// over the API finds it: exit 2, one hint.
func TestMissingBridgeOneCategoryOneHint(t *testing.T) {
	pct := classify("pct start", 100, 255, "bridge 'vmbr7' does not exist").asError()
	f := newAPIFixture(t, pvesim.Options{})
	f.cfg.Bridge = "vmbr7"
	api := f.backend().Create(context.Background(), f.container("x", nil), backend.CreateOpts{})
	for name, err := range map[string]error{"pct": pct, "api": api} {
		wantLine(t, name, err, errdefs.ErrInvalidArgument, []string{"vmbr7"}, []string{"[pve] bridge", "org.proxcage.net0", "any_bridge"})
		if errdefs.ExitCode(err) != 2 {
			t.Errorf("%s: exit %d", name, errdefs.ExitCode(err))
		}
	}
	if errdefs.Hint(pct) != errdefs.Hint(api) {
		t.Errorf("two hints for one fault:\npct: %s\napi: %s", errdefs.Hint(pct), errdefs.Hint(api))
	}
	if cts := simCTs(t, f); len(cts) != 0 {
		t.Errorf("CTs left: %v", cts)
	}
	if !errors.Is(api, errdefs.ErrInvalidArgument) {
		t.Errorf("api: %v", api)
	}
}
