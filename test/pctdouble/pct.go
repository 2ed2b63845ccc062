package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/test/pveschema"
)

var pctUsage = map[string]string{
	"create":   "pct create <vmid> <ostemplate> [OPTIONS]",
	"start":    "pct start <vmid> [OPTIONS]",
	"stop":     "pct stop <vmid> [OPTIONS]",
	"shutdown": "pct shutdown <vmid> [OPTIONS]",
	"destroy":  "pct destroy <vmid> [OPTIONS]",
	"status":   "pct status <vmid> [OPTIONS]",
	"config":   "pct config <vmid> [OPTIONS]",
	"set":      "pct set <vmid> [OPTIONS]",
	"exec":     "pct exec <vmid> [<extra-args>] [OPTIONS]",
	"enter":    "pct enter <vmid> [OPTIONS]",
	"unlock":   "pct unlock <vmid>",
	"list":     "pct list",
}

func pctMain(args []string) error {
	if len(args) == 0 {
		return fail("ERROR: no command specified\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "create":
		return pctCreate(rest)
	case "start":
		return pctStart(rest)
	case "stop":
		return pctStop(rest)
	case "shutdown":
		return pctShutdown(rest)
	case "destroy":
		return pctDestroy(rest)
	case "status":
		return pctStatus(rest)
	case "list":
		return pctList(rest)
	case "config":
		return pctConfig(rest)
	case "set":
		return pctSet(rest)
	case "exec":
		return pctExec(rest)
	case "enter":
		return pctEnter(rest)
	case "unlock":
		return pctUnlock(rest)
	}
	return fail("ERROR: unknown command 'pct %s'\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]", cmd)
}

// parseVMIDCmd parses "<vmid> [OPTIONS]" (plus extra positionals) and
// validates against the API method's schema.
func parseVMIDCmd(sub, methodName string, args []string, npos int, cliOnly ...string) (int, *cliArgs, error) {
	var m *pveschema.Method
	if methodName != "" {
		m = method(methodName)
	}
	c, err := parseCLIx(args, boolsOf(m, cliOnly...), unknownOf(m, cliOnly...))
	if err != nil {
		return 0, nil, fail("%s\n%s", err.Error(), pctUsage[sub])
	}
	if len(c.pos) < npos {
		return 0, nil, fail("400 not enough arguments\n%s", pctUsage[sub])
	}
	if len(c.pos) > npos {
		return 0, nil, fail("400 too many arguments\n%s", pctUsage[sub])
	}
	params := map[string]string{}
	for k, v := range c.opts {
		params[k] = v
	}
	params["vmid"] = c.pos[0]
	if m != nil {
		if errs := validate(m, params, cliOnly...); len(errs) > 0 {
			return 0, nil, paramError(errs, pctUsage[sub])
		}
	} else {
		errs := pveschema.Errors{}
		if msg := pveschema.CheckNamedFormat("pve-vmid", c.pos[0]); msg != "" {
			errs.Add("vmid", "invalid format - "+msg)
		}
		for k := range c.opts {
			if !contains(cliOnly, k) {
				errs.Add(k, pveschema.AdditionalPropMsg)
			}
		}
		if len(errs) > 0 {
			return 0, nil, paramError(errs, pctUsage[sub])
		}
	}
	for k, v := range params {
		if k != "vmid" {
			c.opts[k] = v
		}
	}
	vmid, _ := strconv.Atoi(c.pos[0])
	return vmid, c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- create

func pctCreate(args []string) error {
	m := method("lxc-create")
	c, err := parseCLIx(args, boolsOf(m), unknownOf(m))
	if err != nil {
		return fail("%s\n%s", err.Error(), pctUsage["create"])
	}
	if len(c.pos) < 2 {
		return fail("400 not enough arguments\n%s", pctUsage["create"])
	}
	if len(c.pos) > 2 {
		return fail("400 too many arguments\n%s", pctUsage["create"])
	}
	params := map[string]string{}
	for k, v := range c.opts {
		params[k] = v
	}
	params["vmid"], params["ostemplate"] = c.pos[0], c.pos[1]
	if errs := validate(m, params); len(errs) > 0 {
		return paramError(errs, pctUsage["create"])
	}
	vmid, _ := strconv.Atoi(params["vmid"])
	ostemplate := params["ostemplate"]
	delete(params, "vmid")
	delete(params, "ostemplate")
	if params["restore"] == "1" {
		return fail("unable to restore CT %d - restore is not supported by pctdouble", vmid)
	}
	start := params["start"] == "1"
	force := params["force"] == "1"
	storageDefault := params["storage"]
	if storageDefault == "" {
		storageDefault = "local"
	}
	// Parameters that are not stored in the config.
	for _, k := range []string{"start", "force", "storage", "password", "ssh-public-keys",
		"ignore-unpack-errors", "bwlimit", "restore", "unique", "pool", "ha-managed", "debug"} {
		delete(params, k)
	}
	if _, ok := params["rootfs"]; !ok {
		params["rootfs"] = storageDefault + ":4"
	}
	if _, ok := params["unprivileged"]; !ok {
		params["unprivileged"] = "1" // creation default, as in PVE
	}
	if _, ok := params["arch"]; !ok {
		params["arch"] = "amd64"
	}

	unlock, err := lockState()
	if err != nil {
		return err
	}
	conf, err := func() (*ctConf, error) {
		owner, node, err := vmidOwner(vmid)
		if err != nil {
			return nil, err
		}
		if owner == "CT" && force {
			if isRunning(vmid) {
				return nil, fail("unable to create CT %d - can't overwrite running container", vmid)
			}
			old, _ := loadConf(vmid)
			if old != nil {
				if err := checkLock(old); err != nil {
					return nil, err
				}
				removeCT(vmid, old, false)
			}
		} else if owner != "" {
			return nil, fail("%s %d already exists on node '%s'", owner, vmid, node)
		}
		conf := newConf()
		if err := prepareCreate(vmid, params, conf); err != nil {
			return nil, err
		}
		conf.Keys["lock"] = "create"
		if err := writeConf(vmid, conf); err != nil {
			return nil, err
		}
		return conf, nil
	}()
	unlock()
	if err != nil {
		return err
	}

	// The worker: from here on failures remove the config again.
	if err := createWorker(vmid, ostemplate, conf); err != nil {
		if unlock, lerr := lockState(); lerr == nil {
			removeCT(vmid, conf, true)
			unlock()
		}
		return fail("unable to create CT %d - %s", vmid, strings.TrimRight(err.Error(), "\n"))
	}
	unlock, err = lockState()
	if err != nil {
		return err
	}
	delete(conf.Keys, "lock")
	err = writeConf(vmid, conf)
	unlock()
	if err != nil {
		return err
	}
	if start {
		return pctStart([]string{strconv.Itoa(vmid)})
	}
	return nil
}

// prepareCreate checks storages, bridges and mount points, allocates the
// volumes and fills conf. It runs under the state lock.
func prepareCreate(vmid int, params map[string]string, conf *ctConf) error {
	if err := checkCreateStorages(params); err != nil {
		return err
	}
	if d, ok := params["description"]; ok {
		conf.Description = d
		delete(params, "description")
	}
	disk := 0
	// rootfs first (vm-<vmid>-disk-0), then mount points in index order.
	rootfs, err := allocVolume(vmid, "rootfs", params["rootfs"], &disk, true)
	if err != nil {
		return err
	}
	params["rootfs"] = rootfs
	for _, k := range sortedIndexed(params, "mp") {
		v, err := allocVolume(vmid, k, params[k], &disk, false)
		if err != nil {
			return err
		}
		params[k] = v
	}
	for _, k := range sortedIndexed(params, "net") {
		v, err := checkNet(k, params[k])
		if err != nil {
			return err
		}
		params[k] = v
	}
	for k, v := range params {
		if k == "tags" {
			v = pveschema.UniqueTags(v) // as PVE stores them
		}
		conf.Keys[k] = v
	}
	return nil
}

func sortedIndexed(params map[string]string, prefix string) []string {
	var keys []string
	for k := range params {
		if m := pveschema.IndexedNameRE.FindStringSubmatch(k); len(m) > 1 && m[1] == prefix {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(keys[i][len(prefix):])
		b, _ := strconv.Atoi(keys[j][len(prefix):])
		return a < b
	})
	return keys
}

var allocRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):(\d+(?:\.\d+)?)$`)

// allocVolume handles rootfs/mpN volumes: "STORAGE:SIZE" allocates a new
// volume vm-<vmid>-disk-N (rootdir content required); an absolute path is a
// bind mount (must exist); anything else must be an existing volume.
func allocVolume(vmid int, key, value string, disk *int, isRoot bool) (string, error) {
	format := method("lxc-create").Properties["rootfs"].PropertyFormat
	if !isRoot {
		format = method("lxc-create").Properties["mp[n]"].PropertyFormat
	}
	mp := pveschema.SplitPropertyString(format, value)
	vol := mp["volume"]
	if m := allocRE.FindStringSubmatch(vol); m != nil {
		if _, err := storageWithContent(m[1], "rootdir"); err != nil {
			return "", err
		}
		gib, _ := strconv.ParseFloat(m[2], 64)
		name := fmt.Sprintf("vm-%d-disk-%d", vmid, *disk)
		*disk++
		mp["volume"] = m[1] + ":" + name
		mp["size"] = formatDiskSize(int64(gib * (1 << 30)))
		if !isRoot {
			dir := statePath("volumes", m[1], name)
			_ = os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", fail("pctdouble: %v", err)
			}
		}
	} else if strings.HasPrefix(vol, "/") {
		if isRoot {
			return "", fail("rootfs as a bind mount is not supported by pctdouble")
		}
		// Checked when the worker mounts it (mountAll), as PVE does.
	} else {
		sid, _, ok := strings.Cut(vol, ":")
		if !ok {
			return "", fail("unable to parse volume ID '%s'", vol)
		}
		if _, err := storageWithContent(sid, "rootdir"); err != nil {
			return "", err
		}
	}
	return pveschema.PrintPropertyString(format, mp), nil
}

// formatDiskSize is PVE::JSONSchema::format_size.
func formatDiskSize(b int64) string {
	units := []struct {
		s string
		n int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}
	for _, u := range units {
		if b >= u.n && b%u.n == 0 {
			return fmt.Sprintf("%d%s", b/u.n, u.s)
		}
	}
	return strconv.FormatInt(b, 10)
}

// checkNet verifies the bridge and fills in what PVE adds (hwaddr, type).
func checkNet(key, value string) (string, error) {
	format := method("lxc-create").Properties["net[n]"].PropertyFormat
	n := pveschema.SplitPropertyString(format, value)
	if err := checkNetMTU(key, n); err != nil {
		return "", err // a missing bridge fails here only with mtu=, else at start
	}
	if n["hwaddr"] == "" {
		b := make([]byte, 3)
		rand.Read(b)
		n["hwaddr"] = fmt.Sprintf("BC:24:11:%02X:%02X:%02X", b[0], b[1], b[2])
	}
	if n["type"] == "" {
		n["type"] = "veth"
	}
	return pveschema.PrintPropertyString(format, n), nil
}

var osTypes = map[string]string{"debian": "debian", "devuan": "devuan", "ubuntu": "ubuntu",
	"centos": "centos", "rocky": "centos", "almalinux": "centos", "fedora": "fedora",
	"opensuse": "opensuse", "opensuse-leap": "opensuse", "opensuse-tumbleweed": "opensuse",
	"arch": "archlinux", "archlinux": "archlinux", "alpine": "alpine", "gentoo": "gentoo", "nixos": "nixos",
	"openeuler": "openeuler", "openEuler": "openeuler", "opensuse-slowroll": "opensuse", "sles": "opensuse"}

// createWorker extracts the template and finishes the config (the part of
// PVE's create that runs as a vzcreate task).
func createWorker(vmid int, ostemplate string, conf *ctConf) error {
	sid, rest, ok := strings.Cut(ostemplate, ":")
	file, isTpl := strings.CutPrefix(rest, "vztmpl/")
	if !ok || !isTpl || file == "" || strings.Contains(file, "/") {
		if strings.HasPrefix(ostemplate, "/") {
			return fmt.Errorf("only templates given as a volume ID (storage:vztmpl/file) are supported by pctdouble")
		}
		return fmt.Errorf("unable to parse volume ID '%s'", ostemplate)
	}
	if _, err := findStorage(sid); err != nil { // Create.pm restore_archive: storage_check_enabled
		return err
	}
	archive := statePath("storage", sid, "template", "cache", file)
	if _, err := os.Stat(archive); err != nil {
		return fmt.Errorf("volume '%s' does not exist", ostemplate)
	}
	if d := faultDelay; d > 0 {
		time.Sleep(d) // "delay" fault: a slow create, while "lock: create" is visible
	}
	// API2/LXC.pm create: mount_all before the archive is restored.
	if err := mountAll(vmid, conf); err != nil {
		return err
	}
	root := rootfsPath(vmid)
	_ = os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	// New volumes belong to the CT's mapped root, and the template is
	// extracted inside the CT's user namespace, as PVE does (userns.go).
	if err := chownNewVolumes(vmid, conf); err != nil {
		return err
	}
	if err := extractTemplate(archive, root, conf); err != nil {
		return err
	}
	if fileExists(filepath.Join(root, "oci-layout")) && fileExists(filepath.Join(root, "index.json")) {
		if err := flattenOCI(vmid, root, conf); err != nil {
			return err
		}
		if err := shiftOwners(root, conf); err != nil {
			return err
		}
	}
	fmt.Printf("Detected container architecture: %s\n", conf.Keys["arch"])
	if _, ok := conf.Keys["entrypoint"]; !ok {
		p, err := resolveInRoot(root, "/sbin/init")
		if err != nil || !fileExists(p) {
			return fmt.Errorf("no /sbin/init found in template '%s' (set --entrypoint for an application container)", ostemplate)
		}
	}
	// API2/LXC.pm create: PVE::LXC::Setup->new detects the OS (and dies
	// on one it does not know) unless ostype is unmanaged.
	t, err := setupOSType(root, conf.Keys["ostype"])
	if err != nil {
		return err
	}
	conf.Keys["ostype"] = t
	return nil
}

// setupOSType is PVE::LXC::Setup->new's choice of plugin (pve-container
// 6.1.10 src/PVE/LXC/Setup.pm new and $autodetect_type): ostype unmanaged
// skips detection; otherwise os-release's ID (or an alias) must name a
// plugin, else the fallback files decide, else a CT with an os-release
// dies "unable to detect OS distribution" and one without is unmanaged.
// Warnings go to stderr as PVE's warn does.
func setupOSType(root, ostype string) (string, error) {
	if ostype == "unmanaged" {
		return "unmanaged", nil
	}
	exists := func(p string) bool {
		q, err := resolveInRoot(root, p)
		return err == nil && fileExists(q)
	}
	detected := ""
	id := ""
	if p, err := resolveInRoot(root, "/etc/os-release"); err == nil {
		if b, err := os.ReadFile(p); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "ID="); ok {
					id = strings.Trim(v, `"'`)
				}
			}
		}
	}
	if id != "" {
		if t, ok := osTypes[id]; ok {
			detected = t
		} else {
			fmt.Fprintf(os.Stderr, "unknown ID '%s' in /etc/os-release file, trying fallback detection\n", id)
		}
	}
	if detected == "" {
		for _, f := range []struct{ file, t string }{
			{"/etc/debian_version", "debian"}, {"/etc/devuan_version", "devuan"},
			{"/etc/SuSE-brand", "opensuse"}, {"/etc/SuSE-release", "opensuse"},
			{"/etc/fedora-release", "fedora"}, {"/etc/centos-release", "centos"},
			{"/etc/redhat-release", "centos"}, {"/etc/arch-release", "archlinux"},
			{"/etc/alpine-release", "alpine"}, {"/etc/gentoo-release", "gentoo"},
			{"/nix/store", "nixos"}, {"/etc/openEuler-release", "openeuler"},
		} {
			if exists(f.file) {
				detected = f.t
				break
			}
		}
	}
	if detected == "" {
		if exists("/etc/os-release") {
			return "", fmt.Errorf("unable to detect OS distribution")
		}
		fmt.Fprintln(os.Stderr, "/etc/os-release file not found and autodetection failed, falling back to 'unmanaged'")
		detected = "unmanaged"
	}
	if ostype != "" && ostype != detected {
		fmt.Fprintf(os.Stderr, "got unexpected ostype (%s != %s)\n", detected, ostype)
	}
	return detected, nil
}

// mountAll is what PVE::LXC::mount_all asks of each mount point
// (pve-container 6.1.10 src/PVE/LXC.pm __mountpoint_mount; the class from
// Config.pm classify_mountpoint): a path under /dev/ is a device and is
// mount(8)ed, any other path is a bind mount and must be a directory
// (-d, so a file fails too). A failure warns "mounting container failed"
// and dies with the mount's error. The double mounts nothing itself: LXC
// binds the sources at start.
func mountAll(vmid int, conf *ctConf) error {
	format := method("lxc-create").Properties["mp[n]"].PropertyFormat
	for _, k := range sortedIndexed(conf.Keys, "mp") {
		mp := pveschema.SplitPropertyString(format, conf.Keys[k])
		vol := mp["volume"]
		if !strings.HasPrefix(vol, "/") {
			continue
		}
		if err := checkMountSource(vmid, vol, mp["mp"]); err != nil {
			fmt.Fprintln(os.Stderr, "mounting container failed")
			return err
		}
	}
	return nil
}

// checkMountSource is __mountpoint_mount's check of a path source.
func checkMountSource(vmid int, src, dst string) error {
	if strings.HasPrefix(src, "/dev/") {
		target := fmt.Sprintf("/var/lib/lxc/%d/rootfs/%s", vmid, strings.TrimLeft(dst, "/"))
		st, err := os.Stat(src)
		if err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
			return fmt.Errorf("pctdouble: mounting block device %s is not supported", src)
		}
		// mount(8) of anything but a block device (util-linux wording).
		msg := fmt.Sprintf("%s is not a block device.", src)
		if err != nil {
			msg = fmt.Sprintf("special device %s does not exist.", src)
		}
		fmt.Fprintf(os.Stderr, "mount: %s: %s\n", target, msg)
		return fmt.Errorf("command 'mount %s %s' failed: exit code 32", src, target)
	}
	if st, err := os.Stat(src); err != nil || !st.IsDir() {
		return fmt.Errorf("directory '%s' does not exist", src)
	}
	return nil
}

// removeCT deletes a CT's config, rootfs, volumes and LXC dir (state lock
// held by the caller). It returns the lvm-style removal lines PVE prints.
// Removal is best effort: what it leaves is what the tests' "nothing
// left" checks look for.
func removeCT(vmid int, c *ctConf, quiet bool) []string {
	var msgs []string
	for k, v := range c.Keys {
		if k != "rootfs" && !strings.HasPrefix(k, "mp") && !strings.HasPrefix(k, "unused") {
			continue
		}
		vol := strings.SplitN(v, ",", 2)[0]
		vol = strings.TrimPrefix(vol, "volume=")
		sid, name, ok := strings.Cut(vol, ":")
		if !ok || strings.HasPrefix(vol, "/") || !strings.HasPrefix(name, fmt.Sprintf("vm-%d-", vmid)) {
			continue
		}
		_ = os.RemoveAll(statePath("volumes", sid, name))
		if s, err := findStorage(sid); err == nil && (s.Type == "lvmthin" || s.Type == "lvm") {
			msgs = append(msgs, fmt.Sprintf("  Logical volume %q successfully removed.", name))
		}
	}
	_ = os.RemoveAll(rootfsPath(vmid))
	_ = os.RemoveAll(filepath.Join(lxcPath(), strconv.Itoa(vmid)))
	_ = os.Remove(confPath(vmid))
	sort.Strings(msgs)
	return msgs
}

// ---------------------------------------------------------------- start/stop

func pctStart(args []string) error {
	vmid, c, err := parseVMIDCmd("start", "lxc-start", args, 1)
	if err != nil {
		return err
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	if c.opts["skiplock"] != "1" {
		if err := checkLock(conf); err != nil {
			return err
		}
	}
	if isRunning(vmid) {
		return fail("CT %d already running", vmid)
	}
	return startCT(vmid, conf)
}

func pctStop(args []string) error {
	vmid, c, err := parseVMIDCmd("stop", "lxc-stop", args, 1)
	if err != nil {
		return err
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	if c.opts["skiplock"] != "1" {
		if err := checkLock(conf); err != nil {
			return err
		}
	}
	if !isRunning(vmid) {
		return fail("CT %d not running", vmid)
	}
	return stopCT(vmid)
}

func pctShutdown(args []string) error {
	vmid, c, err := parseVMIDCmd("shutdown", "lxc-shutdown", args, 1)
	if err != nil {
		return err
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	conf, err := loadConf(vmid)
	if err == nil {
		err = checkLock(conf)
	}
	if err == nil && !isRunning(vmid) {
		err = fail("CT %d not running", vmid)
	}
	unlock()
	if err != nil {
		return err
	}
	timeout := c.opts["timeout"]
	if timeout == "" {
		timeout = "60"
	}
	lxcArgs := []string{"-P", lxcPath(), "-n", strconv.Itoa(vmid), "--timeout", timeout}
	shown := fmt.Sprintf("lxc-stop -n %d --timeout %s", vmid, timeout)
	if c.opts["forceStop"] != "1" {
		lxcArgs = append(lxcArgs, "--nokill")
		shown = fmt.Sprintf("lxc-stop -n %d --nokill --timeout %s", vmid, timeout)
	}
	cmd := lxcCmd("lxc-stop", lxcArgs...)
	if err := cmd.Run(); err != nil {
		code := 1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if !isRunning(vmid) {
			return nil
		}
		return fail("command '%s' failed: exit code %d", shown, code)
	}
	return nil
}

func pctDestroy(args []string) error {
	vmid, c, err := parseVMIDCmd("destroy", "lxc-destroy", args, 1)
	if err != nil {
		return err
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	if err := checkLock(conf); err != nil {
		return err
	}
	if isRunning(vmid) {
		if c.opts["force"] != "1" {
			return fail("unable to destroy CT %d - container is running", vmid)
		}
		if err := stopCT(vmid); err != nil {
			return err
		}
	}
	if c.opts["purge"] == "1" {
		fmt.Printf("purging CT %d from related configurations..\n", vmid)
	}
	for _, m := range removeCT(vmid, conf, false) {
		fmt.Println(m)
	}
	return nil
}

func pctUnlock(args []string) error {
	vmid, _, err := parseVMIDCmd("unlock", "", args, 1)
	if err != nil {
		return err
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	delete(conf.Keys, "lock")
	return writeConf(vmid, conf)
}

// ---------------------------------------------------------------- status/list

func ctName(vmid int, c *ctConf) string {
	n := c.Keys["hostname"]
	if n == "" {
		n = fmt.Sprintf("CT%d", vmid)
	}
	return strings.Join(strings.Fields(n), "")
}

// ctStatus is what PVE::LXC::vmstatus reports for one CT.
func ctStatus(vmid int, c *ctConf) map[string]any {
	d := map[string]any{
		"vmid": vmid, "name": ctName(vmid, c), "type": "lxc", "status": "stopped",
		"cpu": 0, "disk": 0, "diskread": 0, "diskwrite": 0, "netin": 0, "netout": 0,
		"mem": 0, "swap": 0, "uptime": 0,
	}
	mem := int64(512)
	if v, err := strconv.ParseInt(c.Keys["memory"], 10, 64); err == nil {
		mem = v
	}
	swap := int64(512)
	if v, err := strconv.ParseInt(c.Keys["swap"], 10, 64); err == nil {
		swap = v
	}
	d["maxmem"] = mem << 20
	d["maxswap"] = swap << 20
	cpus := 1
	if v, err := strconv.Atoi(c.Keys["cores"]); err == nil {
		cpus = v
	} else if n := numCPU(); n > 0 {
		cpus = n
	}
	d["cpus"] = cpus
	rootfs := pveschema.SplitPropertyString(method("lxc-create").Properties["rootfs"].PropertyFormat, c.Keys["rootfs"])
	d["maxdisk"] = sizeBytes(rootfs["size"])
	if l := c.Keys["lock"]; l != "" {
		d["lock"] = l
	}
	if t := c.Keys["tags"]; t != "" {
		d["tags"] = t
	}
	d["template"] = 0
	if c.Keys["template"] == "1" {
		d["template"] = 1
	}
	if isRunning(vmid) {
		d["status"] = "running"
		if pid := ctPID(vmid); pid > 0 {
			d["pid"] = pid
			d["uptime"] = procUptime(pid)
		}
		d["mem"] = ctMemUsage(vmid)
	}
	return d
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor\t") + map[bool]int{true: 1, false: 0}[strings.HasPrefix(string(b), "processor\t")]
}

func pctStatus(args []string) error {
	vmid, c, err := parseVMIDCmd("status", "lxc-status", args, 1, "verbose")
	if err != nil {
		return err
	}
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	d := ctStatus(vmid, conf)
	if v, _ := pveschema.ParseBoolean(c.opts["verbose"]); v != "1" {
		fmt.Printf("status: %s\n", d["status"])
		return nil
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s: %v\n", k, d[k])
	}
	return nil
}

func pctList(args []string) error {
	if len(args) > 0 {
		return fail("400 too many arguments\n%s", pctUsage["list"])
	}
	ids := ctIDs()
	if len(ids) == 0 {
		return nil // PVE prints nothing at all, not even the header
	}
	const format = "%-10s %-10s %-12s %-20s\n"
	var b strings.Builder
	fmt.Fprintf(&b, format, "VMID", "Status", "Lock", "Name")
	for _, id := range ids {
		conf, err := loadConf(id)
		if err != nil {
			continue // removed meanwhile
		}
		status := "stopped"
		if isRunning(id) {
			status = "running"
		}
		fmt.Fprintf(&b, format, strconv.Itoa(id), status, conf.Keys["lock"], ctName(id, conf))
	}
	fmt.Print(b.String())
	return nil
}

func pctConfig(args []string) error {
	vmid, _, err := parseVMIDCmd("config", "lxc-config", args, 1)
	if err != nil {
		return err
	}
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	var b strings.Builder
	keys := make([]string, 0, len(conf.Keys)+1)
	for k := range conf.Keys {
		keys = append(keys, k)
	}
	if conf.Description != "" {
		keys = append(keys, "description")
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := conf.Keys[k]
		if k == "description" {
			v = encodeText(conf.Description)
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	for _, r := range conf.Raw {
		fmt.Fprintf(&b, "%s: %s\n", r[0], r[1])
	}
	fmt.Print(b.String())
	return nil
}

// ---------------------------------------------------------------- set

func pctSet(args []string) error {
	m := method("lxc-set-config")
	c, err := parseCLIx(args, boolsOf(m), unknownOf(m))
	if err != nil {
		return fail("%s\n%s", err.Error(), pctUsage["set"])
	}
	if len(c.pos) != 1 {
		return fail("400 %s arguments\n%s", map[bool]string{true: "not enough", false: "too many"}[len(c.pos) < 1], pctUsage["set"])
	}
	params := map[string]string{"vmid": c.pos[0]}
	for k, v := range c.opts {
		params[k] = v
	}
	if errs := validate(m, params); len(errs) > 0 {
		return paramError(errs, pctUsage["set"])
	}
	vmid, _ := strconv.Atoi(params["vmid"])
	delete(params, "vmid")
	var deletes []string
	if d, ok := params["delete"]; ok {
		deletes = strings.FieldsFunc(d, func(r rune) bool { return r == ',' || r == ';' || r == ' ' })
		delete(params, "delete")
	}
	delete(params, "revert")
	digest := params["digest"]
	delete(params, "digest")
	for _, d := range deletes {
		if _, ok := params[d]; ok {
			return fail("400 Parameter verification failed.\ndelete: you can't use '-%s' and -delete %s' at the same time\n\n%s", d, d, pctUsage["set"])
		}
	}

	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	if digest != "" && digest != conf.digest {
		return fail("detected modified configuration - file changed by other user? Try again.")
	}
	skiplock := params["skiplock"] == "1"
	delete(params, "skiplock")
	if !skiplock {
		if err := checkLock(conf); err != nil {
			return err
		}
	}
	for _, d := range deletes {
		switch d {
		case "rootfs":
			return fail("unable to delete required option '%s'", d)
		case "description":
			conf.Description = ""
		}
		delete(conf.Keys, d)
	}
	if d, ok := params["description"]; ok {
		conf.Description = d
		delete(params, "description")
	}
	disk := nextDiskIndex(vmid, conf)
	for k, v := range params {
		switch {
		case k == "rootfs":
			if allocRE.MatchString(strings.SplitN(v, ",", 2)[0]) {
				return fail("unable to modify read-only option: 'rootfs'")
			}
		case strings.HasPrefix(k, "mp") && pveschema.IndexedNameRE.MatchString(k):
			nv, err := allocVolume(vmid, k, v, &disk, false)
			if err == nil {
				err = chownNewVolume(vmid, conf, nv) // as create_disks (userns.go)
			}
			if err != nil {
				return err
			}
			params[k] = nv
		case strings.HasPrefix(k, "net") && pveschema.IndexedNameRE.MatchString(k):
			nv, err := checkNet(k, v)
			if err != nil {
				return err
			}
			params[k] = nv
		}
	}
	for k, v := range params {
		if k == "tags" {
			v = pveschema.UniqueTags(v) // as PVE stores them
		}
		conf.Keys[k] = v
	}
	return writeConf(vmid, conf)
}

func nextDiskIndex(vmid int, c *ctConf) int {
	max := -1
	re := regexp.MustCompile(fmt.Sprintf(`vm-%d-disk-(\d+)`, vmid))
	for _, v := range c.Keys {
		if m := re.FindStringSubmatch(v); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n > max {
				max = n
			}
		}
	}
	return max + 1
}

// ---------------------------------------------------------------- exec/enter

func pctExec(args []string) error {
	// pct exec <vmid> [--keep-env 0|1] -- <command> [args]
	vmid, c, err := parseVMIDCmd("exec", "", args, 1, "keep-env")
	if err != nil {
		return err
	}
	if len(c.extra) == 0 {
		return fail("missing command")
	}
	if _, err := loadConf(vmid); err != nil {
		return err
	}
	if !isRunning(vmid) {
		return fail("CT %d not running", vmid)
	}
	attach := []string{"-P", lxcPath(), "-n", strconv.Itoa(vmid)}
	// PVE 9 defaults keep-env to 0: the command starts from a clean
	// environment (plus the CT's lxc.environment).
	if v, _ := pveschema.ParseBoolean(c.opts["keep-env"]); v == "1" {
		attach = append(attach, "--keep-env")
	} else {
		attach = append(attach, "--clear-env", "--keep-var", "TERM")
	}
	attach = append(attach, "--")
	attach = append(attach, c.extra...)
	return execLXC("lxc-attach", attach...)
}

func pctEnter(args []string) error {
	vmid, _, err := parseVMIDCmd("enter", "", args, 1, "keep-env")
	if err != nil {
		return err
	}
	if _, err := loadConf(vmid); err != nil {
		return err
	}
	if !isRunning(vmid) {
		return fail("CT %d not running", vmid)
	}
	return execLXC("lxc-attach", "-P", lxcPath(), "-n", strconv.Itoa(vmid), "--clear-env", "--keep-var", "TERM")
}
