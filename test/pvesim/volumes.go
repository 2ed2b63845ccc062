package pvesim

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// CT volumes: rootfs and mpN are property strings whose default key is the
// volume (pve-container 6.1.10 src/PVE/LXC/Config.pm $rootfs_desc,
// $mp_desc), unusedN holds a bare volid. A volume belongs to the VMID its
// name carries (pve-storage 9.1.7 Plugin.pm parse_name_dir, LvmThinPlugin.pm
// parse_volname: vm-VMID-..., base-VMID-..., subvol-VMID-...), whatever CT's
// config names it.

var volOwnerRE = regexp.MustCompile(`^(?:\d+/)?(?:vm|base|subvol|basevol)-(\d+)-`)

// newDiskRE is pve-container LXC.pm $NEW_DISK_RE: STORAGE:SIZE (GiB,
// fractions allowed) asks for a new volume.
var newDiskRE = regexp.MustCompile(`^([^:\s]+):(\d+(?:\.\d+)?)$`)

// volumeOwner is the VMID a volid's name says owns it, 0 for none.
func volumeOwner(volid string) int {
	_, name, _ := strings.Cut(volid, ":")
	m := volOwnerRE.FindStringSubmatch(name)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// mpFormat is the property-string format of rootfs or mpN (from the
// embedded create schema).
func mpFormat(key string) map[string]*pveschema.Prop {
	if p := schemaFor("POST /nodes/{node}/lxc").Lookup(key); p != nil {
		return p.PropertyFormat
	}
	return nil
}

// mpProps splits a rootfs/mpN value into its keys.
func mpProps(key, value string) map[string]string {
	return pveschema.SplitPropertyString(mpFormat(key), value)
}

// volumeOf is the volume of a rootfs/mpN value, or the volid of unusedN.
func volumeOf(key, value string) string {
	if strings.HasPrefix(key, "unused") {
		return value
	}
	return mpProps(key, value)["volume"]
}

// isVolume: a storage volume, not a bind or device mount (classify_mountpoint).
func isVolume(vol string) bool { return vol != "" && !strings.HasPrefix(vol, "/") }

func indexedKeys(conf map[string]string, prefix string) []string {
	var keys []string
	for k := range conf {
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

// volumeKeys are rootfs and the mpN keys in valid_volume_keys order
// (AbstractConfig foreach_volume).
func volumeKeys(conf map[string]string) []string {
	var res []string
	if _, ok := conf["rootfs"]; ok {
		res = append(res, "rootfs")
	}
	return append(res, indexedKeys(conf, "mp")...)
}

// formatDiskSize is pve-common JSONSchema.pm format_size.
func formatDiskSize(b int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b >= u.n && b%u.n == 0 {
			return fmt.Sprintf("%d%s", b/u.n, u.s)
		}
	}
	return strconv.FormatInt(b, 10)
}

// newDiskSize is create_disks' size of a STORAGE:SIZE request in bytes:
// int(SIZE * 1024) KiB.
func newDiskSize(gib string) int64 {
	f, _ := strconv.ParseFloat(gib, 64)
	return int64(f*1024) * 1024 * 1024
}

// lvmType: the storage's lvcreate/lvremove print LVM's lines.
func lvmType(typ string) bool { return typ == "lvmthin" || typ == "lvm" }

// snapshotCapable is volume_has_feature('snapshot') of a CT volume by
// storage type (pve-storage 9.1.7: LvmThinPlugin, ZFSPoolPlugin,
// BTRFSPlugin, RBDPlugin yes; Plugin.pm and LVMPlugin.pm only for qcow2,
// which a CT volume never is).
func snapshotCapable(typ string) bool {
	switch typ {
	case "lvmthin", "zfspool", "btrfs", "rbd":
		return true
	}
	return false
}

// allocDisk is vdisk_alloc's name choice (Plugin.pm find_free_diskname:
// the lowest vm-VMID-disk-N not on that storage) and the new volume. It
// returns the volume and the line lvcreate prints, if any. Call with s.mu
// held.
func (s *Server) allocDisk(st *storage, vmid int, size int64) (*volume, []string) {
	for i := 0; ; i++ {
		volid := fmt.Sprintf("%s:vm-%d-disk-%d", st.id, vmid, i)
		if st.vols[volid] != nil {
			continue
		}
		v := &volume{volid: volid, content: "rootdir", format: "raw", size: size, ctime: s.now().Unix(), vmid: vmid}
		st.vols[volid] = v
		var lines []string
		if lvmType(st.typ) {
			lines = append(lines, fmt.Sprintf("  Logical volume \"vm-%d-disk-%d\" created.", vmid, i))
		}
		return v, lines
	}
}

// findVolume returns a volid's storage on node n and the volume (nil if
// absent).
func findVolume(n *node, volid string) (*storage, *volume) {
	sid, _, _ := strings.Cut(volid, ":")
	st := n.storages[sid]
	if st == nil {
		return nil, nil
	}
	return st, st.vols[volid]
}

// vdiskFree is pve-storage Storage.pm vdisk_free: LvmThinPlugin.pm
// free_image removes the volume's snapshots (snap_NAME_SNAP) first, then
// the volume if it exists; a missing one is no error. It returns the
// lines lvremove prints.
func vdiskFree(n *node, volid string) []string {
	st, v := findVolume(n, volid)
	if st == nil || v == nil {
		return nil
	}
	_, name, _ := strings.Cut(volid, ":")
	var lines []string
	if lvmType(st.typ) {
		for _, sn := range v.snaps {
			lines = append(lines, fmt.Sprintf("  Logical volume \"snap_%s_%s\" successfully removed.", name, sn))
		}
		lines = append(lines, "  Logical volume \""+name+"\" successfully removed.")
	}
	delete(st.vols, volid)
	return lines
}

// deleteMountpointVolume is pve-container LXC.pm delete_mountpoint_volume:
// a path is left alone, a volume is freed only if its name says vmid owns
// it, else the warning.
func deleteMountpointVolume(n *node, vmid int, vol string) []string {
	if !isVolume(vol) {
		return nil
	}
	if volumeOwner(vol) != vmid {
		return []string{fmt.Sprintf("ignore deletion of '%s', CT %d isn't the owner!", vol, vmid)}
	}
	return vdiskFree(n, vol)
}

// destroyVolumes is LXC.pm destroy_lxc_container's part on disks: every
// rootfs, mpN and unusedN volume of the config and its pending section,
// once each; with purgeUnreferenced also every volume of the node's
// storages the CT owns by name (vdisk_list).
func destroyVolumes(n *node, x *ct, purgeUnreferenced bool) []string {
	var lines []string
	seen := map[string]bool{}
	for _, conf := range []map[string]string{x.conf, x.pending} {
		for _, k := range append(volumeKeys(conf), indexedKeys(conf, "unused")...) {
			vol := volumeOf(k, conf[k])
			if seen[vol] {
				continue
			}
			seen[vol] = true
			lines = append(lines, deleteMountpointVolume(n, x.vmid, vol)...)
		}
	}
	if purgeUnreferenced {
		for _, sid := range sortedKeys(n.storages) {
			st := n.storages[sid]
			for _, id := range sortedKeys(st.vols) {
				if st.vols[id].content != "vztmpl" && volumeOwner(id) == x.vmid {
					lines = append(lines, vdiskFree(n, id)...)
				}
			}
		}
	}
	return lines
}

// addUnused is AbstractConfig.pm add_unused_volume: the lowest free
// unusedN, nothing if the volume is listed already; the error text or "".
func addUnused(conf map[string]string, vol string) string {
	free := -1
	for i := 255; i >= 0; i-- { // __config_max_unused_disks: 256
		k := fmt.Sprintf("unused%d", i)
		if v, ok := conf[k]; ok {
			if v == vol {
				return ""
			}
		} else {
			free = i
		}
	}
	if free < 0 {
		return "Too many unused volumes - please delete them first."
	}
	conf[fmt.Sprintf("unused%d", free)] = vol
	return ""
}

// usesVolume: a rootfs/mpN of conf is vol.
func usesVolume(conf map[string]string, vol string) bool {
	for _, k := range volumeKeys(conf) {
		if volumeOf(k, conf[k]) == vol {
			return true
		}
	}
	return false
}

// volumeInUse is Config.pm is_volume_in_use($conf, $volid, 1, 1): the
// current config, a snapshot or the pending changes use it.
func (x *ct) volumeInUse(vol string) bool {
	if usesVolume(x.conf, vol) || usesVolume(x.pending, vol) {
		return true
	}
	for _, sn := range x.snaps {
		if usesVolume(sn, vol) {
			return true
		}
	}
	return false
}

// dropUsedUnused is write_pct_config's clean-up: an unusedN whose volume
// the current config uses again goes.
func dropUsedUnused(conf map[string]string) {
	for _, k := range indexedKeys(conf, "unused") {
		if usesVolume(conf, conf[k]) {
			delete(conf, k)
		}
	}
}

// bareSizeRE: a mount point given as a size only (create_vm adds the
// "storage" parameter).
var bareSizeRE = regexp.MustCompile(`^\d+(?:\.\d+)?$`)

func isIndexedKey(k, prefix string) bool {
	m := pveschema.IndexedNameRE.FindStringSubmatch(k)
	return len(m) > 1 && m[1] == prefix
}

// storageConfig is storage.cfg's entry of sid (some node has it), or nil.
// Call with s.mu held.
func (s *Server) storageConfig(sid string) *storage {
	for _, name := range s.order {
		if st := s.nodes[name].storages[sid]; st != nil {
			return st
		}
	}
	return nil
}

// setPending puts a change into the CT's [pve:pending] section.
func (s *Server) setPending(x *ct, key, value string) {
	if x.pending == nil {
		x.pending = map[string]string{}
	}
	x.pending[key] = value
}

// applyMountpoint is Config.pm apply_pending_mountpoint on a stopped CT (or
// a new mpN of a running one, hot-plugged): STORAGE:SIZE allocates a
// volume (create_disks), an existing volume gets its size rescanned; a
// replaced volume becomes unusedN. It returns the value to store, or the
// error text.
func (s *Server) applyMountpoint(n *node, x *ct, key, value string) (string, string) {
	props := mpProps(key, value)
	if m := newDiskRE.FindStringSubmatch(props["volume"]); m != nil {
		st := n.storages[m[1]]
		if st == nil {
			return "", fmt.Sprintf("storage '%s' is not available on node '%s'", m[1], n.name)
		}
		v, _ := s.allocDisk(st, x.vmid, newDiskSize(m[2]))
		props["volume"], props["size"] = v.volid, formatDiskSize(v.size)
	} else if _, v := findVolume(n, props["volume"]); v != nil {
		props["size"] = formatDiskSize(v.size) // $rescan_volume
	}
	if old, ok := x.conf[key]; ok {
		if vol := volumeOf(key, old); isVolume(vol) {
			if msg := addUnused(x.conf, vol); msg != "" {
				return "", msg
			}
		}
	}
	return pveschema.PrintPropertyString(mpFormat(key), props), ""
}

// applyPending is vmconfig_apply_pending of what the simulator puts into
// the pending section (rootfs, an existing mpN of a running CT), as
// vm_start and the poststop hook run it.
func (s *Server) applyPending(x *ct) {
	p := x.pending
	x.pending = nil
	n := s.nodes[x.node]
	for _, k := range sortedKeys(p) {
		v := p[k]
		if isIndexedKey(k, "mp") {
			nv, msg := s.applyMountpoint(n, x, k, v)
			if msg != "" {
				s.setPending(x, k, v) // add_apply_error: warned, stays pending
				continue
			}
			v = nv
		}
		x.conf[k] = v
	}
	dropUsedUnused(x.conf)
}
