package pvesim

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Snapshots: pve-container 6.1.10 src/PVE/API2/LXC/Snapshot.pm, whose
// workers run pve-guest-common 6.0.2 src/PVE/AbstractConfig.pm
// snapshot_create / snapshot_delete / snapshot_rollback with the LXC parts
// of src/PVE/LXC/Config.pm. A snapshot is a [NAME] section of the config
// (here a copy of the config map) and a record on each of its volumes (the
// simulator has no data). The API handlers check only the reserved names;
// everything else happens in the worker. The simulator runs a worker's
// first config update (the prepare step: checks, lock, section) when the
// task starts, so the lock shows while it runs, and the rest when it ends.

// snapshotCopyConfig is __snapshot_copy_config: every key but snapstate,
// snaptime, vmstate, lock, digest, description and unusedN.
func snapshotCopyConfig(src, dst map[string]string) {
	for k, v := range src {
		switch {
		case k == "snapstate" || k == "snaptime" || k == "vmstate" || k == "lock" || k == "digest" || k == "description":
		case isIndexedKey(k, "unused"):
		default:
			dst[k] = v
		}
	}
}

func isTemplate(conf map[string]string) bool { return conf["template"] == "1" }

// hasSnapshotFeature is Config.pm has_feature('snapshot'): every rootfs/mpN
// must be a volume on a storage whose type can snapshot it (Storage.pm
// volume_has_feature: undef for a path; storage_config dies for an
// unknown storage). It returns the answer or the error text.
func (s *Server) hasSnapshotFeature(conf map[string]string) (bool, string) {
	for _, k := range volumeKeys(conf) {
		vol := volumeOf(k, conf[k])
		if !isVolume(vol) {
			return false, ""
		}
		sid, _, _ := strings.Cut(vol, ":")
		st := s.storageConfig(sid)
		if st == nil {
			return false, fmt.Sprintf("storage '%s' does not exist", sid)
		}
		if !snapshotCapable(st.typ) {
			return false, ""
		}
	}
	return true, ""
}

// snapCT is the worker's load_config: the CT of the path's VMID on this
// node, or the error text.
func (s *Server) snapCT(n *node, c *call) (*ct, string) {
	vmid, _ := strconv.Atoi(c.p["vmid"])
	x := s.cts[vmid]
	if x == nil || x.node != n.name {
		return nil, fmt.Sprintf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", n.name, vmid)
	}
	return x, ""
}

func failed(fail string) bool { return fail != "" && !strings.HasPrefix(fail, "WARNINGS: ") }

// listSnapshots is Snapshot.pm list: each section's name, snaptime (0 if
// none), description (empty if none), parent and snapstate if set, then
// "current" with the config's digest, running and parent. PVE walks a
// hash; the simulator sorts by snaptime, then name.
func (s *Server) listSnapshots(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.ct(c)
	if err != nil {
		return nil, err
	}
	names := sortedKeys(x.snaps)
	sort.SliceStable(names, func(i, j int) bool {
		a, _ := strconv.ParseInt(x.snaps[names[i]]["snaptime"], 10, 64)
		b, _ := strconv.ParseInt(x.snaps[names[j]]["snaptime"], 10, 64)
		return a < b
	})
	rows := []map[string]any{}
	for _, name := range names {
		sn := x.snaps[name]
		t, _ := strconv.ParseInt(sn["snaptime"], 10, 64)
		row := map[string]any{"name": name, "snaptime": t, "description": sn["description"]}
		if p, ok := sn["parent"]; ok {
			row["parent"] = p
		}
		if st := sn["snapstate"]; st != "" {
			row["snapstate"] = st
		}
		rows = append(rows, row)
	}
	cur := map[string]any{"name": "current", "digest": x.digest(), "running": 0, "description": "You are here!"}
	if x.status == "running" {
		cur["running"] = 1
	}
	if p, ok := x.conf["parent"]; ok {
		cur["parent"] = p
	}
	return append(rows, cur), nil
}

// createSnapshot is Snapshot.pm snapshot (task vzsnapshot) and
// snapshot_create: __snapshot_prepare (template, check_lock, name used,
// has_feature, the parent-cycle warning, lock: snapshot, the section with
// snapstate: prepare and snaptime), the volume snapshots (a running CT is
// not frozen here), __snapshot_commit (parent: NAME, lock and snapstate
// gone). A failure in the volume step (FailNextTask) cleans up as
// snapshot_delete(force) does: the section and the lock go.
func (s *Server) createSnapshot(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	name := c.p["snapname"]
	if name == "current" || name == "vzdump" {
		return nil, fail500("unable to use snapshot name '%s' (reserved name)", name)
	}
	x, prepErr := s.snapCT(n, c)
	var warn []string
	if prepErr == "" {
		switch {
		case isTemplate(x.conf):
			prepErr = "you can't take a snapshot if it's a template"
		case x.lock != "":
			prepErr = fmt.Sprintf("CT is locked (%s)", x.lock)
		case x.snaps[name] != nil:
			prepErr = fmt.Sprintf("snapshot name '%s' already used", name)
		default:
			if ok, msg := s.hasSnapshotFeature(x.conf); msg != "" {
				prepErr = msg
			} else if !ok {
				prepErr = "snapshot feature is not available"
			}
		}
	}
	var sn map[string]string
	if prepErr == "" {
		for _, other := range sortedKeys(x.snaps) {
			if x.snaps[other]["parent"] == name {
				warn = append(warn, fmt.Sprintf("deleting parent '%s' reference from '%s' to avoid bogus snapshot cycle.", name, other))
				delete(x.snaps[other], "parent")
			}
		}
		x.lock = "snapshot"
		sn = map[string]string{}
		snapshotCopyConfig(x.conf, sn)
		sn["snapstate"] = "prepare"
		sn["snaptime"] = strconv.FormatInt(s.now().Unix(), 10)
		if d := c.p["description"]; d != "" {
			sn["description"] = d
		}
		if x.snaps == nil {
			x.snaps = map[string]map[string]string{}
		}
		x.snaps[name] = sn
	}
	return s.startTask(n.name, "vzsnapshot", c.p["vmid"], c.id.user, func(fail string) ([]string, string) {
		if prepErr != "" {
			return warn, prepErr
		}
		lines := warn
		if failed(fail) {
			lines = append(lines, "snapshot create failed: starting cleanup")
			delete(x.snaps, name)
			x.lock = ""
			return lines, fail
		}
		for _, k := range volumeKeys(sn) {
			vol := volumeOf(k, sn[k])
			st, v := findVolume(n, vol)
			if v == nil {
				continue
			}
			v.snaps = append(slices.DeleteFunc(v.snaps, func(o string) bool { return o == name }), name)
			if lvmType(st.typ) {
				_, vname, _ := strings.Cut(vol, ":")
				lines = append(lines, fmt.Sprintf("  Logical volume \"snap_%s_%s\" created.", vname, name))
			}
		}
		if x.lock != "snapshot" {
			return lines, "missing snapshot lock"
		}
		delete(sn, "snapstate")
		x.lock = ""
		x.conf["parent"] = name
		return append(lines, warnLines(fail)...), fail
	}), nil
}

// deleteSnapshot is Snapshot.pm delsnapshot (task vzdelsnapshot) and
// snapshot_delete: "snapshot 'X' does not exist", set_lock
// (check_lock, lock: snapshot-delete), template refused (the lock stays),
// snapstate: delete; then each volume's snapshot removed (a failure ends
// it without force, lock and snapstate left), the parent links skip it,
// the section goes, and every volume of the section is added as unusedN
// (write_pct_config then drops those the current config uses: so a volume
// only the snapshot had stays unusedN). No replication, so no migration
// lock wait.
func (s *Server) deleteSnapshot(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	name := c.p["snapname"]
	force := c.p["force"] == "1"
	x, prepErr := s.snapCT(n, c)
	if prepErr == "" {
		switch {
		case x.snaps[name] == nil:
			prepErr = fmt.Sprintf("snapshot '%s' does not exist", name)
		case x.lock != "":
			prepErr = fmt.Sprintf("CT is locked (%s)", x.lock)
		default:
			x.lock = "snapshot-delete"
			if isTemplate(x.conf) {
				prepErr = "you can't delete a snapshot if vm is a template"
			} else {
				x.snaps[name]["snapstate"] = "delete"
			}
		}
	}
	return s.startTask(n.name, "vzdelsnapshot", c.p["vmid"], c.id.user, func(fail string) ([]string, string) {
		if prepErr != "" {
			return nil, prepErr
		}
		var lines []string
		if failed(fail) {
			if !force {
				return nil, fail
			}
			lines = append(lines, fail)
		}
		sn := x.snaps[name]
		var unused []string
		for _, k := range volumeKeys(sn) {
			vol := volumeOf(k, sn[k])
			if !isVolume(vol) {
				continue
			}
			if st, v := findVolume(n, vol); v != nil && slices.Contains(v.snaps, name) {
				v.snaps = slices.DeleteFunc(v.snaps, func(o string) bool { return o == name })
				if lvmType(st.typ) {
					_, vname, _ := strings.Cut(vol, ":")
					lines = append(lines, fmt.Sprintf("  Logical volume \"snap_%s_%s\" successfully removed.", vname, name))
				}
			}
			unused = append(unused, vol)
		}
		if x.lock != "snapshot-delete" {
			return lines, "encountered invalid lock, expected 'snapshot-delete'"
		}
		relink := func(conf map[string]string) {
			if conf["parent"] == name {
				if p := sn["parent"]; p != "" {
					conf["parent"] = p
				} else {
					delete(conf, "parent")
				}
			}
		}
		relink(x.conf)
		for other, o := range x.snaps {
			if other != name {
				relink(o)
			}
		}
		delete(x.snaps, name)
		x.lock = ""
		for _, vol := range unused {
			if msg := addUnused(x.conf, vol); msg != "" {
				return lines, msg
			}
		}
		dropUsedUnused(x.conf)
		return append(lines, warnLines(fail)...), fail
	}), nil
}

// rollbackPossible is Storage.pm volume_rollback_is_possible: zfspool only
// to the volume's most recent snapshot (ZFSPoolPlugin.pm, the texts name
// the volid); lvmthin, btrfs, rbd to any.
func (s *Server) rollbackPossible(n *node, vol, name string) string {
	sid, _, _ := strings.Cut(vol, ":")
	st := s.storageConfig(sid)
	if st == nil {
		return fmt.Sprintf("storage '%s' does not exist", sid)
	}
	if st.typ != "zfspool" {
		return ""
	}
	var snaps []string
	if _, v := findVolume(n, vol); v != nil {
		snaps = v.snaps
	}
	i := slices.Index(snaps, name)
	if i < 0 {
		return fmt.Sprintf("can't rollback, snapshot '%s' does not exist on '%s'", name, vol)
	}
	if i != len(snaps)-1 {
		return fmt.Sprintf("can't rollback, '%s' is not most recent snapshot on '%s'", name, vol)
	}
	return ""
}

// rollbackSnapshot is Snapshot.pm rollback (task vzrollback) and
// snapshot_rollback: template refused, "snapshot 'X' does not exist",
// volume_rollback_is_possible per volume, "unable to rollback to incomplete
// snapshot (snapstate = S)", check_lock, a running CT stopped
// (__snapshot_rollback_vm_stop), lock: rollback; then the volumes rolled
// back (an error leaves the lock), the current volumes the snapshot lacks
// added as unusedN (__snapshot_rollback_get_unused), the config the
// snapshot's plus the current description and unusedN
// (__snapshot_apply_config; pending changes gone), parent: NAME. start=1
// then calls vm_start, which forks its own vzstart task.
func (s *Server) rollbackSnapshot(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	name := c.p["snapname"]
	x, prepErr := s.snapCT(n, c)
	var sn map[string]string
	if prepErr == "" {
		sn = x.snaps[name]
		switch {
		case isTemplate(x.conf):
			prepErr = "you can't rollback if vm is a template"
		case sn == nil:
			prepErr = fmt.Sprintf("snapshot '%s' does not exist", name)
		}
	}
	if prepErr == "" {
		for _, k := range volumeKeys(sn) {
			if msg := s.rollbackPossible(n, volumeOf(k, sn[k]), name); msg != "" {
				prepErr = msg
				break
			}
		}
	}
	if prepErr == "" {
		switch {
		case sn["snapstate"] != "":
			prepErr = fmt.Sprintf("unable to rollback to incomplete snapshot (snapstate = %s)", sn["snapstate"])
		case x.lock != "":
			prepErr = fmt.Sprintf("CT is locked (%s)", x.lock)
		default:
			x.status = "stopped" // vm_stop($vmid, 1) if running
			x.lock = "rollback"
		}
	}
	user := c.id.user
	startAfter := c.p["start"] == "1"
	return s.startTask(n.name, "vzrollback", c.p["vmid"], user, func(fail string) ([]string, string) {
		if prepErr != "" {
			return nil, prepErr
		}
		if failed(fail) {
			return nil, fail
		}
		if x.lock != "rollback" {
			return nil, "got wrong lock"
		}
		x.lock = ""
		next := map[string]string{}
		for _, k := range volumeKeys(x.conf) {
			if vol := volumeOf(k, x.conf[k]); isVolume(vol) && !usesVolume(sn, vol) {
				if msg := addUnused(x.conf, vol); msg != "" {
					return nil, msg
				}
			}
		}
		for k, v := range x.conf {
			if k == "description" || isIndexedKey(k, "unused") {
				next[k] = v
			}
		}
		snapshotCopyConfig(sn, next)
		next["parent"] = name
		dropUsedUnused(next)
		x.conf, x.pending = next, nil
		if startAfter {
			s.startTask(n.name, "vzstart", c.p["vmid"], user, func(fail string) ([]string, string) {
				if failed(fail) {
					return nil, fail
				}
				if s.cts[x.vmid] != x {
					return nil, fmt.Sprintf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", n.name, x.vmid)
				}
				if x.status == "running" {
					return nil, fmt.Sprintf("CT %d already running", x.vmid)
				}
				x.status, x.started = "running", s.now()
				return warnLines(fail), fail
			})
		}
		return warnLines(fail), fail
	}), nil
}

// snapshotCmdIdx is Snapshot.pm snapshot_cmd_idx (no config read).
func (s *Server) snapshotCmdIdx(c *call) (any, *apiError) {
	return []map[string]any{{"cmd": "rollback"}, {"cmd": "config"}}, nil
}

// getSnapshotConfig is Snapshot.pm get_snapshot_config: the section as
// stored (no digest).
func (s *Server) getSnapshotConfig(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.ct(c)
	if err != nil {
		return nil, err
	}
	sn := x.snaps[c.p["snapname"]]
	if sn == nil {
		return nil, fail500("snapshot '%s' does not exist", c.p["snapname"])
	}
	return typedConf(sn), nil
}

// updateSnapshotConfig is Snapshot.pm update_snapshot_config: nothing
// without description; else under the config lock check_lock, the
// section, its description.
func (s *Server) updateSnapshotConfig(c *call) (any, *apiError) {
	d, ok := c.p["description"]
	if !ok {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.ct(c)
	if err != nil {
		return nil, err
	}
	if s.faults.LockTimeout {
		return nil, lockTimeout(x.vmid)
	}
	if x.lock != "" {
		return nil, fail500("CT is locked (%s)", x.lock)
	}
	sn := x.snaps[c.p["snapname"]]
	if sn == nil {
		return nil, fail500("snapshot '%s' does not exist", c.p["snapname"])
	}
	if d == "" {
		delete(sn, "description")
	} else {
		sn["description"] = d
	}
	return nil, nil
}
