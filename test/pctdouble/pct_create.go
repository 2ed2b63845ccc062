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
	"syscall"
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
	var allocated []string
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
		var err2 error
		if allocated, err2 = prepareCreate(vmid, params, conf); err2 != nil {
			return nil, err2
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

	// The worker: from here on failures remove the config again, and the
	// volumes the create allocated (create_vm: destroy_disks($vollist)).
	if err := createWorker(vmid, ostemplate, conf); err != nil {
		if unlock, lerr := lockState(); lerr == nil {
			for _, v := range allocated {
				_, _ = vdiskFree(v)
			}
			_ = os.RemoveAll(filepath.Join(lxcPath(), strconv.Itoa(vmid)))
			_ = os.Remove(confPath(vmid))
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
// volumes and fills conf; it returns the volids it allocated. It runs
// under the state lock.
func prepareCreate(vmid int, params map[string]string, conf *ctConf) ([]string, error) {
	if err := checkCreateStorages(params); err != nil {
		return nil, err
	}
	if d, ok := params["description"]; ok {
		conf.Description = d
		delete(params, "description")
	}
	// rootfs first, then mount points in index order (create_disks); a
	// failure frees what was allocated, as create_disks does.
	var allocated []string
	undo := func(err error) ([]string, error) {
		for _, v := range allocated {
			_, _ = vdiskFree(v)
		}
		return nil, err
	}
	for _, k := range append([]string{"rootfs"}, sortedIndexed(params, "mp")...) {
		v, isNew, err := allocVolume(vmid, k, params[k])
		if err != nil {
			return undo(err)
		}
		if isNew {
			allocated = append(allocated, volumeOf(k, v))
		}
		params[k] = v
	}
	for _, k := range sortedIndexed(params, "net") {
		v, err := checkNet(k, params[k])
		if err != nil {
			return undo(err)
		}
		params[k] = v
	}
	for k, v := range params {
		if k == "tags" {
			v = pveschema.UniqueTags(v) // as PVE stores them
		}
		conf.Keys[k] = v
	}
	return allocated, nil
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
// volume vm-<vmid>-disk-N (rootdir content required; N the lowest free on
// that storage, as vdisk_alloc); an absolute path is a bind mount (checked
// when mounted); anything else must be a volume on a storage with rootdir
// content. It returns the new value and whether it allocated.
func allocVolume(vmid int, key, value string) (string, bool, error) {
	isRoot := key == "rootfs"
	format := method("lxc-create").Properties["rootfs"].PropertyFormat
	if !isRoot {
		format = method("lxc-create").Properties["mp[n]"].PropertyFormat
	}
	mp := pveschema.SplitPropertyString(format, value)
	vol := mp["volume"]
	if m := allocRE.FindStringSubmatch(vol); m != nil {
		if _, err := storageWithContent(m[1], "rootdir"); err != nil {
			return "", false, err
		}
		gib, _ := strconv.ParseFloat(m[2], 64)
		name, err := allocDisk(m[1], vmid)
		if err != nil {
			return "", false, err
		}
		mp["volume"] = m[1] + ":" + name
		mp["size"] = formatDiskSize(int64(gib * (1 << 30)))
		return pveschema.PrintPropertyString(format, mp), true, nil
	}
	if strings.HasPrefix(vol, "/") {
		if isRoot {
			return "", false, fail("rootfs as a bind mount is not supported by pctdouble")
		}
		return pveschema.PrintPropertyString(format, mp), false, nil // checked when mounted (mountAll)
	}
	sid, _, ok := splitVolID(vol)
	if !ok {
		return "", false, fail("unable to parse volume ID '%s'", vol)
	}
	if _, err := storageWithContent(sid, "rootdir"); err != nil {
		return "", false, err
	}
	return pveschema.PrintPropertyString(format, mp), false, nil
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
	st, err := findStorage(sid) // Create.pm restore_archive: storage_check_enabled
	if err != nil {
		return err
	}
	archive := filepath.Join(st.templateDir(), file)
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
	root, err := rootfsDir(conf)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	// New volumes belong to the CT's mapped root, and the template is
	// extracted inside the CT's user namespace, as PVE does (userns.go).
	if err := chownNewVolumes(vmid, conf); err != nil {
		return err
	}
	// mount_all made each mount point's directory in the rootfs (owned by
	// the mapped root) and mounted the volume there; the double extracts
	// into the rootfs and moves each volume's subtree over afterwards.
	if err := makeMountDirs(root, conf); err != nil {
		return err
	}
	if err := extractTemplate(archive, root, conf); err != nil {
		return err
	}
	oci := false
	if fileExists(filepath.Join(root, "oci-layout")) && fileExists(filepath.Join(root, "index.json")) {
		oci = true
		if err := flattenOCI(vmid, root, conf); err != nil {
			return err
		}
		if err := shiftOwners(root, conf); err != nil {
			return err
		}
	}
	if err := moveIntoVolumes(root, conf, oci); err != nil {
		return err
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

// removeCT is destroy_lxc_container (pve-container 6.1.10 src/PVE/LXC.pm;
// state lock held by the caller): each volume of rootfs, mpN, unusedN and
// the pending section, once, through delete_mountpoint_volume (freed only
// if the CT owns it, else the "isn't the owner!" warning); with
// purgeUnreferenced also every other vm-VMID- volume on the storages
// (vdisk_list); then the LXC dir and the config. It returns the lines
// lvremove prints. Volume snapshots go with their volume (vdisk_free).
func removeCT(vmid int, c *ctConf, purgeUnreferenced bool) []string {
	var msgs []string
	seen := map[string]bool{}
	remove := func(keys map[string]string) {
		for _, k := range append(volumeKeys(keys), unusedKeys(keys)...) {
			vol := volumeOf(k, keys[k])
			if seen[vol] {
				continue
			}
			seen[vol] = true
			m, err := deleteMountpointVolume(vmid, vol)
			msgs = append(msgs, m...)
			if err != nil {
				fmt.Fprintln(os.Stderr, err.Error())
			}
		}
	}
	remove(c.Keys)
	if c.Pending != nil {
		remove(c.Pending.Keys)
	}
	if purgeUnreferenced {
		for _, vol := range listOwnedVolumes(vmid) {
			m, err := vdiskFree(vol)
			msgs = append(msgs, m...)
			if err != nil {
				fmt.Fprintln(os.Stderr, err.Error()) // warn $@ if $@
			}
		}
	}
	_ = os.RemoveAll(filepath.Join(lxcPath(), strconv.Itoa(vmid)))
	_ = os.Remove(confPath(vmid))
	return msgs
}

// deleteMountpointVolume is LXC.pm delete_mountpoint_volume: paths are
// left alone; a volume is freed only if its name says this CT owns it.
func deleteMountpointVolume(vmid int, vol string) ([]string, error) {
	if strings.HasPrefix(vol, "/") {
		return nil, nil
	}
	sid, name, ok := splitVolID(vol)
	if !ok {
		return nil, fmt.Errorf("unable to parse volume ID '%s'", vol)
	}
	if volumeOwner(name) != vmid {
		fmt.Fprintf(os.Stderr, "ignore deletion of '%s', CT %d isn't the owner!\n", vol, vmid)
		return nil, nil
	}
	return vdiskFree(sid + ":" + name)
}

// mountVolumes are the mpN mount points backed by a storage volume, sorted
// by mount path as PVE's foreach_mountpoint mounts them.
func mountVolumes(conf *ctConf) []map[string]string {
	var res []map[string]string
	for _, k := range sortedIndexed(conf.Keys, "mp") {
		mp := mpProps(k, conf.Keys[k])
		if _, _, ok := splitVolID(mp["volume"]); ok && mp["mp"] != "" {
			mp["key"] = k
			res = append(res, mp)
		}
	}
	sort.SliceStable(res, func(i, j int) bool { return filepath.Clean(res[i]["mp"]) < filepath.Clean(res[j]["mp"]) })
	return res
}

// makeMountDirs is mount_all's __mount_prepare_rootdir for each volume
// mount point: the path inside the rootfs, each missing component made
// 0755 and owned by the CT's mapped root (walk_tree_nofollow with mkdir).
// As on PVE, tar --skip-old-files then leaves these directories' owner and
// mode alone.
func makeMountDirs(root string, conf *ctConf) error {
	_, uid, gid, err := parseIDMaps(conf)
	if err != nil {
		return err
	}
	for _, mp := range mountVolumes(conf) {
		if _, err := mkdirNoFollow(root, mp["mp"], uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// mkdirNoFollow is walk_tree_nofollow(..., mkdir=1, root_uid, root_gid):
// it walks path below root without following symlinks, making what is
// missing (0755, chowned), and returns the directory.
func mkdirNoFollow(root, path string, uid, gid int) (string, error) {
	cur := root
	for _, part := range strings.Split(filepath.Clean("/"+path), "/") {
		if part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		st, err := os.Lstat(next)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", err
			}
			if err := os.Chown(next, uid, gid); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !st.IsDir():
			return "", fmt.Errorf("cannot open directory %s: Not a directory", next) // walk_tree_nofollow's "cannot open directory $dir: $!"
		}
		cur = next
	}
	return cur, nil
}

// moveIntoVolumes gives each volume mount point what the extraction wrote
// under its path, as if the volume had been mounted there (deepest path
// first, so a nested volume's files do not end up in the outer one). An
// entry the volume already has is kept (tar --skip-old-files). For an OCI
// archive, which the double flattens elsewhere, the volume's root also
// takes the image directory's owner and mode (guess: proxmox-oci's tar
// unpacking is not traced), and the directory left in the rootfs is made
// again as mount_all makes it.
func moveIntoVolumes(root string, conf *ctConf, oci bool) error {
	mps := mountVolumes(conf)
	_, uid, gid, err := parseIDMaps(conf)
	if err != nil {
		return err
	}
	for i := len(mps) - 1; i >= 0; i-- {
		sid, name, _ := splitVolID(mps[i]["volume"])
		dst := volumeDir(sid, name)
		src := filepath.Join(root, filepath.Clean("/"+mps[i]["mp"]))
		st, err := os.Lstat(src)
		if err != nil || !st.IsDir() {
			continue // the image has nothing (or a non-directory) there
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			to := filepath.Join(dst, e.Name())
			if _, err := os.Lstat(to); err == nil {
				continue
			}
			if err := os.Rename(filepath.Join(src, e.Name()), to); err != nil {
				return err
			}
		}
		if oci {
			if err := copyOwnerMode(src, dst); err != nil {
				return err
			}
			if err := os.Chown(src, uid, gid); err != nil {
				return err
			}
			if err := os.Chmod(src, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyOwnerMode gives dst the owner, group and mode of src.
func copyOwnerMode(src, dst string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(src, &st); err != nil {
		return err
	}
	if err := os.Chown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return syscall.Chmod(dst, st.Mode&0o7777) // after chown, which clears setuid/setgid
}
