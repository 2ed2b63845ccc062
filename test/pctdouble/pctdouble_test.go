package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxcage/proxcage/test/pveschema"
	"github.com/proxcage/proxcage/test/subids"
)

// The end-to-end tests build the double with install.sh, make a tiny busybox
// template and drive pct/pvesh/pvesm/lxc-info/lxc-attach as a runtime would.
// They need root, LXC (lxc-start) and /bin/busybox; otherwise they skip.

var (
	binDir     string // install.sh output (pctdouble + symlinks)
	tplSystem  string // busybox rootfs with /sbin/init, .tar.zst
	tplNoInit  string // the same without /sbin/init
	skipReason string
)

const tplName = "busybox-1.35_1.0-1_amd64.tar.zst"

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "pctdouble-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	skipReason = setup(tmp)
	release := func() {}
	if skipReason == "" {
		// Unprivileged CTs need root's subordinate ids, as on a PVE node.
		if release, err = subids.Acquire("pctdouble"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	release()
	os.RemoveAll(tmp)
	os.Exit(code)
}

func setup(tmp string) string {
	switch {
	case os.Geteuid() != 0:
		return "needs root (the double runs containers with LXC)"
	case !fileExists("/usr/bin/lxc-start"):
		return "needs lxc-start (apt-get install lxc)"
	case !fileExists("/bin/busybox"):
		return "needs /bin/busybox (apt-get install busybox-static)"
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		return "needs zstd (tar --zstd)"
	}
	// go test puts its own GOROOT/bin first in PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "needs the go command in PATH"
	}
	binDir = filepath.Join(tmp, "bin")
	cmd := exec.Command("./install.sh", binDir)
	cmd.Env = append(os.Environ(), "GO="+goBin)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "install.sh failed: %v\n%s", err, out)
		os.Exit(1)
	}
	for _, withInit := range []bool{true, false} {
		p, err := makeTemplate(tmp, withInit)
		if err != nil {
			fmt.Fprintf(os.Stderr, "making the template: %v\n", err)
			os.Exit(1)
		}
		if withInit {
			tplSystem = p
		} else {
			tplNoInit = p
		}
	}
	return ""
}

// makeTemplate builds a busybox rootfs: /bin/busybox plus one symlink per
// applet, /sbin/init a script that sleeps (a "system container" without a
// real init), /etc/os-release saying debian, and a marker file.
func makeTemplate(tmp string, withInit bool) (string, error) {
	name := "rootfs-noinit"
	if withInit {
		name = "rootfs"
	}
	root := filepath.Join(tmp, name)
	for _, d := range []string{"bin", "sbin", "etc", "tmp", "proc", "sys", "dev", "root", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return "", err
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			return "", err
		}
	}
	if withInit {
		if err := os.WriteFile(filepath.Join(root, "sbin/init"), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
			return "", err
		}
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\nVERSION_ID=12\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/pctdouble-marker"), []byte("marker\n"), 0o644)
	tpl := filepath.Join(tmp, name+".tar.zst")
	if out, err := exec.Command("tar", "--zstd", "-cf", tpl, "--numeric-owner", "-C", root, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar: %v: %s", err, out)
	}
	return tpl, nil
}

type env struct {
	t   *testing.T
	dir string
}

// newEnv gives the test its own $PCTDOUBLE_DIR with the template installed
// as local:vztmpl/<tplName> (and the no-init one as noinit.tar.zst), and
// stops every CT it started when the test ends.
func newEnv(t *testing.T) *env {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	searchable(t, dir) // unprivileged CTs: the mapped root walks to its rootfs
	cache := filepath.Join(dir, "storage/local/template/cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{tplSystem: tplName, tplNoInit: "noinit.tar.zst"} {
		if err := os.Link(src, filepath.Join(cache, dst)); err != nil {
			b, _ := os.ReadFile(src)
			if err := os.WriteFile(filepath.Join(cache, dst), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	e := &env{t: t, dir: dir}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(dir, "lxcpath"))
		for _, ent := range ents {
			exec.Command("/usr/bin/lxc-stop", "-P", filepath.Join(dir, "lxcpath"), "-n", ent.Name(), "-k").Run()
		}
	})
	return e
}

const tpl = "local:vztmpl/" + tplName

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) runCtx(ctx context.Context, tool string, args ...string) result {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, tool), args...)
	cmd.Env = append(os.Environ(), "PCTDOUBLE_DIR="+e.dir, "PATH="+binDir+":"+os.Getenv("PATH"))
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%s %v: %v", tool, args, err)
	}
	return result{so.String(), se.String(), code}
}

func (e *env) run(tool string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.runCtx(ctx, tool, args...)
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(tool string, args ...string) string {
	e.t.Helper()
	r := e.run(tool, args...)
	if r.code != 0 {
		e.t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", tool, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail with exit 255 and exactly wantErr on
// stderr.
func (e *env) fails(wantErr string, tool string, args ...string) {
	e.t.Helper()
	r := e.run(tool, args...)
	if r.code != 255 || r.stderr != wantErr {
		e.t.Fatalf("%s %s: want exit 255 and stderr %q, got exit %d stderr %q", tool, strings.Join(args, " "), wantErr, r.code, r.stderr)
	}
}

func (e *env) write(name, content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) create(vmid int, args ...string) {
	e.t.Helper()
	e.ok("pct", append([]string{"create", strconv.Itoa(vmid), tpl, "--rootfs", "local-lvm:1"}, args...)...)
}

func listRow(vmid, status, lock, name string) string {
	return fmt.Sprintf("%-10s %-10s %-12s %-20s\n", vmid, status, lock, name)
}

var listHeader = "VMID       Status     Lock         Name                \n"

func TestCreateConfigListStatus(t *testing.T) {
	e := newEnv(t)
	if out := e.ok("pct", "list"); out != "" {
		t.Fatalf("pct list without CTs must print nothing, got %q", out)
	}
	out := e.ok("pct", "create", "100", tpl, "--hostname", "web1", "--memory", "256", "--swap", "128",
		"--cores", "2", "--rootfs", "local-lvm:8", "--net0", "bridge=vmbr0,name=eth0,ip=dhcp,hwaddr=BC:24:11:00:00:01",
		"--features", "nesting=1", "--tags", "a;b", "--description", "first: line\nsecond", "--onboot", "yes")
	for _, want := range []string{"extracting archive '" + e.dir + "/storage/local/template/cache/" + tplName + "'\n", "Total bytes read: "} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	wantConf := `#first%3A line
#second
arch: amd64
cores: 2
features: nesting=1
hostname: web1
memory: 256
net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth
onboot: 1
ostype: debian
rootfs: local-lvm:vm-100-disk-0,size=8G
swap: 128
tags: a;b
unprivileged: 1
`
	if got := e.read("lxc/100.conf"); got != wantConf {
		t.Fatalf("lxc/100.conf:\n%s\nwant:\n%s", got, wantConf)
	}
	wantConfig := strings.Replace(strings.Replace(wantConf, "#first%3A line\n#second\n", "", 1),
		"cores: 2\n", "cores: 2\ndescription: first%3A line%0Asecond\n", 1)
	if got := e.ok("pct", "config", "100"); got != wantConfig {
		t.Fatalf("pct config:\n%s\nwant:\n%s", got, wantConfig)
	}
	if !fileExists(filepath.Join(e.dir, "volumes/local-lvm/vm-100-disk-0/bin/busybox")) {
		t.Fatal("template not extracted into the rootfs volume volumes/local-lvm/vm-100-disk-0")
	}
	e.create(101) // no hostname: the name column shows CT101
	want := listHeader + listRow("100", "stopped", "", "web1") + listRow("101", "stopped", "", "CT101")
	if got := e.ok("pct", "list"); got != want {
		t.Fatalf("pct list:\n%q\nwant:\n%q", got, want)
	}
	if got := e.ok("pct", "status", "100"); got != "status: stopped\n" {
		t.Fatalf("pct status: %q", got)
	}
	e.fails("Configuration file 'nodes/pve/lxc/999.conf' does not exist\n", "pct", "status", "999")
	e.fails("CT 100 already exists on node 'pve'\n", "pct", "create", "100", tpl, "--rootfs", "local-lvm:1")
	e.write("node", "node7\n")
	e.fails("CT 100 already exists on node 'node7'\n", "pct", "create", "100", tpl, "--rootfs", "local-lvm:1")
	e.fails("Configuration file 'nodes/node7/lxc/999.conf' does not exist\n", "pct", "config", "999")
}

func TestStartExecStopDestroy(t *testing.T) {
	e := newEnv(t)
	e.create(120, "--hostname", "ct120", "--memory", "64")
	e.ok("pct", "start", "120")
	if got := e.ok("pct", "status", "120"); got != "status: running\n" {
		t.Fatalf("status after start: %q", got)
	}
	if got := e.ok("pct", "list"); got != listHeader+listRow("120", "running", "", "ct120") {
		t.Fatalf("pct list: %q", got)
	}
	verbose := e.ok("pct", "status", "120", "--verbose")
	for _, want := range []string{"status: running\n", "name: ct120\n", "maxmem: 67108864\n", "vmid: 120\n", "pid: "} {
		if !strings.Contains(verbose, want) {
			t.Errorf("status --verbose lacks %q:\n%s", want, verbose)
		}
	}
	// lxc-info as a runtime calls it on a PVE node: a live host PID whose
	// root is the CT's rootfs.
	pid, err := strconv.Atoi(strings.TrimSpace(e.ok("lxc-info", "-n", "120", "-p", "-H")))
	if err != nil || pid <= 1 {
		t.Fatalf("lxc-info -p -H: %v %d", err, pid)
	}
	in, err1 := os.Stat(fmt.Sprintf("/proc/%d/root/etc/pctdouble-marker", pid))
	out, err2 := os.Stat(filepath.Join(e.dir, "volumes/local-lvm/vm-120-disk-0/etc/pctdouble-marker"))
	if err1 != nil || err2 != nil || !os.SameFile(in, out) {
		t.Fatalf("/proc/%d/root is not the CT rootfs: %v %v", pid, err1, err2)
	}
	if got := e.ok("lxc-info", "-n", "120", "-s", "-H"); got != "RUNNING\n" {
		t.Fatalf("lxc-info -s -H: %q", got)
	}
	if got := e.ok("pct", "exec", "120", "--", "hostname"); got != "ct120\n" {
		t.Fatalf("hostname in CT: %q", got)
	}
	// ostype debian: /etc/hostname is written on start, as PVE's setup does.
	if got := e.ok("pct", "exec", "120", "--", "cat", "/etc/hostname"); got != "ct120\n" {
		t.Fatalf("/etc/hostname in CT: %q", got)
	}
	if got := e.ok("lxc-attach", "-n", "120", "--", "cat", "/etc/pctdouble-marker"); got != "marker\n" {
		t.Fatalf("lxc-attach: %q", got)
	}
	if r := e.run("pct", "exec", "120", "--", "sh", "-c", "echo out; echo err >&2; exit 3"); r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("pct exec exit status/stdio: %+v", r)
	}
	e.fails("CT 120 already running\n", "pct", "start", "120")
	e.fails("unable to destroy CT 120 - container is running\n", "pct", "destroy", "120")
	e.ok("pct", "stop", "120")
	if got := e.ok("pct", "status", "120"); got != "status: stopped\n" {
		t.Fatalf("status after stop: %q", got)
	}
	e.fails("CT 120 not running\n", "pct", "stop", "120")
	e.fails("CT 120 not running\n", "pct", "exec", "120", "--", "true")
	// start again, then destroy --force stops it first
	e.ok("pct", "start", "120")
	if got := e.ok("pct", "destroy", "120", "--force", "1", "--purge", "1"); got != "purging CT 120 from related configurations..\n  Logical volume \"vm-120-disk-0\" successfully removed.\n" {
		t.Fatalf("destroy output: %q", got)
	}
	if got := e.ok("pct", "list"); got != "" {
		t.Fatalf("pct list after destroy: %q", got)
	}
	for _, p := range []string{"lxc/120.conf", "volumes/local-lvm/vm-120-disk-0", "lxcpath/120"} {
		if fileExists(filepath.Join(e.dir, p)) {
			t.Errorf("%s left behind", p)
		}
	}
	e.fails("Configuration file 'nodes/pve/lxc/120.conf' does not exist\n", "pct", "destroy", "120")
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	e.create(125)
	e.ok("pct", "start", "125")
	// sleep as PID 1 ignores SIGPWR: without forceStop the shutdown times out.
	e.fails("command 'lxc-stop -n 125 --nokill --timeout 1' failed: exit code 1\n", "pct", "shutdown", "125", "--timeout", "1")
	e.ok("pct", "shutdown", "125", "--timeout", "1", "--forceStop", "1")
	if got := e.ok("pct", "status", "125"); got != "status: stopped\n" {
		t.Fatalf("status after shutdown: %q", got)
	}
	e.fails("CT 125 not running\n", "pct", "shutdown", "125")
}

func TestNextIDAndResources(t *testing.T) {
	e := newEnv(t)
	nextid := func(args ...string) string {
		return e.ok("pvesh", append([]string{"get", "/cluster/nextid", "--output-format", "json"}, args...)...)
	}
	if got := nextid(); got != "\"100\"\n" {
		t.Fatalf("nextid on an empty node: %q", got)
	}
	e.create(100)
	e.create(101)
	e.create(103)
	e.write("vms.json", `[{"vmid": 102, "name": "vm102", "node": "pve2"}, {"vmid": 104, "name": "vm104"}]`)
	if got := nextid(); got != "\"105\"\n" {
		t.Fatalf("nextid with CTs 100,101,103 and VMs 102,104: %q", got)
	}
	e.ok("pct", "destroy", "101")
	if got := nextid(); got != "\"101\"\n" {
		t.Fatalf("nextid after destroying 101: %q", got)
	}
	if got := nextid(); got != "\"101\"\n" {
		t.Fatalf("nextid reserves nothing: %q", got)
	}
	if got := nextid("--vmid", "150"); got != "\"150\"\n" {
		t.Fatalf("nextid --vmid 150: %q", got)
	}
	e.fails("400 Parameter verification failed.\nvmid: VM 100 already exists\n", "pvesh", "get", "/cluster/nextid", "--vmid", "100", "--output-format", "json")
	e.fails("400 Parameter verification failed.\nvmid: VM 102 already exists\n", "pvesh", "get", "/cluster/nextid", "--vmid", "102", "--output-format", "json")
	if got := e.ok("pvesh", "get", "/cluster/nextid"); got != "101\n" {
		t.Fatalf("nextid, text output: %q", got)
	}
	e.fails("VM 102 already exists on node 'pve2'\n", "pct", "create", "102", tpl, "--rootfs", "local-lvm:1")
	e.fails("VM 104 already exists on node 'pve'\n", "pct", "create", "104", tpl, "--rootfs", "local-lvm:1")

	e.ok("pct", "set", "103", "--hostname", "h103", "--tags", "x", "--lock", "backup")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(e.ok("pvesh", "get", "/cluster/resources", "--type", "vm", "--output-format", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%v %v %v %v %v %v %v", r["id"], r["type"], r["vmid"], r["node"], r["status"], r["name"], r["lock"]))
		if _, ok := r["vmid"].(float64); !ok {
			t.Errorf("vmid must be a JSON number: %#v", r["vmid"])
		}
	}
	want := []string{
		"lxc/100 lxc 100 pve stopped CT100 <nil>",
		"qemu/102 qemu 102 pve2 stopped vm102 <nil>",
		"lxc/103 lxc 103 pve stopped h103 backup",
		"qemu/104 qemu 104 pve stopped vm104 <nil>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("/cluster/resources:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rows[2]["tags"] != "x" || rows[2]["maxmem"].(float64) != 512*1024*1024 {
		t.Errorf("row for 103: %v", rows[2])
	}
}

func TestParallelCreate(t *testing.T) {
	e := newEnv(t)
	const n = 8
	var wg sync.WaitGroup
	res := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = e.run("pct", "create", "130", tpl, "--rootfs", "local-lvm:1")
		}(i)
	}
	wg.Wait()
	okCount := 0
	for _, r := range res {
		switch {
		case r.code == 0:
			okCount++
		case r.code != 255 || r.stderr != "CT 130 already exists on node 'pve'\n":
			t.Errorf("losing create: exit %d stderr %q", r.code, r.stderr)
		}
	}
	if okCount != 1 {
		t.Fatalf("%d of %d parallel creates of the same VMID succeeded, want 1", okCount, n)
	}
	// Different VMIDs in parallel all succeed.
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = e.run("pct", "create", strconv.Itoa(140+i), tpl, "--rootfs", "local-lvm:1", "--hostname", fmt.Sprintf("p%d", i))
		}(i)
	}
	wg.Wait()
	want := listHeader + listRow("130", "stopped", "", "CT130")
	for i := 0; i < n; i++ {
		if res[i].code != 0 {
			t.Errorf("create %d: %+v", 140+i, res[i])
		}
		want += listRow(strconv.Itoa(140+i), "stopped", "", fmt.Sprintf("p%d", i))
	}
	if got := e.ok("pct", "list"); got != want {
		t.Fatalf("pct list:\n%s\nwant:\n%s", got, want)
	}
}

func TestParameterValidation(t *testing.T) {
	e := newEnv(t)
	usage := "\npct create <vmid> <ostemplate> [OPTIONS]\n"
	pve := "400 Parameter verification failed.\n"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"99", tpl}, pve + "vmid: invalid format - value does not look like a valid VM ID\n" + usage},
		{[]string{"1000000000", tpl}, pve + "vmid: invalid format - value does not look like a valid VM ID\n" + usage},
		{[]string{"100", tpl, "--memory", "8"}, pve + "memory: value must have a minimum value of 16\n" + usage},
		{[]string{"100", tpl, "--bogus", "1"}, pve + "bogus: property is not defined in schema and the schema does not allow additional properties\n" + usage},
		{[]string{"100", tpl, "--net32", "name=eth0"}, pve + "net32: property is not defined in schema and the schema does not allow additional properties\n" + usage},
		{[]string{"100", tpl, "--ostype", "windows"}, pve + "ostype: value 'windows' does not have a value in the enumeration 'debian, devuan, ubuntu, centos, fedora, opensuse, archlinux, alpine, gentoo, nixos, unmanaged'\n" + usage},
		{[]string{"100", tpl, "--cores", "two", "--cpulimit", "9000"}, pve + "cores: type check ('integer') failed - got 'two'\ncpulimit: value must have a maximum value of 8192\n" + usage},
		{[]string{"100", tpl, "--hostname", "under_score"}, pve + "hostname: invalid format - value does not look like a valid DNS name\n" + usage},
		{[]string{"100", tpl, "--unprivileged", "maybe"}, pve + "unprivileged: type check ('boolean') failed - got 'maybe'\n" + usage},
		{[]string{"100", tpl, "--net0", "name=eth0,bridge=br$"}, pve + "net0: invalid format - format error\nnet0.bridge: value does not match the regex pattern\n" + usage},
		{[]string{"100", tpl, "--net0", "bridge=vmbr0,speed=10"}, pve + "net0: invalid format - format error\nnet0.name: property is missing and it is not optional\nnet0.speed: property is not defined in schema and the schema does not allow additional properties\n" + usage},
		{[]string{"100", tpl, "--mp0", "/srv,mp=/srv,ro=perhaps"}, pve + "mp0: invalid format - format error\nmp0.ro: type check ('boolean') failed - got 'perhaps'\n" + usage},
		{[]string{"100", tpl, "--env", "A=1\x01"}, pve + "env: value does not match the regex pattern\n" + usage},
		{[]string{"100"}, "400 not enough arguments\npct create <vmid> <ostemplate> [OPTIONS]\n"},
		{[]string{"100", tpl, "--rootfs", "nope:8"}, "storage 'nope' does not exist\n"},
		// API2/LXC.pm create_vm: a 400 on "storage" (issue 14, point 8).
		{[]string{"100", tpl, "--rootfs", "local:8"}, "400 Parameter verification failed.\nstorage: storage 'local' does not support container directories\n\n" + pctUsage["create"] + "\n"},
		{[]string{"100", tpl}, "400 Parameter verification failed.\nstorage: storage 'local' does not support container directories\n\n" + pctUsage["create"] + "\n"}, // default rootfs local:4, as on a stock PVE
		// Only with mtu= (update_pct_config); without, start fails (TestMissingBridgeFailsAtStart).
		{[]string{"100", tpl, "--rootfs", "local-lvm:1", "--net0", "name=eth0,bridge=vmbr9,mtu=1400"}, "bridge 'vmbr9' does not exist\n"},
		{[]string{"100", tpl, "--rootfs", "local-lvm:1", "--net0", "name=eth0,bridge=vmbr0,mtu=9000"}, "net0: MTU size '9000' is bigger than bridge MTU '1500'\n"},
		{[]string{"100", tpl, "--rootfs", "local-lvm:1", "--mp0", "/does/not/exist,mp=/data"}, "mounting container failed\nunable to create CT 100 - directory '/does/not/exist' does not exist\n"},
		{[]string{"100", "local:vztmpl/missing.tar.zst", "--rootfs", "local-lvm:1"}, "unable to create CT 100 - volume 'local:vztmpl/missing.tar.zst' does not exist\n"},
		{[]string{"100", "local:vztmpl/noinit.tar.zst", "--rootfs", "local-lvm:1"}, "unable to create CT 100 - no /sbin/init found in template 'local:vztmpl/noinit.tar.zst' (set --entrypoint for an application container)\n"},
	}
	for _, c := range cases {
		e.fails(c.want, "pct", append([]string{"create"}, c.args...)...)
	}
	// Nothing may be left behind by failed creates.
	if ids := ctIDsIn(e.dir); len(ids) != 0 || fileExists(filepath.Join(e.dir, "volumes/local-lvm/vm-100-disk-0")) {
		t.Fatalf("failed creates left state: %v", ids)
	}
	// Other commands validate too.
	e.fails(pve+"vmid: type check ('integer') failed - got 'abc'\n\npct start <vmid> [OPTIONS]\n", "pct", "start", "abc")
	e.fails(pve+"vmid: invalid format - value does not look like a valid VM ID\n\npct start <vmid> [OPTIONS]\n", "pct", "start", "42")
	e.fails(pve+"foo: property is not defined in schema and the schema does not allow additional properties\n\npct stop <vmid> [OPTIONS]\n", "pct", "stop", "100", "--foo", "1")
	e.fails(pve+"timeout: value must have a minimum value of 0\n\npct shutdown <vmid> [OPTIONS]\n", "pct", "shutdown", "100", "--timeout", "-1")
	e.fails(pve+"memory: value must have a minimum value of 16\n\npct set <vmid> [OPTIONS]\n", "pct", "set", "100", "--memory", "1")
	e.fails(pve+"type: value 'vms' does not have a value in the enumeration 'vm, storage, node, sdn'\n", "pvesh", "get", "/cluster/resources", "--type", "vms")
	e.fails(pve+"vmid: invalid format - value does not look like a valid VM ID\n", "pvesh", "get", "/cluster/nextid", "--vmid", "42")
}

func ctIDsIn(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "lxc", "*.conf"))
	sort.Strings(m)
	return m
}

func TestSetDeleteLockUnlock(t *testing.T) {
	e := newEnv(t)
	e.create(150, "--hostname", "a", "--tags", "t1", "--memory", "128")
	digest := ""
	var cfg map[string]any
	if err := json.Unmarshal([]byte(e.ok("pvesh", "get", "/nodes/pve/lxc/150/config", "--output-format", "json")), &cfg); err != nil {
		t.Fatal(err)
	}
	digest, _ = cfg["digest"].(string)
	if cfg["memory"] != float64(128) || cfg["hostname"] != "a" || len(digest) != 40 {
		t.Fatalf("GET config: %v", cfg)
	}
	e.ok("pct", "set", "150", "--memory", "1024", "--hostname", "b", "--delete", "tags", "--description", "d: 1", "--digest", digest)
	conf := e.read("lxc/150.conf")
	for _, want := range []string{"#d%3A 1\n", "memory: 1024\n", "hostname: b\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "tags:") {
		t.Errorf("tags not deleted:\n%s", conf)
	}
	e.fails("detected modified configuration - file changed by other user? Try again.\n", "pct", "set", "150", "--memory", "512", "--digest", digest)
	e.fails("bridge 'vmbr9' does not exist\n", "pct", "set", "150", "--net0", "name=eth0,bridge=vmbr9,mtu=1400")
	e.write("bridges", "vmbr0 vmbr9\n")
	e.ok("pct", "set", "150", "--net0", "name=eth0,bridge=vmbr9,mtu=1400")
	e.ok("pct", "set", "150", "--lock", "backup")
	if got := e.ok("pct", "list"); got != listHeader+listRow("150", "stopped", "backup", "b") {
		t.Fatalf("pct list with lock: %q", got)
	}
	e.fails("CT is locked (backup)\n", "pct", "start", "150")
	e.fails("CT is locked (backup)\n", "pct", "set", "150", "--memory", "256")
	e.fails("CT is locked (backup)\n", "pct", "destroy", "150")
	e.ok("pct", "unlock", "150")
	if strings.Contains(e.read("lxc/150.conf"), "lock:") {
		t.Fatal("unlock left the lock")
	}
	e.ok("pct", "destroy", "150")
}

func TestApplicationContainerEnv(t *testing.T) {
	e := newEnv(t)
	// No /sbin/init in the template: fine with an entrypoint.
	e.ok("pct", "create", "160", "local:vztmpl/noinit.tar.zst", "--rootfs", "local-lvm:1",
		"--entrypoint", "sh -c 'echo hi $GREETING > /tmp/x; sleep 1000; exit 0'",
		"--env", `GREETING=hello world\0OTHER=2`, "--hostname", "app")
	// As real pct: the two characters \0 are no separator (JSONSchema
	// get_options unescapes nothing): one variable, stored as
	// write_pct_config writes env.
	conf := e.read("lxc/160.conf")
	for _, want := range []string{"entrypoint: sh -c 'echo hi $GREETING > /tmp/x; sleep 1000; exit 0'\n", "lxc.environment.runtime: GREETING=hello world\\0OTHER=2\n"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("config lacks %q:\n%q", want, conf)
		}
	}
	if strings.Contains(conf, "env:") || strings.Contains(conf, "\x00") {
		t.Fatalf("env stored other than as lxc.environment.runtime lines:\n%q", conf)
	}
	// pct set --env replaces the whole env; more variables are more
	// lines of the config file (what proxcage writes as root).
	e.ok("pct", "set", "160", "--env", "GREETING=hello world")
	path160 := filepath.Join(e.dir, "lxc/160.conf")
	if err := os.WriteFile(path160, []byte(e.read("lxc/160.conf")+"lxc.environment.runtime: OTHER=2\nlxc.environment.runtime: EMPTY=\nlxc.environment.runtime: Q='a \"b\"'=c\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("pct", "config", "160"); !strings.Contains(got, "env: GREETING=hello world\x00OTHER=2\x00EMPTY=\x00Q='a \"b\"'=c\n") {
		t.Fatalf("pct config does not print the env joined with NUL (parse_pct_config):\n%q", got)
	}
	e.ok("pct", "start", "160")
	path := filepath.Join(e.dir, "volumes/local-lvm/vm-160-disk-0/tmp/x")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && string(b) == "hi hello world\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entrypoint did not write /tmp/x: %q %v", b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	environ := "\x00" + e.ok("pct", "exec", "160", "--", "cat", "/proc/1/environ")
	for _, want := range []string{"\x00GREETING=hello world\x00", "\x00OTHER=2\x00", "\x00EMPTY=\x00", "\x00Q='a \"b\"'=c\x00"} {
		if !strings.Contains(environ, want) {
			t.Errorf("init environment lacks %q: %q", want, environ)
		}
	}
	if got := e.ok("pct", "exec", "160", "--", "cat", "/proc/1/cmdline"); got != "sh\x00-c\x00echo hi $GREETING > /tmp/x; sleep 1000; exit 0\x00" {
		t.Errorf("init argv: %q", got)
	}
	// An entrypoint that exits: the CT stops by itself.
	e.ok("pct", "create", "161", tpl, "--rootfs", "local-lvm:1", "--entrypoint", "/bin/true")
	e.ok("pct", "start", "161")
	deadline = time.Now().Add(5 * time.Second)
	for e.ok("pct", "status", "161") != "status: stopped\n" {
		if time.Now().After(deadline) {
			t.Fatal("CT 161 with entrypoint /bin/true did not stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Raw lxc.* lines in the config are passed through (as PVE's OCI
	// support writes lxc.init.cwd etc.).
	f, err := os.OpenFile(filepath.Join(e.dir, "lxc/161.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("lxc.init.cwd: /tmp\n")
	f.Close()
	e.ok("pct", "set", "161", "--entrypoint", "sh -c 'pwd > /cwd; sleep 1000'")
	e.ok("pct", "start", "161")
	deadline = time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(e.dir, "volumes/local-lvm/vm-161-disk-0/cwd"))
		if string(b) == "/tmp\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lxc.init.cwd not applied: %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.ok("pct", "config", "161"); !strings.HasSuffix(got, "lxc.init.cwd: /tmp\n") {
		t.Errorf("pct config must end with the raw lxc lines:\n%s", got)
	}
}

func TestMountPointAndStorage(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "file"), []byte("from host\n"), 0o644)
	e.create(170, "--mp0", host+",mp=/mnt/data,ro=1", "--mp1", "local-lvm:2,mp=/vol")
	conf := e.read("lxc/170.conf")
	for _, want := range []string{"mp0: " + host + ",mp=/mnt/data,ro=1\n", "mp1: local-lvm:vm-170-disk-1,mp=/vol,size=2G\n"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("config lacks %q:\n%s", want, conf)
		}
	}
	e.ok("pct", "start", "170")
	if got := e.ok("pct", "exec", "170", "--", "cat", "/mnt/data/file"); got != "from host\n" {
		t.Fatalf("bind mount: %q", got)
	}
	if r := e.run("pct", "exec", "170", "--", "touch", "/mnt/data/new"); r.code == 0 {
		t.Fatal("ro=1 mount point is writable")
	}
	e.ok("pct", "exec", "170", "--", "sh", "-c", "echo v > /vol/f")
	if got := e.ok("pvesm", "path", "local-lvm:vm-170-disk-1"); got != e.dir+"/volumes/local-lvm/vm-170-disk-1\n" {
		t.Fatalf("pvesm path of a volume: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "volumes/local-lvm/vm-170-disk-1/f")); string(b) != "v\n" {
		t.Fatalf("volume content: %q", b)
	}
	if got := e.ok("pvesm", "path", tpl); got != e.dir+"/storage/local/template/cache/"+tplName+"\n" {
		t.Fatalf("pvesm path: %q", got)
	}
	e.fails("storage 'nope' does not exist\n", "pvesm", "path", "nope:vztmpl/x.tar.zst")
	e.fails("lvm name 'vztmpl/x.tar.zst' contains illegal characters\n", "pvesm", "path", "local-lvm:vztmpl/x.tar.zst")
	e.fails("unable to parse volume ID 'garbage'\n", "pvesm", "path", "garbage")
	status := strings.Split(e.ok("pvesm", "status", "--content", "rootdir"), "\n")
	if len(status) != 3 || status[0] != "Name             Type     Status           Total            Used       Available        %" ||
		!strings.HasPrefix(status[1], "local-lvm     lvmthin     active ") || !strings.HasSuffix(status[1], "%") {
		t.Fatalf("pvesm status --content rootdir:\n%s", strings.Join(status, "\n"))
	}
	if got := strings.Count(e.ok("pvesm", "status"), "\n"); got != 3 {
		t.Fatalf("pvesm status: %d lines", got)
	}
	e.write("storages.json", `[{"storage":"tank","type":"zfspool","content":"rootdir,images"},{"storage":"local","type":"dir","content":"vztmpl"}]`)
	e.fails("storage 'local-lvm' does not exist\n", "pct", "create", "171", tpl, "--rootfs", "local-lvm:1")
	e.ok("pct", "create", "171", tpl, "--rootfs", "tank:1")
	e.ok("pct", "stop", "170")
	if got := e.ok("pct", "destroy", "170"); got != "" {
		// local-lvm is gone from storages.json, so no LVM message
		t.Fatalf("destroy output: %q", got)
	}
	if fileExists(filepath.Join(e.dir, "volumes/local-lvm/vm-170-disk-1")) {
		t.Fatal("volume left behind")
	}
}

func TestFaultInjection(t *testing.T) {
	e := newEnv(t)
	e.create(180)
	e.create(181)
	e.write("faults", "# comment\n"+
		"pct start failonce 255 can't lock file '/run/lock/lxc/pve-config-{vmid}.lock' - got timeout\n"+
		"pvesh /cluster/nextid fail 255 500 got no worker upid\\nsecond line\n"+
		"pct status:181 fail 7 status of {vmid} broken\n")
	e.fails("can't lock file '/run/lock/lxc/pve-config-180.lock' - got timeout\n", "pct", "start", "180")
	if strings.Contains(e.read("faults"), "failonce") {
		t.Fatal("failonce line not removed")
	}
	e.ok("pct", "start", "180") // the retry succeeds
	e.fails("500 got no worker upid\nsecond line\n", "pvesh", "get", "/cluster/nextid", "--output-format", "json")
	e.ok("pvesh", "get", "/version", "--output-format", "json")
	if r := e.run("pct", "status", "181"); r.code != 7 || r.stderr != "status of 181 broken\n" {
		t.Fatalf("vmid-specific fault: %+v", r)
	}
	if got := e.ok("pct", "status", "180"); got != "status: running\n" {
		t.Fatalf("fault for 181 hit 180: %q", got)
	}
	e.write("faults", "pct create fail 255 storage 'local-lvm' does not exist\nlxc-info * hang\n")
	e.fails("storage 'local-lvm' does not exist\n", "pct", "create", "182", tpl, "--rootfs", "local-lvm:1")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := e.runCtx(ctx, "lxc-info", "-n", "180", "-p", "-H")
	if r.code == 0 || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("hang fault: %+v after %v", r, time.Since(start))
	}
	os.Remove(filepath.Join(e.dir, "faults"))
	if got := e.ok("lxc-info", "-n", "180", "-s", "-H"); got != "RUNNING\n" {
		t.Fatalf("lxc-info after removing faults: %q", got)
	}
}

func TestLockCreateVisibleDuringCreate(t *testing.T) {
	e := newEnv(t)
	e.write("faults", "pct create delay 1.5\n")
	done := make(chan result, 1)
	go func() { done <- e.run("pct", "create", "190", tpl, "--rootfs", "local-lvm:1", "--hostname", "slow") }()
	want := listHeader + listRow("190", "stopped", "create", "slow")
	deadline := time.Now().Add(5 * time.Second)
	for e.ok("pct", "list") != want {
		if time.Now().After(deadline) {
			t.Fatalf("never saw the create lock; pct list: %q", e.ok("pct", "list"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.fails("CT is locked (create)\n", "pct", "start", "190")
	if r := <-done; r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	if got := e.ok("pct", "list"); got != listHeader+listRow("190", "stopped", "", "slow") {
		t.Fatalf("after create: %q", got)
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	if got := e.ok("pveversion"); got != "pve-manager/9.1.1/ab12cd34 (running kernel: 6.8.12-4-pve)\n" {
		t.Fatalf("pveversion: %q", got)
	}
	if got := e.ok("pvesh", "get", "/version", "--output-format", "json"); got != `{"release":"9.1","repoid":"ab12cd34","version":"9.1.1"}`+"\n" {
		t.Fatalf("/version: %q", got)
	}
	e.write("version", "pve-manager/8.4.1/2a5fa54a8503f96d (running kernel: 6.8.12-9-pve)\n")
	if got := e.ok("pvesh", "get", "/version", "--output-format", "json"); got != `{"release":"8.4","repoid":"2a5fa54a8503f96d","version":"8.4.1"}`+"\n" {
		t.Fatalf("/version from the version file: %q", got)
	}
	r := e.run("pct", "list")
	if r.code != 0 {
		t.Fatal(r)
	}
	cmd := exec.Command(filepath.Join(binDir, "pct"), "list")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "PCTDOUBLE_DIR is not set") {
		t.Fatalf("without PCTDOUBLE_DIR: %v %s", err, out)
	}
}

// ---- unit tests (no root needed)

func TestEmbeddedSchema(t *testing.T) {
	ms, err := schema.Methods()
	if err != nil {
		t.Fatal(err)
	}
	create := ms["lxc-create"]
	if create == nil || create.Path != "/nodes/{node}/lxc" || create.HTTPMethod != "POST" {
		t.Fatalf("lxc-create: %+v", create)
	}
	if p := create.Lookup("memory"); p == nil || *p.Minimum != 16 || p.Type != "integer" {
		t.Fatalf("memory: %+v", p)
	}
	if p := create.Lookup("vmid"); p == nil || *p.Minimum != 100 || *p.Maximum != 999999999 {
		t.Fatalf("vmid: %+v", p)
	}
	if create.Lookup("net31") == nil || create.Lookup("net32") != nil || create.Lookup("mp255") == nil {
		t.Fatal("indexed parameter ranges")
	}
	if p := create.Lookup("net0"); p.PropertyFormat["name"] == nil || p.PropertyFormat["name"].Optional != 0 {
		t.Fatal("net[n] property string format")
	}
	for name, m := range ms {
		for k, p := range m.Properties {
			if p.Pattern != "" {
				if _, err := pveschema.CompilePattern(p.Pattern); err != nil {
					t.Errorf("%s %s: %v", name, k, err)
				}
			}
		}
	}
}

func TestSplitInitCmd(t *testing.T) {
	for in, want := range map[string][]string{
		"/sbin/init":                           {"/sbin/init"},
		"sh -c 'echo hi > /tmp/x; sleep 1000'": {"sh", "-c", "echo hi > /tmp/x; sleep 1000"},
		`  a  "b c"  d'e  `:                    {"a", "b c", "d'e"},
		// lxc_string_split_quoted completes a quoted word only at its
		// closing quote: an unterminated one is lost.
		`x "unterminated`: {"x"},
		// No escapes: a shell's '\'' is other words.
		`/bin/sh -c 'echo '\''hi'\'`: {"/bin/sh", "-c", "echo ", `\''hi'\'`},
		// parse_line drops a pair of quotes around the whole value.
		`'/opt/my app' 'a b'`: {"/opt/my", "app'"},
		`'/opt/my app' "a b"`: {"/opt/my app", "a b"},
	} {
		if got := splitInitCmd(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("splitInitCmd(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCmd2String: the double's port of PVE::Tools::cmd2string
// (String::ShellQuote 1.04), as PVE writes an image's entrypoint.
func TestCmd2StringWords(t *testing.T) {
	for want, in := range map[string][]string{
		`/bin/sh -c 'echo '\''a b'\'`: {"/bin/sh", "-c", "echo 'a b'"},
		`'' 'a=b' "''" 'x y'`:         {"", "a=b", "''", "x y"},
		`nginx -g 'daemon off;'`:      {"nginx", "-g", "daemon off;"},
	} {
		if got := cmd2string(in); got != want {
			t.Errorf("cmd2string(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfRoundTrip(t *testing.T) {
	in := "#line: one\n#100% two\narch: amd64\nhostname: h\nlxc.init.cwd: /app\nlxc.environment.runtime: A=1\n"
	in += "lxc.environment.runtime = B=x y  \n"
	c := parseConf([]byte(in))
	// parse_pct_config: env lines (':' or '=', trailing blanks trimmed)
	// are the env, joined with NUL; other lxc.* lines stay raw.
	if c.Description != "line: one\n100% two" || c.Keys["hostname"] != "h" || len(c.Raw) != 1 || c.Keys["env"] != "A=1\x00B=x y" {
		t.Fatalf("parsed: %+v", c)
	}
	// write_pct_config: sorted keys, then the env lines, then lxc.* lines.
	want := "#line%3A one\n#100% two\narch: amd64\nhostname: h\nlxc.environment.runtime: A=1\nlxc.environment.runtime: B=x y\nlxc.init.cwd: /app\n"
	if got := string(c.bytes()); got != want {
		t.Fatalf("written:\n%s\nwant:\n%s", got, want)
	}
}

// TestNextIDRangeFromDatacenterCfg: nextid stays in datacenter.cfg's
// next-id range, upper exclusive (pve-manager 9.2.11 API2/Cluster.pm).
func TestNextIDRangeFromDatacenterCfg(t *testing.T) {
	e := newEnv(t)
	e.write("datacenter.cfg", "keyboard: en-us\nnext-id: lower=200,upper=202\n")
	if got := e.ok("pvesh", "get", "/cluster/nextid", "--output-format", "json"); got != "\"200\"\n" {
		t.Fatalf("nextid: %q", got)
	}
	e.write("vms.json", `[{"vmid": 200, "name": "a"}, {"vmid": 201, "name": "b"}]`)
	e.fails("unable to get any free VMID in range [200, 202]\n", "pvesh", "get", "/cluster/nextid", "--output-format", "json")
}

// TestNodeFilesAsInputs: storage.cfg replaces storages.json (a file
// storage's templates under its path and content-dirs), dpkg/status gives
// the versions pveversion prints.
func TestNodeFilesAsInputs(t *testing.T) {
	e := newEnv(t)
	tpl := filepath.Join(e.dir, "tpl")
	e.write("storage.cfg", "dir: local\n\tpath "+tpl+"\n\tcontent vztmpl\n\tcontent-dirs vztmpl=ct\n\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir\n")
	if got := e.ok("pvesm", "path", "local:vztmpl/a.tar.zst"); got != filepath.Join(tpl, "ct", "a.tar.zst")+"\n" {
		t.Fatalf("pvesm path: %q", got)
	}
	e.fails("storage 'gone' does not exist\n", "pvesm", "path", "gone:vztmpl/a.tar.zst")
	os.MkdirAll(filepath.Join(e.dir, "dpkg"), 0o755)
	e.write("dpkg/status", "Package: pve-manager\nStatus: install ok installed\nVersion: 8.4.1\n\nPackage: pve-container\nStatus: install ok installed\nVersion: 6.0.18\n")
	if got := e.ok("pveversion"); !strings.HasPrefix(got, "pve-manager/8.4.1/") {
		t.Fatalf("pveversion: %q", got)
	}
	if got := e.ok("pveversion", "-v"); !strings.Contains(got, "\npve-container: 6.0.18\n") {
		t.Fatalf("pveversion -v: %q", got)
	}
}

// The commands that change a CT run under its config lock, the flock
// proxcage takes to write a CT's env ([pve.tools] lock_dir): they wait for
// it, and after the wait fail as lock_file_full does; reads do not take it.
func TestConfigLock(t *testing.T) {
	e := newEnv(t)
	e.create(182)
	lockDir := filepath.Join(e.dir, "lock")
	os.MkdirAll(lockDir, 0o755)
	path := filepath.Join(lockDir, "pve-config-182.lock")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PCTDOUBLE_LOCK_WAIT", "300ms")
	e.fails("can't lock file '"+path+"' - got timeout\n", "pct", "set", "182", "--memory", "256")
	e.ok("pct", "config", "182") // a read takes no lock
	// Held for a while, then released: the change waits and goes through.
	t.Setenv("PCTDOUBLE_LOCK_WAIT", "10s")
	time.AfterFunc(time.Second, func() { f.Close() })
	t0 := time.Now()
	e.ok("pct", "set", "182", "--memory", "256")
	if d := time.Since(t0); d < 900*time.Millisecond {
		t.Fatalf("pct set did not wait for the lock (%v)", d)
	}
	if !strings.Contains(e.ok("pct", "config", "182"), "memory: 256\n") {
		t.Fatal("the change was lost")
	}
}
