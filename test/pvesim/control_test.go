package pvesim

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// control calls a /_sim/ endpoint and decodes its JSON answer into out.
func control(t *testing.T, s *Server, method, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+path, nil)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// /_sim/calls counts what the API served, per method and path template,
// refused and faulted requests included, and not itself; DELETE zeroes
// it. /_sim/guests lists the CTs as Guests does.
func TestControlCallsAndGuests(t *testing.T) {
	s := start(t, Options{Nodes: []string{"pve1", "pve2"}, Templates: []string{debTpl}})
	var c struct {
		Total int            `json:"total"`
		Calls map[string]int `json:"calls"`
	}
	if control(t, s, "GET", "/_sim/calls", &c); c.Total != 0 || len(c.Calls) != 0 {
		t.Fatalf("fresh: %+v", c)
	}
	mustOK(t, api(t, s, "GET", "/version", nil, token))
	mustOK(t, api(t, s, "GET", "/version", nil, token))
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve2/lxc", createForm("100"), token)).(string)
	if ex := waitTask(t, s, "pve2", upid); ex != "OK" {
		t.Fatalf("create %q", ex)
	}
	polls := s.Calls()["GET /nodes/{node}/tasks/{upid}/status"]
	if a := api(t, s, "GET", "/version", nil, nil); a.code != 401 {
		t.Fatalf("no auth: %d", a.code)
	}
	s.FailNext(1, 503, "")
	if a := api(t, s, "GET", "/nodes", nil, token); a.code != 503 {
		t.Fatalf("fault: %d", a.code)
	}
	control(t, s, "GET", "/_sim/calls", &c) // not counted: the next read sees the same
	control(t, s, "GET", "/_sim/calls", &c)
	want := map[string]int{"GET /version": 3, "POST /nodes/{node}/lxc": 1, "GET /nodes": 1,
		"GET /nodes/{node}/tasks/{upid}/status": polls}
	if c.Total != 5+polls || len(c.Calls) != len(want) {
		t.Fatalf("calls %+v, want %v", c, want)
	}
	for k, n := range want {
		if c.Calls[k] != n {
			t.Fatalf("%s: %d, want %d (%v)", k, c.Calls[k], n, c.Calls)
		}
	}
	var guests []string
	if control(t, s, "GET", "/_sim/guests", &guests); len(guests) != 1 || guests[0] != "100@pve2 stopped" {
		t.Fatalf("guests %q", guests)
	}
	if control(t, s, "DELETE", "/_sim/calls", nil); len(s.Calls()) != 0 {
		t.Fatalf("after DELETE: %v", s.Calls())
	}
	if code := control(t, s, "POST", "/_sim/calls", nil); code != http.StatusNotFound {
		t.Fatalf("POST /_sim/calls: %d", code)
	}
	if len(s.Calls()) != 0 {
		t.Fatalf("a control request was counted: %v", s.Calls())
	}
}
