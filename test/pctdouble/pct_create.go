package main

// pct create: parameters, storage and mount checks, the config under its
// lock, template extraction.

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/test/pveschema"
)

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
