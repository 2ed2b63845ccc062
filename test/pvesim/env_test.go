package pvesim

import (
	"net/url"
	"strings"
	"testing"
)

// TestEnvAsPVEStoresIt: the API's env is one form value with real NULs
// between the variables (pve-container Config.pm, the env pattern); what
// GET config returns is what write_pct_config wrote and parse_pct_config
// read back: trailing blanks are gone; spaces, '=', quotes and empty
// values are kept. (The pattern refuses empty variables, so the /\0+/ of
// the write never merges anything that came through the API.)
func TestEnvAsPVEStoresIt(t *testing.T) {
	s := start(t, Options{Templates: []string{debTpl}})
	f := createForm("100")
	f.Set("env", "A=x y\x00B=k=v\x00C='q' \"d\"\x00E=\x00T=tail \t")
	upid := mustOK(t, api(t, s, "POST", "/nodes/pve1/lxc", f, token)).(string)
	if st := waitTask(t, s, "pve1", upid); st != "OK" {
		t.Fatalf("create: %s", st)
	}
	cfg := mustOK(t, api(t, s, "GET", "/nodes/pve1/lxc/100/config", nil, token)).(map[string]any)
	if want := "A=x y\x00B=k=v\x00C='q' \"d\"\x00E=\x00T=tail"; cfg["env"] != want {
		t.Fatalf("env = %q, want %q", cfg["env"], want)
	}
	// The two characters \0 are no separator here either: one variable.
	mustOK(t, api(t, s, "PUT", "/nodes/pve1/lxc/100/config", url.Values{"env": {`A=1\0B=2`}}, token))
	cfg = mustOK(t, api(t, s, "GET", "/nodes/pve1/lxc/100/config", nil, token)).(map[string]any)
	if cfg["env"] != `A=1\0B=2` {
		t.Fatalf("env = %q", cfg["env"])
	}
	// A value with a control character other than tab fails the pattern.
	a := api(t, s, "PUT", "/nodes/pve1/lxc/100/config", url.Values{"env": {"A=\x01"}}, token)
	if a.code != 400 || !strings.Contains(a.body["errors"].(map[string]any)["env"].(string), "value does not match the regex pattern") {
		t.Fatalf("control character: %d %v", a.code, a.body)
	}
}
