package pve

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// A dpkg status as a PVE 9 node has it: other packages around, one
// removed package whose config files stay (not installed).
const dpkgStatus = `Package: libc6
Status: install ok installed
Version: 2.41-12

Package: pve-container
Status: install ok installed
Priority: optional
Version: 6.1.10
Description: Proxmox VE Container management tool
 a continuation line: Version: 1.0

Package: pve-manager
Status: install ok installed
Version: 9.1.1
`

func TestVersionsFromDpkgStatus(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "status")
	os.WriteFile(p, []byte(dpkgStatus), 0o644)
	m, c, ok, err := nodeFiles{dpkgStatus: p}.versions()
	if err != nil || !ok || m != (Version{9, 1, 1}) || c != (Version{6, 1, 10}) {
		t.Fatalf("versions: %v %v %v %v", m, c, ok, err)
	}
	// pve-container removed, its config files kept: not installed, so
	// pveversion must answer (ok false), never a guess.
	os.WriteFile(p, []byte(strings.Replace(dpkgStatus, "Package: pve-container\nStatus: install ok installed", "Package: pve-container\nStatus: deinstall ok config-files", 1)), 0o644)
	if _, _, ok, err := (nodeFiles{dpkgStatus: p}).versions(); ok || err != nil {
		t.Fatalf("a removed pve-container counted: %v %v", ok, err)
	}
	// Not a PVE node (this host's status lists no pve-manager), no file.
	os.WriteFile(p, []byte("Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n"), 0o644)
	if _, _, ok, err := (nodeFiles{dpkgStatus: p}).versions(); ok || err != nil {
		t.Fatalf("no pve-manager: %v %v", ok, err)
	}
	if _, _, ok, err := (nodeFiles{dpkgStatus: filepath.Join(dir, "none")}).versions(); ok || err != nil {
		t.Fatalf("no file: %v %v", ok, err)
	}
}

const storageCfg = `dir: local
	path /var/lib/vz
	content iso,vztmpl,backup

lvmthin: local-lvm
	thinpool data
	vgname pve
	content rootdir,images

nfs: shared
	export /export/pve
	path /mnt/pve/shared
	server 10.0.0.2
	content vztmpl,backup
	content-dirs vztmpl=tpl/ct,backup=dumps

dir: nopath
	content vztmpl
`

func TestTemplateDirFromStorageCfg(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "storage.cfg"), []byte(storageCfg), 0o640)
	f := nodeFiles{pmxcfs: dir}
	for id, want := range map[string]string{
		"local":     "/var/lib/vz/template/cache", // Plugin.pm get_subdir's default
		"shared":    "/mnt/pve/shared/tpl/ct",     // content-dirs' vztmpl
		"local-lvm": "",                           // LVM holds no files: pvesm answers
		"nopath":    "",                           // no path: pvesm says what is wrong
		"missing":   "",                           // not defined: pvesm says so
	} {
		got, ok, err := f.templateDir(id)
		if err != nil || ok != (want != "") || got != want {
			t.Errorf("%s: %q %v %v, want %q", id, got, ok, err, want)
		}
	}
	if _, ok, err := (nodeFiles{pmxcfs: filepath.Join(dir, "none")}).templateDir("local"); ok || err != nil {
		t.Fatalf("no storage.cfg: %v %v", ok, err)
	}
}

func TestNextIDFromGuests(t *testing.T) {
	dir := t.TempDir()
	f := nodeFiles{pmxcfs: dir}
	lo, hi, err := f.nextIDRange()
	if err != nil || lo != 100 || hi != 1000000 {
		t.Fatalf("defaults: %d %d %v", lo, hi, err)
	}
	os.WriteFile(filepath.Join(dir, "datacenter.cfg"), []byte("keyboard: en-us\nnext-id: lower=1000,upper=1003\n"), 0o640)
	if lo, hi, err = f.nextIDRange(); err != nil || lo != 1000 || hi != 1003 {
		t.Fatalf("next-id: %d %d %v", lo, hi, err)
	}
	guests := []resource{{VMID: json.Number("1000"), Type: "qemu"}, {VMID: json.Number("1002"), Type: "lxc"}}
	if n, err := lowestFreeVMID(guests, lo, hi, nil); err != nil || n != 1001 {
		t.Fatalf("lowest free: %d %v", n, err)
	}
	// upper is exclusive, as nextid's loop: 1003 is never offered.
	_, err = lowestFreeVMID(guests, lo, hi, map[int]bool{1001: true})
	if errdefs.Category(err) != errdefs.ErrUnavailable || !strings.Contains(err.Error(), "unable to get any free VMID in range [1000, 1003]") {
		t.Fatalf("exhausted: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "datacenter.cfg"), []byte("next-id: lower=x\n"), 0o640)
	if _, _, err := f.nextIDRange(); err == nil {
		t.Fatal("a bad next-id accepted")
	}
}

// TestStatusOnTheNode: the pct transport answers pct status from the CT's
// config file and LXC's state, with pct's words for a CT that is not here,
// and asks pct when there is no config directory at all.
func TestStatusOnTheNode(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nodes", "pve1", "lxc")
	os.MkdirAll(conf, 0o755)
	os.Symlink(conf, filepath.Join(dir, "lxc"))
	os.WriteFile(filepath.Join(conf, "101.conf"), []byte("arch: amd64\n"), 0o640)
	os.WriteFile(filepath.Join(conf, "102.conf"), []byte("arch: amd64\n"), 0o640)
	os.WriteFile(filepath.Join(conf, "103.conf"), []byte("arch: amd64\n"), 0o640)
	info := filepath.Join(dir, "lxc-info")
	os.WriteFile(info, []byte(`#!/bin/sh
case "$2" in
101) echo RUNNING ;;
102) echo STOPPED ;;
103) echo "103 doesn't exist" >&2; exit 1 ;;
esac
`), 0o755)
	pct := filepath.Join(dir, "pct")
	os.WriteFile(pct, []byte("#!/bin/sh\necho \"$@\" >>"+filepath.Join(dir, "pct.calls")+"\necho 'status: running'\n"), 0o755)
	tl := tools{pct: pct, lxcInfo: info, timeout: 10 * time.Second, log: slog.New(slog.DiscardHandler)}
	tr := &pctTransport{tools: tl, host: &nodeHost{tools: tl}, files: ctFiles{configDir: filepath.Join(dir, "lxc")}}
	ctx := context.Background()
	for vmid, want := range map[int]string{101: "running", 102: "stopped", 103: "stopped"} {
		if st, err := tr.status(ctx, "", vmid); err != nil || st != want {
			t.Errorf("CT %d: %q %v, want %q", vmid, st, err, want)
		}
	}
	_, err := tr.status(ctx, "", 104)
	var te *toolError
	if !errors.As(err, &te) || errdefs.Category(err) != errdefs.ErrNotFound ||
		!strings.Contains(te.Stderr, "Configuration file 'nodes/pve1/lxc/104.conf' does not exist") {
		t.Fatalf("missing CT: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pct.calls")); err == nil {
		t.Fatal("pct ran although the node's files answered")
	}
	// No config directory: pmxcfs is not mounted, pct says why.
	tr.files.configDir = filepath.Join(dir, "absent")
	if st, err := tr.status(ctx, "", 101); err != nil || st != "running" {
		t.Fatalf("fallback: %q %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pct.calls")); string(b) != "status 101\n" {
		t.Fatalf("pct calls: %q", b)
	}
}

// TestCTConfigFromItsFile: the current section as pct config prints it,
// description decoded, env joined, pending taken in, snapshots left out.
func TestCTConfigFromItsFile(t *testing.T) {
	raw := "#proxcage%3A web\n#second line\narch: amd64\nhostname: web\nlock: create\nmemory: 512\nnet0: name=eth0,bridge=vmbr0\nswap: 512\n" +
		"lxc.environment.runtime: A=1\nlxc.environment.runtime: B=two words\nlxc.mount.entry: /x y none bind 0 0\n\n" +
		"[pve:pending]\nmemory: 1024\ndelete: swap\n\n[before]\n#old description\nhostname: old\nsnaptime: 1\n"
	cfg := parseCTConfigFile(raw)
	want := map[string]string{"description": "proxcage: web\nsecond line\n", "arch": "amd64", "hostname": "web", "lock": "create",
		"memory": "1024", "net0": "name=eth0,bridge=vmbr0", "env": "A=1\x00B=two words"}
	if len(cfg) != len(want) {
		t.Fatalf("keys: %q", cfg)
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s: %q, want %q", k, cfg[k], v)
		}
	}
}
