package pve

import (
	"context"
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/test/pvesim"
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

// A VMID is free only when no guest of the cluster holds it: VMs count,
// and so do guests on other nodes. The VMs here are on pve2 while the CTs
// land on pve1 (the only node with the bridge).
func TestAPIVMIDsHeldByVMsOnAnotherNode(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{
		Nodes:   []string{"pve1", "pve2"},
		Bridges: map[string][]string{"pve2": {"vmbr1"}},
		QemuVMs: []pvesim.QemuVM{{VMID: 100, Node: "pve2", Name: "db"}, {VMID: 101, Node: "pve2", Name: "mail"}},
	})
	ctx := context.Background()
	c := f.container("asked", func(s *specs.Spec) { s.Annotations = map[string]string{AnnotationVMID: "101"} })
	err := f.backend().Create(ctx, c, backend.CreateOpts{})
	if !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), `VMID 101 is taken by VM "mail" on node pve2`) {
		t.Fatalf("create with the VMID of a VM on another node: %v", err)
	}
	if cts := simCTs(t, f); len(cts) != 0 {
		t.Fatalf("CTs after the refused create: %v", cts)
	}
	picked := f.container("picked", nil)
	if err := f.backend().Create(ctx, picked, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	if p := privateOf(t, picked); p.VMID == 100 || p.VMID == 101 || p.Node != "pve1" {
		t.Fatalf("picked VMID %d on %s, want neither VM's VMID, on pve1", p.VMID, p.Node)
	}
}
