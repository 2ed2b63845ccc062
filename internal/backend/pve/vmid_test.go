package pve

import (
	"testing"
)

func TestParseNextID(t *testing.T) {
	for in, want := range map[string]int{`"100"`: 100, "101\n": 101, `"999999999"`: 999999999} {
		if got, err := parseNextID(in); err != nil || got != want {
			t.Errorf("%q: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{`"99"`, `""`, `"abc"`, `1000000000`, ``} {
		if _, err := parseNextID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseVMIDRange(t *testing.T) {
	r, err := parseVMIDRange("10000-19999")
	if err != nil || r.first != 10000 || r.last != 19999 {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := parseVMIDRange(""); r != nil || err != nil {
		t.Fatalf("empty: %+v %v", r, err)
	}
	for _, bad := range []string{"99-200", "200-100", "1-2-3", "x-y", "100", "100-1000000000"} {
		if _, err := parseVMIDRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestResourceTags(t *testing.T) {
	r := resource{Tags: "web;proxcage;prod"}
	if !r.hasTag("proxcage") || r.hasTag("prox") {
		t.Fatal("tag matching is wrong")
	}
}

func TestParseConfigAndDescription(t *testing.T) {
	out := "arch: amd64\ndescription: proxcage oci-id=web-1%0Asecond line\nhostname: web-1\nlxc.init.cmd: /bin/sh\n"
	cfg := parseConfig(out)
	if cfg["hostname"] != "web-1" || cfg["lxc.init.cmd"] != "/bin/sh" {
		t.Fatalf("%v", cfg)
	}
	d, err := urlUnescape(cfg["description"])
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := OCIIDFromDescription(d); !ok || id != "web-1" {
		t.Fatalf("description %q -> %q %v", d, id, ok)
	}
}

func TestRedact(t *testing.T) {
	got := redact([]string{"create", "100", "--env", "DB_PASSWORD=hunter2", "--hostname", "x"})
	for _, a := range got {
		if a == "DB_PASSWORD=hunter2" {
			t.Fatal("env value logged")
		}
	}
	if got[3] != "<redacted>" || got[5] != "x" {
		t.Fatalf("%v", got)
	}
}
