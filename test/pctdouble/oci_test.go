package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// OCI archives as PVE takes them: proxmox-oci (proxmox-rs, 0.2.1) and
// restore_oci_archive (pve-container 6.1.10 src/PVE/LXC/Create.pm).

const (
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerConfig   = "application/vnd.docker.container.image.v1+json"
	dockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	ociLayerGzip   = "application/vnd.oci.image.layer.v1.tar+gzip"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ociLayout writes an OCI layout tar into the env's template cache as
// NAME and returns the diff id of its one layer: a busybox rootfs with an
// app user (1000, in group video 44).
func (e *env) ociLayout(name, manifestType, configType, layerType string, process map[string]any) string {
	e.t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		e.t.Skip("needs /bin/busybox")
	}
	add := func(name string, typ byte, data []byte, link string) {
		h := &tar.Header{Name: name, Typeflag: typ, Mode: 0o755, Size: int64(len(data)), Linkname: link}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			e.t.Fatal(err)
		}
		tw.Write(data)
	}
	for _, d := range []string{"bin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "app/"} {
		add(d, tar.TypeDir, nil, "")
	}
	add("bin/busybox", tar.TypeReg, bb, "")
	for _, a := range []string{"sh", "sleep", "echo"} {
		add("bin/"+a, tar.TypeSymlink, nil, "busybox")
	}
	add("etc/passwd", tar.TypeReg, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), "")
	add("etc/group", tar.TypeReg, []byte("root:x:0:\napp:x:1000:\nvideo:x:44:app\n"), "")
	tw.Close()
	diffID := digestOf(layer.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer.Bytes())
	zw.Close()
	config, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": process,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}}})
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": manifestType,
		"config": map[string]any{"mediaType": configType, "digest": digestOf(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": layerType, "digest": digestOf(gz.Bytes()), "size": gz.Len()}}})
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{
		map[string]any{"mediaType": manifestType, "digest": digestOf(manifest), "size": len(manifest)}}})
	var out bytes.Buffer
	ow := tar.NewWriter(&out)
	put := func(name string, b []byte) {
		ow.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		ow.Write(b)
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", index)
	for _, b := range [][]byte{manifest, config, gz.Bytes()} {
		put("blobs/sha256/"+strings.TrimPrefix(digestOf(b), "sha256:"), b)
	}
	ow.Close()
	e.write(filepath.Join("storage/local/template/cache", name), out.String())
	return diffID
}

// A Docker-format archive, or OCI with a Docker config or Docker layers,
// fails inside the create task with proxmox-oci's own words, and the CT
// is gone again. Before, the double took any media type.
func TestOCIArchiveMediaTypesAsProxmoxOCI(t *testing.T) {
	e := newEnv(t)
	proc := map[string]any{"Cmd": []string{"/bin/sleep", "1000"}}
	e.ociLayout("docker.tar", dockerManifest, dockerConfig, dockerLayer, proc)
	e.fails("unable to create CT 200 - Error while parsing OCI image: Unsupported CPU architecture\n",
		"pct", "create", "200", "local:vztmpl/docker.tar", "--rootfs", "local-lvm:1")
	e.ociLayout("dockercfg.tar", ociManifestType, dockerConfig, ociLayerGzip, proc)
	e.fails("unable to create CT 200 - Error while parsing OCI image: Wrong media type\n",
		"pct", "create", "200", "local:vztmpl/dockercfg.tar", "--rootfs", "local-lvm:1")
	diffID := e.ociLayout("dockerlayer.tar", ociManifestType, ociConfigType, dockerLayer, proc)
	e.fails("unable to create CT 200 - Error while extracting OCI image: Unknown layer digest "+diffID+" found in rootfs.diff_ids\n",
		"pct", "create", "200", "local:vztmpl/dockerlayer.tar", "--rootfs", "local-lvm:1")
	if _, err := os.Stat(filepath.Join(e.dir, "lxc", "200.conf")); !os.IsNotExist(err) {
		t.Fatalf("a failed create left the CT config: %v", err)
	}
	e.ociLayout("oci.tar", ociManifestType, ociConfigType, ociLayerGzip, proc)
	e.ok("pct", "create", "200", "local:vztmpl/oci.tar", "--rootfs", "local-lvm:1")
}

// The image config wins over the create options, as restore_oci_archive
// applies it after them: the entrypoint and env given to pct create are
// replaced, User/WorkingDir/StopSignal become lxc.init.* and
// lxc.signal.halt (SIGTERM without one), every netN gets host-managed=1.
// Before, the options given to pct create won.
func TestOCIArchiveConfigOverCreateOptions(t *testing.T) {
	e := newEnv(t)
	e.ociLayout("app.tar", ociManifestType, ociConfigType, ociLayerGzip, map[string]any{
		"Entrypoint": []string{"/bin/sh", "-c"}, "Cmd": []string{"echo it's; exec sleep 1000"},
		"Env": []string{"PATH=/bin", "FROM=image"}, "WorkingDir": "/tmp", "User": "app",
	})
	out := e.ok("pct", "create", "201", "local:vztmpl/app.tar", "--rootfs", "local-lvm:1",
		"--entrypoint", "/bin/echo given", "--env", "FROM=create", "--net0", "name=eth0,bridge=vmbr0")
	for _, want := range []string{"Detected OCI archive\n", "Auto-Enabling host-managed network for network device net0.\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	conf := e.read("lxc/201.conf")
	for _, want := range []string{`entrypoint: /bin/sh -c 'echo it'\''s; exec sleep 1000'`, "cmode: console", "host-managed=1",
		"FROM=image", "lxc.init.uid: 1000", "lxc.init.gid: 1000", "lxc.init.groups: 44", "lxc.init.cwd: /tmp", "lxc.signal.halt: SIGTERM"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "FROM=create") || strings.Contains(conf, "given") {
		t.Errorf("the create options survived the image config:\n%s", conf)
	}
	// An image whose command is /sbin/init leaves the entrypoint given.
	e.ociLayout("sys.tar", ociManifestType, ociConfigType, ociLayerGzip, map[string]any{"Cmd": []string{"/sbin/init"}, "StopSignal": "SIGRTMIN+3"})
	e.ok("pct", "create", "202", "local:vztmpl/sys.tar", "--rootfs", "local-lvm:1", "--entrypoint", "/bin/sleep 5")
	conf = e.read("lxc/202.conf")
	if !strings.Contains(conf, "entrypoint: /bin/sleep 5") || !strings.Contains(conf, "lxc.signal.halt: SIGRTMIN+3") {
		t.Errorf("system image:\n%s", conf)
	}
	// A control character restore_oci_archive checks for fails the task.
	e.ociLayout("ctrl.tar", ociManifestType, ociConfigType, ociLayerGzip, map[string]any{"Cmd": []string{"/bin/sleep"}, "Env": []string{"A=\x01"}})
	e.fails("unable to create CT 203 - OCI config array-value for 'Env' contains forbidden control characters!\n",
		"pct", "create", "203", "local:vztmpl/ctrl.tar", "--rootfs", "local-lvm:1")
}

// resolve_oci_user, case by case (Create.pm, pve-container 6.1.0+).
func TestResolveOCIUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\napp:x:1000:\nvideo:x:44:app\naudio:x:29:nginx,app\n"), 0o644)
	s := func(p *string) string {
		if p == nil {
			return "undef"
		}
		return *p
	}
	for _, c := range []struct{ user, want string }{
		{"app", "1000 1000 44,29"},
		{"1000", "1000 1000 44,29"},
		{"app:video", "1000 44 undef"},
		{"app:7", "1000 7 undef"},
		{"nobody", "undef undef "},   // a name not in passwd: groups still looked up
		{"4242", "4242 undef undef"}, // an id not in passwd: no name, no gid
	} {
		uid, gid, groups, err := resolveOCIUser(c.user, root)
		if got := s(uid) + " " + s(gid) + " " + s(groups); err != nil || got != c.want {
			t.Errorf("%q: %q %v, want %q", c.user, got, err, c.want)
		}
	}
	if _, _, _, err := resolveOCIUser("a:b:c", root); err == nil || err.Error() != "OCI config value for 'User' has an invalid format" {
		t.Errorf("a:b:c: %v", err)
	}
}

// cmd2string is String::ShellQuote's shell_quote per word.
func TestCmd2String(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"/bin/sh", "-c", "echo hi"}, `/bin/sh -c 'echo hi'`},
		{[]string{"a=b", "x,y:z@1%^+!"}, `'a=b' x,y:z@1%^+!`},
		{[]string{""}, `''`},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{"''"}, `"''"`},
		{[]string{"'a'"}, `\''a'\'`},
		{[]string{"$HOME"}, `'$HOME'`},
	} {
		if got := cmd2string(c.in); got != c.want {
			t.Errorf("cmd2string(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	if !reflect.DeepEqual(perlSplit("a:b::", ":"), []string{"a", "b"}) {
		t.Error("perlSplit keeps trailing empty fields")
	}
}

// TestOCIUserFromContainer610: the image's User reaches lxc.init.uid/gid
// only from pve-container 6.1.0 (debian/changelog 6.1.0 "oci create: honor
// user defined in OCI image config"); a 6.0.19 node runs the init as root.
func TestOCIUserFromContainer610(t *testing.T) {
	e := newEnv(t)
	e.ociLayout("app.tar", ociManifestType, ociConfigType, ociLayerGzip, map[string]any{"Cmd": []string{"/bin/sleep", "1"}, "User": "app"})
	e.write("pve-container", "6.0.19\n")
	e.ok("pct", "create", "201", "local:vztmpl/app.tar", "--rootfs", "local-lvm:1")
	if conf := e.read("lxc/201.conf"); strings.Contains(conf, "lxc.init.uid") {
		t.Errorf("6.0.19 applied the image's User:\n%s", conf)
	}
	e.write("pve-container", "6.1.0\n")
	e.ok("pct", "create", "202", "local:vztmpl/app.tar", "--rootfs", "local-lvm:1")
	if conf := e.read("lxc/202.conf"); !strings.Contains(conf, "lxc.init.uid: 1000") {
		t.Errorf("6.1.0 did not apply the image's User:\n%s", conf)
	}
}
