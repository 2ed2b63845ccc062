package pvesim

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const tokenID = "root@pam!ci"
const tokenSecret = "11111111-2222-3333-4444-555555555555"
const debTpl = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]string{tokenID: tokenSecret, "user@pve!ci": "usersecret"}
	}
	if opts.Users == nil {
		opts.Users = map[string]string{"root@pam": "secret"}
	}
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type answer struct {
	code   int
	status string // full status line after the code
	body   map[string]any
}

// api sends one request; auth is "token", "" (none) or a func.
func api(t *testing.T, s *Server, method, path string, form url.Values, auth func(*http.Request)) answer {
	t.Helper()
	var body io.Reader
	u := s.URL() + "/api2/json" + path
	if form != nil {
		if method == "GET" || method == "DELETE" {
			u += "?" + form.Encode()
		} else {
			body = strings.NewReader(form.Encode())
		}
	}
	req, _ := http.NewRequest(method, u, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != nil {
		auth(req)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, status: resp.Status}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, b, err)
		}
	}
	return a
}

func token(r *http.Request) {
	r.Header.Set("Authorization", "PVEAPIToken="+tokenID+"="+tokenSecret)
}

func mustOK(t *testing.T, a answer) any {
	t.Helper()
	if a.code != 200 {
		t.Fatalf("want 200, got %q %v", a.status, a.body)
	}
	return a.body["data"]
}

// waitTask polls a task until it stops and returns its exit status.
func waitTask(t *testing.T, s *Server, node, upid string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st := mustOK(t, api(t, s, "GET", "/nodes/"+node+"/tasks/"+url.PathEscape(upid)+"/status", nil, token)).(map[string]any)
		if st["status"] == "stopped" {
			return st["exitstatus"].(string)
		}
		if st["status"] != "running" {
			t.Fatalf("task status %v", st["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("task %s did not stop", upid)
	return ""
}

func createForm(vmid string) url.Values {
	return url.Values{"vmid": {vmid}, "ostemplate": {debTpl}, "hostname": {"web"}, "rootfs": {"local-lvm:8"},
		"memory": {"1024"}, "net0": {"name=eth0,bridge=vmbr0,ip=dhcp"}}
}

func TestFingerprintPinning(t *testing.T) {
	s := start(t, Options{})
	if !strings.Contains(s.Fingerprint(), ":") || len(s.Fingerprint()) != 95 {
		t.Fatalf("fingerprint %q not in PVE format", s.Fingerprint())
	}
	if d := mustOK(t, api(t, s, "GET", "/version", nil, token)).(map[string]any); d["release"] != "9.1" {
		t.Fatalf("version %v", d)
	}
	wrong := strings.Replace(s.Fingerprint(), s.Fingerprint()[:2], "00", 1)
	if wrong == s.Fingerprint() {
		wrong = "11" + s.Fingerprint()[2:]
	}
	_, err := PinnedClient(wrong).Get(s.URL() + "/api2/json/version")
	if err == nil || !strings.Contains(err.Error(), "fingerprint mismatch") {
		t.Fatalf("wrong pin: want mismatch error, got %v", err)
	}
	// A client without the pin does not trust the self-signed certificate.
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Get(s.URL() + "/api2/json/version"); err == nil {
		t.Fatal("unpinned client trusted the self-signed certificate")
	}
}

func TestTokenAuth(t *testing.T) {
	s := start(t, Options{})
	if a := api(t, s, "GET", "/version", nil, nil); a.code != 401 || a.body["data"] != nil {
		t.Fatalf("no auth: %q %v", a.status, a.body)
	}
	bad := func(r *http.Request) { r.Header.Set("Authorization", "PVEAPIToken="+tokenID+"=nope") }
	if a := api(t, s, "GET", "/version", nil, bad); a.code != 401 {
		t.Fatalf("bad token: %q", a.status)
	}
	mustOK(t, api(t, s, "GET", "/version", nil, token))
	// POST with a token needs no CSRF token: this one gets past auth to
	// parameter checking.
	if a := api(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"100"}}, token); a.code != 400 {
		t.Fatalf("token POST: %q", a.status)
	}
}

func TestTicketAuthCSRFAndExpiry(t *testing.T) {
	clock := NewFakeClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
	s := start(t, Options{Now: clock.Now, Templates: []string{debTpl}})
	if a := api(t, s, "POST", "/access/ticket", url.Values{"username": {"root@pam"}, "password": {"wrong"}}, nil); a.code != 401 {
		t.Fatalf("wrong password: %q", a.status)
	}
	d := mustOK(t, api(t, s, "POST", "/access/ticket", url.Values{"username": {"root"}, "realm": {"pam"}, "password": {"secret"}}, nil)).(map[string]any)
	tk, csrf := d["ticket"].(string), d["CSRFPreventionToken"].(string)
	if !strings.HasPrefix(tk, "PVE:root@pam:") || csrf == "" || d["username"] != "root@pam" {
		t.Fatalf("ticket answer %v", d)
	}
	cookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: tk}) }
	withCSRF := func(r *http.Request) { cookie(r); r.Header.Set("CSRFPreventionToken", csrf) }
	mustOK(t, api(t, s, "GET", "/nodes", nil, cookie))
	a := api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), cookie)
	if a.code != 401 || !strings.Contains(a.status, "csrf") {
		t.Fatalf("POST without CSRF: %q", a.status)
	}
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), withCSRF)).(string)
	if !strings.HasSuffix(upid, ":vzcreate:100:root@pam:") {
		t.Fatalf("upid %q", upid)
	}
	clock.Advance(2*time.Hour + time.Second)
	if a := api(t, s, "GET", "/nodes", nil, cookie); a.code != 401 {
		t.Fatalf("expired ticket: %q", a.status)
	}
}

func TestNextID(t *testing.T) {
	s := start(t, Options{QemuVMs: []QemuVM{{VMID: 100, Node: "pve1", Name: "vm"}}})
	a := api(t, s, "GET", "/cluster/nextid", nil, token)
	if id, ok := mustOK(t, a).(string); !ok || id != "101" {
		t.Fatalf("nextid: want string \"101\", got %#v", a.body["data"])
	}
	a = api(t, s, "GET", "/cluster/nextid", url.Values{"vmid": {"100"}}, token)
	errs, _ := a.body["errors"].(map[string]any)
	if a.code != 400 || a.status != "400 Parameter verification failed." || errs["vmid"] != "VM 100 already exists" {
		t.Fatalf("collision: %q %v", a.status, a.body)
	}
	if _, ok := a.body["data"]; !ok || a.body["data"] != nil {
		t.Fatalf("collision: data must be null: %v", a.body)
	}
	if got := mustOK(t, api(t, s, "GET", "/cluster/nextid", url.Values{"vmid": {"555"}}, token)); got != "555" {
		t.Fatalf("free vmid: %#v", got)
	}
}

func TestCreateValidation(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})
	f := createForm("100")
	f.Set("memory", "8")
	f.Set("bogus", "1")
	f.Set("net0", "name=eth0,bridge=vmbr0,ip=notanip")
	a := api(t, s, "POST", "/nodes/pve1/lxc", f, token)
	errs, _ := a.body["errors"].(map[string]any)
	if a.code != 400 || a.status != "400 Parameter verification failed." {
		t.Fatalf("status %q", a.status)
	}
	if errs["memory"] != "value must have a minimum value of 16" ||
		errs["bogus"] != "property is not defined in schema and the schema does not allow additional properties" ||
		errs["net0.ip"] == nil {
		t.Fatalf("errors %v", errs)
	}
	a = api(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"99"}, "ostemplate": {debTpl}}, token)
	if errs, _ := a.body["errors"].(map[string]any); a.code != 400 || errs["vmid"] == nil {
		t.Fatalf("vmid 99: %q %v", a.status, a.body)
	}
	// Template not uploaded: the create task fails (activate_volume), and
	// leaves no CT.
	f = createForm("100")
	f.Set("ostemplate", "local:vztmpl/nothere.tar.zst")
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", f, token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "unable to create CT 100 - volume 'local:vztmpl/nothere.tar.zst' does not exist" {
		t.Fatalf("missing template: %q", ex)
	}
	if g := s.Guests(); len(g) != 0 {
		t.Fatalf("CT left: %v", g)
	}
	// Root-only parameters with a token (check_ct_modify_config_perm).
	f = createForm("100")
	f.Set("mp0", "/srv/data,mp=/data")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.code != 403 || a.status != "403 Permission check failed (mount point type bind is only allowed for root@pam)" {
		t.Fatalf("bind mount: %q", a.status)
	}
	f = createForm("100")
	f.Set("features", "nesting=1,keyctl=1")
	if a := api(t, s, "POST", "/nodes/pve1/lxc", f, token); a.code != 403 || a.status != "403 Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)" {
		t.Fatalf("features: %q", a.status)
	}
	f.Set("features", "nesting=1")
	mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", f, token))
}

func TestDuplicateVMIDAcrossNodes(t *testing.T) {
	s := start(t, Options{Nodes: []string{"pve1", "pve2"}, Templates: []string{debTpl}})
	mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token))
	a := api(t, s, "POST", "/nodes/pve2/lxc", createForm("100"), token)
	if a.code != 500 || a.status != "500 CT 100 already exists on node 'pve1'" {
		t.Fatalf("duplicate: %q", a.status)
	}
	if d, ok := a.body["data"]; !ok || d != nil {
		t.Fatalf("body %v", a.body)
	}
}

func upload(t *testing.T, s *Server, node, storage, name string, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("content", "vztmpl")
	fw, _ := mw.CreateFormFile("filename", name)
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", s.URL()+"/api2/json/nodes/"+node+"/storage/"+storage+"/upload", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	token(req)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Data string }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %s", resp.Status)
	}
	return out.Data
}

func TestLifecycle(t *testing.T) {
	s := start(t, Options{Nodes: []string{"pve1", "pve2"}, TaskDuration: 50 * time.Millisecond})
	upid := upload(t, s, "pve2", "local", "alpine-3.22-default_20250617_amd64.tar.xz", []byte("not really a tarball"))
	if !strings.Contains(upid, ":imgcopy::") {
		t.Fatalf("upload upid %q", upid)
	}
	if ex := waitTask(t, s, "pve2", upid); ex != "OK" {
		t.Fatalf("upload task %q", ex)
	}
	tpl := "local:vztmpl/alpine-3.22-default_20250617_amd64.tar.xz"
	content := mustOK(t, api(t, s, "GET", "/nodes/pve2/storage/local/content", url.Values{"content": {"vztmpl"}}, token)).([]any)
	if len(content) != 1 || content[0].(map[string]any)["volid"] != tpl {
		t.Fatalf("content %v", content)
	}
	// Placement: the cluster view reports node memory.
	nodes := mustOK(t, api(t, s, "GET", "/cluster/resources", url.Values{"type": {"node"}}, token)).([]any)
	if len(nodes) != 2 || nodes[0].(map[string]any)["maxmem"] == nil || nodes[0].(map[string]any)["mem"] == nil {
		t.Fatalf("nodes %v", nodes)
	}

	f := createForm("200")
	f.Set("ostemplate", tpl)
	upid = mustOK(t, api(t, s, "POST", "/nodes/pve2/lxc", f, token)).(string)
	// While the create runs, the config holds only its lock (as PVE's
	// create_and_lock_config leaves it); the rest comes with the task's end.
	cfg := mustOK(t, api(t, s, "GET", "/nodes/pve2/lxc/200/config", nil, token)).(map[string]any)
	if cfg["lock"] != "create" || cfg["hostname"] != nil || cfg["description"] != nil {
		t.Fatalf("config while creating %v", cfg)
	}
	if a := api(t, s, "POST", "/nodes/pve2/lxc/200/status/start", url.Values{}, token); a.status != "500 CT is locked (create)" {
		t.Fatalf("start while locked: %q", a.status)
	}
	if ex := waitTask(t, s, "pve2", upid); ex != "OK" {
		t.Fatalf("create task %q", ex)
	}
	cfg = mustOK(t, api(t, s, "GET", "/nodes/pve2/lxc/200/config", nil, token)).(map[string]any)
	if cfg["lock"] != nil || cfg["memory"] != float64(1024) || cfg["hostname"] != "web" || cfg["ostype"] != "alpine" {
		t.Fatalf("config after the create %v", cfg)
	}
	rows := mustOK(t, api(t, s, "GET", "/cluster/resources", url.Values{"type": {"vm"}}, token)).([]any)
	r0 := rows[0].(map[string]any)
	if len(rows) != 1 || r0["id"] != "lxc/200" || r0["vmid"] != float64(200) || r0["node"] != "pve2" || r0["lock"] != nil {
		t.Fatalf("resources %v", rows)
	}
	// PUT config with digest and delete.
	cfg = mustOK(t, api(t, s, "GET", "/nodes/pve2/lxc/200/config", nil, token)).(map[string]any)
	mustOK(t, api(t, s, "PUT", "/nodes/pve2/lxc/200/config", url.Values{"cores": {"2"}, "delete": {"net0"}, "digest": {cfg["digest"].(string)}}, token))
	if a := api(t, s, "PUT", "/nodes/pve2/lxc/200/config", url.Values{"cores": {"3"}, "digest": {cfg["digest"].(string)}}, token); a.code != 500 || !strings.Contains(a.status, "detected modified configuration") {
		t.Fatalf("stale digest: %q", a.status)
	}
	cfg = mustOK(t, api(t, s, "GET", "/nodes/pve2/lxc/200/config", nil, token)).(map[string]any)
	if cfg["cores"] != float64(2) || cfg["net0"] != nil {
		t.Fatalf("config after PUT %v", cfg)
	}

	upid = mustOK(t, api(t, s, "POST", "/nodes/pve2/lxc/200/status/start", url.Values{}, token)).(string)
	if ex := waitTask(t, s, "pve2", upid); ex != "OK" {
		t.Fatalf("start %q", ex)
	}
	st := mustOK(t, api(t, s, "GET", "/nodes/pve2/lxc/200/status/current", nil, token)).(map[string]any)
	if st["status"] != "running" || st["name"] != "web" || st["maxmem"] != float64(1<<30) || st["pid"] != nil {
		t.Fatalf("status %v", st)
	}
	upid = mustOK(t, api(t, s, "POST", "/nodes/pve2/lxc/200/status/start", url.Values{}, token)).(string)
	if ex := waitTask(t, s, "pve2", upid); ex != "CT 200 already running" {
		t.Fatalf("second start %q", ex)
	}
	upid = mustOK(t, api(t, s, "DELETE", "/nodes/pve2/lxc/200", nil, token)).(string)
	if ex := waitTask(t, s, "pve2", upid); ex != "unable to destroy CT 200 - container is running" {
		t.Fatalf("destroy running %q", ex)
	}
	upid = mustOK(t, api(t, s, "POST", "/nodes/pve2/lxc/200/status/stop", url.Values{}, token)).(string)
	if ex := waitTask(t, s, "pve2", upid); ex != "OK" {
		t.Fatalf("stop %q", ex)
	}
	upid = mustOK(t, api(t, s, "DELETE", "/nodes/pve2/lxc/200", url.Values{"purge": {"1"}}, token)).(string)
	if !strings.Contains(upid, ":vzdestroy:200:root@pam!ci:") {
		t.Fatalf("destroy upid %q", upid)
	}
	if ex := waitTask(t, s, "pve2", upid); ex != "OK" {
		t.Fatalf("destroy %q", ex)
	}
	if a := api(t, s, "GET", "/nodes/pve2/lxc/200/status/current", nil, token); a.code != 500 || !strings.Contains(a.status, "does not exist") {
		t.Fatalf("after destroy: %q", a.status)
	}
	if l := mustOK(t, api(t, s, "GET", "/nodes/pve2/lxc", nil, token)).([]any); len(l) != 0 {
		t.Fatalf("list after destroy %v", l)
	}
	calls := s.Calls()
	if calls["POST /nodes/{node}/lxc"] != 1 || calls["DELETE /nodes/{node}/lxc/{vmid}"] != 2 || calls["POST /nodes/{node}/storage/{storage}/upload"] != 1 {
		t.Fatalf("calls %v", calls)
	}
}

func TestTaskFailureTextAndLog(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})
	s.FailNextTask("vzcreate", "unable to create CT 100 - no space left on device")
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "unable to create CT 100 - no space left on device" {
		t.Fatalf("exit %q", ex)
	}
	a := api(t, s, "GET", "/nodes/pve1/tasks/"+url.PathEscape(upid)+"/log", url.Values{"start": {"0"}, "limit": {"100"}}, token)
	lines := mustOK(t, a).([]any)
	last := lines[len(lines)-1].(map[string]any)
	if last["t"] != "TASK ERROR: unable to create CT 100 - no space left on device" || last["n"] != float64(len(lines)) {
		t.Fatalf("log %v", lines)
	}
	if a.body["total"] != float64(len(lines)) {
		t.Fatalf("total %v", a.body["total"])
	}
	// limit/start paging.
	page := mustOK(t, api(t, s, "GET", "/nodes/pve1/tasks/"+url.PathEscape(upid)+"/log", url.Values{"start": {"1"}, "limit": {"1"}}, token)).([]any)
	if len(page) != 1 || page[0].(map[string]any)["n"] != float64(2) {
		t.Fatalf("page %v", page)
	}
	// A failed create leaves no container; the vmid is free again.
	if id := mustOK(t, api(t, s, "GET", "/cluster/nextid", nil, token)); id != "100" {
		t.Fatalf("nextid after failed create %v", id)
	}
	// WARNINGS succeed.
	s.FailNextTask("vzcreate", "WARNINGS: 2")
	upid = mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "WARNINGS: 2" {
		t.Fatalf("warnings exit %q", ex)
	}
}

func rawGet(t *testing.T, s *Server, path string) (*http.Response, error) {
	req, _ := http.NewRequest("GET", s.URL()+"/api2/json"+path, nil)
	token(req)
	resp, err := s.Client().Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestFaults(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})

	s.SetLatency(150 * time.Millisecond)
	t0 := time.Now()
	if resp, err := rawGet(t, s, "/version"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("latency request: %v", err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	s.SetLatency(0)

	s.FailNext(2, 502, `/cluster/`)
	if resp, _ := rawGet(t, s, "/version"); resp.StatusCode != 200 {
		t.Fatalf("non-matching path failed: %s", resp.Status)
	}
	for i := 0; i < 2; i++ {
		if resp, err := rawGet(t, s, "/cluster/nextid"); err != nil || resp.StatusCode != 502 {
			t.Fatalf("fail-next %d: %v %v", i, resp, err)
		}
	}
	if resp, _ := rawGet(t, s, "/cluster/nextid"); resp.StatusCode != 200 {
		t.Fatalf("after fail-next: %s", resp.Status)
	}
	s.FailNext(1, 504, "")
	if resp, _ := rawGet(t, s, "/version"); resp.StatusCode != 504 {
		t.Fatalf("504: %s", resp.Status)
	}

	s.DropNext(1, `/version$`)
	if _, err := rawGet(t, s, "/version"); err == nil {
		t.Fatal("dropped request got an answer")
	}
	if resp, err := rawGet(t, s, "/version"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after drop: %v", err)
	}

	mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", createForm("100"), token))
	time.Sleep(50 * time.Millisecond)
	s.SetLockTimeout(true)
	a := api(t, s, "PUT", "/nodes/pve1/lxc/100/config", url.Values{"cores": {"2"}}, token)
	if a.status != "500 can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout" {
		t.Fatalf("lock timeout: %q", a.status)
	}
	s.SetLockTimeout(false)

	s.NoWorkerUPID(1)
	if a := api(t, s, "POST", "/nodes/pve1/lxc/100/status/start", url.Values{}, token); a.status != "500 got no worker upid" {
		t.Fatalf("no worker upid: %q", a.status)
	}
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc/100/status/start", url.Values{}, token)).(string)
	if ex := waitTask(t, s, "pve1", upid); ex != "OK" {
		t.Fatalf("retry start %q", ex)
	}

	s.SetAuthFailDelay(200 * time.Millisecond)
	t0 = time.Now()
	if a := api(t, s, "GET", "/version", nil, nil); a.code != 401 || time.Since(t0) < 200*time.Millisecond {
		t.Fatalf("auth delay: %q after %v", a.status, time.Since(t0))
	}

	if calls := s.Calls(); calls["GET /version"] < 6 || calls["GET /cluster/nextid"] != 3 {
		t.Fatalf("calls %v", calls)
	}
}

func TestUnknownPathAndNode(t *testing.T) {
	s := start(t, Options{})
	if a := api(t, s, "GET", "/nope", nil, token); a.code != 501 {
		t.Fatalf("unknown path: %q", a.status)
	}
	if a := api(t, s, "GET", "/nodes/pve9/lxc", nil, token); a.code != 500 || !strings.Contains(a.status, "hostname lookup 'pve9' failed") {
		t.Fatalf("unknown node: %q", a.status)
	}
}

// pve-http-server reads bodies by Content-Length: a chunked request gets
// 501, and counts as a rejected request.
func TestChunkedBodyRefused(t *testing.T) {
	s := New(Options{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("vmid=100")); pw.Close() }()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api2/json/nodes/pve1/lxc", pr)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "PVEAPIToken=root@pam!pvesim="+DefaultTokenSecret)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 || len(s.Rejected()) != 1 {
		t.Fatalf("chunked POST: %d, rejected %v", resp.StatusCode, s.Rejected())
	}
}

// DELETE of a template volume is an imgdel task, whether the volume id
// comes whole (its '/' in the path, as pvesh and the GUI send it) or
// escaped; a volume already gone only warns, as pve-storage's free_image.
func TestDeleteTemplateVolume(t *testing.T) {
	s := start(t, Options{Nodes: []string{"pve1"}, TaskDuration: time.Millisecond})
	for _, name := range []string{"a_amd64.tar.zst", "b_amd64.tar.zst"} {
		if ex := waitTask(t, s, "pve1", upload(t, s, "pve1", "local", name, []byte("x"))); ex != "OK" {
			t.Fatalf("upload %s: %s", name, ex)
		}
	}
	del := func(path string) string {
		t.Helper()
		upid := mustOK(t, api(t, s, "DELETE", path, nil, token)).(string)
		if !strings.Contains(upid, ":imgdel:local:") {
			t.Fatalf("upid %q", upid)
		}
		return waitTask(t, s, "pve1", upid)
	}
	if ex := del("/nodes/pve1/storage/local/content/local:vztmpl/a_amd64.tar.zst"); ex != "OK" {
		t.Fatalf("delete a: %s", ex)
	}
	if ex := del("/nodes/pve1/storage/local/content/" + url.PathEscape("local:vztmpl/b_amd64.tar.zst")); ex != "OK" {
		t.Fatalf("delete b (escaped): %s", ex)
	}
	if ex := del("/nodes/pve1/storage/local/content/vztmpl/b_amd64.tar.zst"); ex != "WARNINGS: 1" {
		t.Fatalf("delete of a missing volume: %s", ex)
	}
	if a := api(t, s, "DELETE", "/nodes/pve1/storage/local/content/other:vztmpl/x.tar", nil, token); a.code != 400 {
		t.Fatalf("storage mismatch: %q", a.status)
	}
	content := mustOK(t, api(t, s, "GET", "/nodes/pve1/storage/local/content", url.Values{"content": {"vztmpl"}}, token)).([]any)
	if len(content) != 0 {
		t.Fatalf("content left: %v", content)
	}
}
