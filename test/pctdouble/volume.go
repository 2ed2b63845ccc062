package main

// Storage volumes as the double keeps them. Every CT volume, rootfs and mpN
// alike, is a directory volumes/STORAGE/VOLNAME/ (volid STORAGE:VOLNAME);
// its snapshots are copies under volumes/STORAGE/.snap/VOLNAME/SNAP/, in
// the order they were taken (.snap/VOLNAME/.order, what zfs list -s
// creation gives PVE).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// volOwnerRE is how the storage plugins' parse_volname find a volume's
// owner (pve-storage Plugin.pm parse_name_dir / LvmThinPlugin.pm
// parse_volname: vm-VMID-..., base-VMID-..., subvol-VMID-...).
var volOwnerRE = regexp.MustCompile(`^(?:\d+/)?(?:vm|base|subvol|basevol)-(\d+)-`)

// volumeOwner is the VMID a volume name belongs to, 0 for none.
func volumeOwner(name string) int {
	m := volOwnerRE.FindStringSubmatch(name)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// splitVolID splits STORAGE:VOLNAME; a path or garbage is not a volid.
func splitVolID(volid string) (string, string, bool) {
	if strings.HasPrefix(volid, "/") {
		return "", "", false
	}
	sid, name, ok := strings.Cut(volid, ":")
	if !ok || sid == "" || name == "" || strings.Contains(name, "..") {
		return "", "", false
	}
	return sid, name, true
}

func volumeDir(sid, name string) string { return statePath("volumes", sid, name) }

// volumeOf is the volume of a rootfs/mpN value (a property string whose
// default key is volume) or of an unusedN value (the volid itself).
func volumeOf(key, value string) string {
	if strings.HasPrefix(key, "unused") {
		return value
	}
	return mpProps(key, value)["volume"]
}

func mpProps(key, value string) map[string]string {
	name := "mp[n]"
	if key == "rootfs" {
		name = "rootfs"
	}
	return pveschema.SplitPropertyString(method("lxc-create").Properties[name].PropertyFormat, value)
}

// volumeKeys are rootfs and the mpN keys of a config section in
// valid_volume_keys order (foreach_volume).
func volumeKeys(keys map[string]string) []string {
	res := []string{}
	if _, ok := keys["rootfs"]; ok {
		res = append(res, "rootfs")
	}
	return append(res, sortedIndexed(keys, "mp")...)
}

// unusedKeys are the unusedN keys, in index order.
func unusedKeys(keys map[string]string) []string { return sortedIndexed(keys, "unused") }

// rootfsDir is the host directory of a CT's rootfs: the directory of its
// rootfs volume (or a path rootfs itself).
func rootfsDir(c *ctConf) (string, error) {
	vol := volumeOf("rootfs", c.Keys["rootfs"])
	if strings.HasPrefix(vol, "/") {
		return vol, nil
	}
	sid, name, ok := splitVolID(vol)
	if !ok {
		return "", fail("unable to parse volume ID '%s'", vol)
	}
	return volumeDir(sid, name), nil
}

// storageType is the type of a configured storage, or storage_config's
// "storage 'X' does not exist" (no enabled/node check, as Storage.pm
// storage_config).
func storageType(sid string) (string, error) {
	all, err := storages()
	if err != nil {
		return "", err
	}
	for _, s := range all {
		if s.Storage == sid {
			return s.Type, nil
		}
	}
	return "", fail("storage '%s' does not exist", sid)
}

// volumeExists: the volume's directory is there.
func volumeExists(sid, name string) bool {
	st, err := os.Stat(volumeDir(sid, name))
	return err == nil && st.IsDir()
}

// activateVolume is Plugin.pm activate_volume's check, run by mount_all
// and the prestart hook before a volume is mounted.
func activateVolume(volid string) error {
	sid, name, ok := splitVolID(volid)
	if !ok {
		return fmt.Errorf("unable to parse volume ID '%s'", volid)
	}
	if !volumeExists(sid, name) {
		return fmt.Errorf("volume '%s:%s' does not exist", sid, name)
	}
	return nil
}

// allocDisk is vdisk_alloc's choice of name (Plugin.pm find_free_diskname:
// the lowest vm-VMID-disk-N not yet on that storage) and the new, empty
// volume directory.
func allocDisk(sid string, vmid int) (string, error) {
	for i := 0; i < 1000; i++ { // Plugin.pm $MAX_VOLUMES_PER_GUEST
		name := fmt.Sprintf("vm-%d-disk-%d", vmid, i)
		if _, err := os.Lstat(volumeDir(sid, name)); err == nil {
			continue
		}
		if err := os.MkdirAll(volumeDir(sid, name), 0o755); err != nil {
			return "", fail("pctdouble: %v", err)
		}
		return name, nil
	}
	return "", fail("unable to allocate an image name for VM %d in storage '%s'", vmid, sid)
}

// vdiskFree is PVE::Storage::vdisk_free of a volume and its snapshots. It
// returns the lines lvremove prints on an LVM(-thin) storage
// (LvmThinPlugin.pm free_image: the volume's snapshots first).
func vdiskFree(volid string) ([]string, error) {
	sid, name, ok := splitVolID(volid)
	if !ok {
		return nil, fail("unable to parse volume ID '%s'", volid)
	}
	// A storage gone from storages.json: PVE's parse_volname would die
	// "storage 'X' does not exist"; the double still frees the directory
	// (TestMountPointAndStorage relies on it), silently.
	typ, _ := storageType(sid)
	var msgs []string
	lvm := typ == "lvmthin" || typ == "lvm"
	for _, s := range volumeSnapshots(sid, name) {
		if lvm {
			msgs = append(msgs, fmt.Sprintf("  Logical volume %q successfully removed.", "snap_"+name+"_"+s))
		}
	}
	_ = os.RemoveAll(snapRoot(sid, name))
	_ = os.Remove(filepath.Dir(snapRoot(sid, name))) // .snap, when empty
	if volumeExists(sid, name) {
		if err := os.RemoveAll(volumeDir(sid, name)); err != nil {
			return msgs, fail("pctdouble: %v", err)
		}
		if lvm {
			msgs = append(msgs, fmt.Sprintf("  Logical volume %q successfully removed.", name))
		}
	}
	return msgs, nil
}

// listOwnedVolumes is vdisk_list(..., $vmid, ...): the volids on the
// enabled storages whose name says VMID owns them, sorted.
func listOwnedVolumes(vmid int) []string {
	all, _ := storages()
	var res []string
	for _, s := range all {
		if s.Disabled {
			continue
		}
		ents, _ := os.ReadDir(statePath("volumes", s.Storage))
		for _, e := range ents {
			if e.IsDir() && volumeOwner(e.Name()) == vmid {
				res = append(res, s.Storage+":"+e.Name())
			}
		}
	}
	sort.Strings(res)
	return res
}

// ---------------------------------------------------------------- snapshots

func snapRoot(sid, name string) string { return statePath("volumes", sid, ".snap", name) }

// volumeSnapshots lists a volume's snapshots, oldest first.
func volumeSnapshots(sid, name string) []string {
	b, err := os.ReadFile(filepath.Join(snapRoot(sid, name), ".order"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func writeSnapOrder(sid, name string, list []string) error {
	if len(list) == 0 {
		err := os.RemoveAll(snapRoot(sid, name))
		_ = os.Remove(filepath.Dir(snapRoot(sid, name))) // .snap, when empty
		return err
	}
	return writeFileAtomic(filepath.Join(snapRoot(sid, name), ".order"), []byte(strings.Join(list, "\n")+"\n"))
}

// snapshotCapable is volume_has_feature('snapshot') of a CT volume (raw or
// subvol) by storage type (pve-storage 9.1.7: LvmThinPlugin, ZFSPoolPlugin,
// BTRFSPlugin, RBDPlugin yes; Plugin.pm (dir, nfs, cifs, cephfs, ...) and
// LVMPlugin only for qcow2, which a CT never has).
func snapshotCapable(typ string) bool {
	switch typ {
	case "lvmthin", "zfspool", "btrfs", "rbd":
		return true
	}
	return false
}

// hasSnapshotFeature is PVE::LXC::Config->has_feature('snapshot', $conf):
// every mount point, rootfs and each mpN, must be a volume on a storage
// that can snapshot it; a bind or device mount (a path) cannot
// (Storage.pm volume_has_feature returns undef for a path).
func hasSnapshotFeature(keys map[string]string) (bool, error) {
	for _, k := range volumeKeys(keys) {
		sid, _, ok := splitVolID(volumeOf(k, keys[k]))
		if !ok {
			return false, nil
		}
		typ, err := storageType(sid)
		if err != nil {
			return false, err
		}
		if !snapshotCapable(typ) {
			return false, nil
		}
	}
	return true, nil
}

// copyTree copies a directory as cp -a does (owners, modes, times, links).
func copyTree(src, dst string) error {
	if out, err := exec.Command("cp", "-a", "--", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// volumeSnapshot is PVE::Storage::volume_snapshot: the double copies the
// volume's directory.
func volumeSnapshot(volid, snap string) error {
	if err := activateVolume(volid); err != nil {
		return err
	}
	sid, name, _ := splitVolID(volid)
	dst := filepath.Join(snapRoot(sid, name), snap)
	_ = os.RemoveAll(dst) // a leftover of a killed run
	if err := os.MkdirAll(snapRoot(sid, name), 0o700); err != nil {
		return err
	}
	if err := copyTree(volumeDir(sid, name), dst); err != nil {
		return err
	}
	list := slices.DeleteFunc(volumeSnapshots(sid, name), func(s string) bool { return s == snap })
	return writeSnapOrder(sid, name, append(list, snap))
}

// volumeSnapshotDelete is PVE::Storage::volume_snapshot_delete.
func volumeSnapshotDelete(volid, snap string) error {
	sid, name, ok := splitVolID(volid)
	if !ok {
		return fmt.Errorf("unable to parse volume ID '%s'", volid)
	}
	if err := os.RemoveAll(filepath.Join(snapRoot(sid, name), snap)); err != nil {
		return err
	}
	return writeSnapOrder(sid, name, slices.DeleteFunc(volumeSnapshots(sid, name), func(s string) bool { return s == snap }))
}

// volumeRollbackPossible is PVE::Storage::volume_rollback_is_possible:
// a path cannot be rolled back; a ZFS volume only to its most recent
// snapshot (ZFSPoolPlugin.pm, the texts name the volid); LVM-thin, btrfs
// and RBD to any (their plugins return 1).
func volumeRollbackPossible(volid, snap string) error {
	sid, name, ok := splitVolID(volid)
	if !ok {
		if strings.HasPrefix(volid, "/") && fileExists(volid) {
			return fmt.Errorf("snapshot rollback file/device '%s' is not possible", volid)
		}
		return fmt.Errorf("unable to parse volume ID '%s'", volid)
	}
	typ, err := storageType(sid)
	if err != nil {
		return err
	}
	if typ != "zfspool" {
		return nil
	}
	list := volumeSnapshots(sid, name)
	i := slices.Index(list, snap)
	if i < 0 {
		return fmt.Errorf("can't rollback, snapshot '%s' does not exist on '%s'", snap, volid)
	}
	if i != len(list)-1 {
		return fmt.Errorf("can't rollback, '%s' is not most recent snapshot on '%s'", snap, volid)
	}
	return nil
}

// volumeSnapshotRollback is PVE::Storage::volume_snapshot_rollback: the
// volume's directory becomes the snapshot's copy again, exactly (files
// made since are gone).
func volumeSnapshotRollback(volid, snap string) error {
	sid, name, ok := splitVolID(volid)
	if !ok {
		return fmt.Errorf("unable to parse volume ID '%s'", volid)
	}
	src := filepath.Join(snapRoot(sid, name), snap)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("can't rollback, snapshot '%s' does not exist on '%s'", snap, volid) // guess for non-ZFS storages
	}
	if err := os.RemoveAll(volumeDir(sid, name)); err != nil {
		return err
	}
	return copyTree(src, volumeDir(sid, name))
}
