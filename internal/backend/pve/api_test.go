package pve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/test/pvesim"
)

const (
	simToken  = "root@pam!proxcage"
	simSecret = "9f3c2a1e-5b7d-4c8e-a1f0-2d4b6c8e0f13"
	simTmpl   = "local:vztmpl/busybox_1.0_amd64.tar.zst"
)

func startSim(t *testing.T, opts pvesim.Options) *pvesim.Server {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]string{simToken: simSecret}
	}
	if opts.Users == nil {
		opts.Users = map[string]string{"root@pam": "rootpw"}
	}
	if opts.Nodes == nil {
		opts.Nodes = []string{"pve1", "pve2"}
	}
	opts.Templates = append(opts.Templates, simTmpl)
	if opts.TaskDuration == 0 {
		opts.TaskDuration = 50 * time.Millisecond
	}
	s := pvesim.New(opts)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func secretFile(t *testing.T, secret string, mode os.FileMode) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestClient(t *testing.T, s *pvesim.Server, logs *bytes.Buffer) *apiClient {
	t.Helper()
	c, err := newAPIClient(config.PVE{
		URL: s.URL(), TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o600),
		Fingerprint: s.Fingerprint(),
	}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAPIFingerprintPinning(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	var logs bytes.Buffer
	c := newTestClient(t, s, &logs)
	var v map[string]any
	if err := c.call(context.Background(), "version", 0, http.MethodGet, "/version", nil, &v); err != nil || v["release"] != "9.1" {
		t.Fatalf("pinned call: %v %v", v, err)
	}
	bad, err := newAPIClient(config.PVE{URL: s.URL(), TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o600),
		Fingerprint: strings.Repeat("AB:", 31) + "AB"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.call(context.Background(), "version", 0, http.MethodGet, "/version", nil, nil)
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(errdefs.Hint(err), "fingerprint") {
		t.Fatalf("wrong pin: %v (hint %q)", err, errdefs.Hint(err))
	}
	// Verification is never off by default.
	if _, err := newAPIClient(config.PVE{URL: s.URL(), TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o600)}, slog.Default()); err == nil {
		t.Fatal("a client without fingerprint, CA or insecure was built")
	}
}

func TestAPISecretHandling(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	if _, err := newAPIClient(config.PVE{URL: s.URL(), TokenID: simToken, TokenSecretFile: secretFile(t, simSecret, 0o644), Fingerprint: s.Fingerprint()}, slog.Default()); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), simSecret) {
		t.Fatalf("world-readable secret file: %v", err)
	}
	t.Setenv(TokenSecretEnv, "wrong-secret-value")
	var logs bytes.Buffer
	c, err := newAPIClient(config.PVE{URL: s.URL(), TokenID: simToken, Fingerprint: s.Fingerprint()},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	err = c.call(context.Background(), "version", 0, http.MethodGet, "/version", nil, nil)
	if !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("wrong secret: %v", err)
	}
	for _, where := range []string{err.Error(), errdefs.Hint(err), logs.String()} {
		if strings.Contains(where, "wrong-secret-value") || strings.Contains(where, simSecret) {
			t.Fatalf("secret leaked: %q", where)
		}
	}
}

func TestAPITicketAuth(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	c, err := newAPIClient(config.PVE{URL: s.URL(), User: "root@pam", PasswordFile: secretFile(t, "rootpw", 0o600), Fingerprint: s.Fingerprint()}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	var id string
	// A POST needs the CSRF token that came with the ticket.
	if err := c.call(context.Background(), "nextid", 0, http.MethodGet, "/cluster/nextid", nil, &id); err != nil || id == "" {
		t.Fatalf("ticket GET: %q %v", id, err)
	}
	var task string
	err = c.call(context.Background(), "create", 100, http.MethodPost, "/nodes/pve1/lxc",
		url.Values{"vmid": {"100"}, "ostemplate": {simTmpl}, "rootfs": {"local-lvm:1"}}, &task)
	if err != nil || !strings.HasPrefix(task, "UPID:pve1:") {
		t.Fatalf("ticket POST: %q %v", task, err)
	}
}

func TestAPIErrorsAreClassified(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	var logs bytes.Buffer
	c := newTestClient(t, s, &logs)
	ctx := context.Background()
	create := func(node string, extra url.Values) (string, error) {
		v := url.Values{"vmid": {"100"}, "ostemplate": {simTmpl}, "rootfs": {"local-lvm:1"}}
		for k, vs := range extra {
			v[k] = vs
		}
		var task string
		err := c.call(ctx, "create", 100, http.MethodPost, "/nodes/"+node+"/lxc", v, &task)
		return task, err
	}
	// 400 with a per-parameter map: invalid argument naming the parameter.
	_, err := create("pve1", url.Values{"memory": {"8"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "memory: value must have a minimum value of 16") {
		t.Fatalf("bad parameter: %v", err)
	}
	task, err := create("pve1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.waitTask(ctx, "create", 100, task, 0); err != nil {
		t.Fatalf("create task: %v", err)
	}
	// The same VMID on another node: already exists, with the holder.
	_, err = create("pve2", nil)
	if !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(errdefs.Hint(err), "node pve1") {
		t.Fatalf("duplicate VMID: %v (hint %q)", err, errdefs.Hint(err))
	}
	// A failed task: its exit status and log tail, classified.
	s.FailNextTask("vzstart", "storage 'local-lvm' does not exist")
	var start string
	if err := c.call(ctx, "start", 100, http.MethodPost, "/nodes/pve1/lxc/100/status/start", nil, &start); err != nil {
		t.Fatal(err)
	}
	err = c.waitTask(ctx, "start", 100, start, 0)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "storage 'local-lvm' does not exist") || !strings.Contains(errdefs.Hint(err), "rootfs_storage") {
		t.Fatalf("failed task: %v", err)
	}
	// A token may not pass a host path: permission denied, saying why.
	_, err = create("pve1", url.Values{"vmid": {"101"}, "mp0": {"/srv/data,mp=/data"}})
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(errdefs.Hint(err), "ticket as root@pam") {
		t.Fatalf("root-only as token: %v (hint %q)", err, errdefs.Hint(err))
	}
	if _, err := parseUPID("UPID:bogus"); err == nil {
		t.Fatal("malformed UPID accepted")
	}
}

func TestAPIRetries(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	var logs bytes.Buffer
	c := newTestClient(t, s, &logs)
	ctx := context.Background()
	var id string
	// 503 twice then fine: retried, logged at debug with the reason.
	s.FailNext(2, 503, "/cluster/nextid")
	s.ResetCalls()
	if err := c.call(ctx, "nextid", 0, http.MethodGet, "/cluster/nextid", nil, &id); err != nil {
		t.Fatalf("503 not retried: %v", err)
	}
	if n := s.Calls()["GET /cluster/nextid"]; n != 3 {
		t.Fatalf("nextid calls %d, want 3 (%v)", n, s.Calls())
	}
	if !strings.Contains(logs.String(), "retrying PVE API call") {
		t.Fatalf("retry not logged:\n%s", logs.String())
	}
	// A dropped connection on a GET is retried too.
	s.DropNext(1, "/version")
	if err := c.call(ctx, "version", 0, http.MethodGet, "/version", nil, nil); err != nil {
		t.Fatalf("dropped GET not retried: %v", err)
	}
	// 4xx never is.
	s.ResetCalls()
	err := c.call(ctx, "create", 0, http.MethodPost, "/nodes/pve1/lxc", url.Values{"vmid": {"5"}}, nil)
	if err == nil || s.Calls()["POST /nodes/{node}/lxc"] != 1 {
		t.Fatalf("4xx retried: %v %v", err, s.Calls())
	}
	// A dropped POST is not retried: the create may have happened.
	s.DropNext(1, "/nodes/pve1/lxc$")
	s.ResetCalls()
	err = c.call(ctx, "create", 102, http.MethodPost, "/nodes/pve1/lxc", url.Values{"vmid": {"102"}, "ostemplate": {simTmpl}, "rootfs": {"local-lvm:1"}}, nil)
	if err == nil || s.Calls()["POST /nodes/{node}/lxc"] != 1 || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("dropped POST: %v %v", err, s.Calls())
	}
}
