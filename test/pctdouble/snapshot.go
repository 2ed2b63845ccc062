package main

// pct snapshot / listsnapshot / rollback / delsnapshot: the front ends of
// pve-container 6.1.10 src/PVE/API2/LXC/Snapshot.pm, whose workers run
// pve-guest-common 6.0.2 src/PVE/AbstractConfig.pm snapshot_create,
// snapshot_rollback and snapshot_delete with the LXC parts of
// src/PVE/LXC/Config.pm. Snapshots are [NAME] sections of the config;
// each volume's snapshot is a copy of its directory (volume.go).

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxcage/proxcage/test/pveschema"
)

func init() {
	pctUsage["snapshot"] = "pct snapshot <vmid> <snapname> [OPTIONS]"
	pctUsage["listsnapshot"] = "pct listsnapshot <vmid>"
	pctUsage["rollback"] = "pct rollback <vmid> <snapname> [OPTIONS]"
	pctUsage["delsnapshot"] = "pct delsnapshot <vmid> <snapname> [OPTIONS]"
}

// snapNameRE is pve-common 9.2.1 JSONSchema.pm $CONFIGID_RE, as
// pve_verify_configid anchors it (at least two characters, any case;
// test/pveschema's pve-configid now uses the same pattern).
var snapNameRE = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]+$`)

// parseSnapCmd parses "<vmid> <snapname> [OPTIONS]" and checks snapname
// as the pve-snapshot-name standard option (format pve-configid,
// maxLength 40).
func parseSnapCmd(sub string, args []string, opts ...string) (int, string, *cliArgs, error) {
	vmid, c, err := parseVMIDCmd(sub, "", args, 2, opts...)
	if err != nil {
		return 0, "", nil, err
	}
	name := c.pos[1]
	errs := pveschema.Errors{}
	if !snapNameRE.MatchString(name) {
		errs.Add("snapname", fmt.Sprintf("invalid format - invalid configuration ID '%s'", name))
	} else if len(name) > 40 {
		errs.Add("snapname", "value may only be 40 characters long")
	}
	if len(errs) > 0 {
		return 0, "", nil, paramError(errs, pctUsage[sub])
	}
	return vmid, name, c, nil
}

func pctSnapshot(args []string) error {
	vmid, name, c, err := parseSnapCmd("snapshot", args, "description")
	if err != nil {
		return err
	}
	// Snapshot.pm snapshot: refused before the worker.
	if name == "current" || name == "vzdump" {
		return fail("unable to use snapshot name '%s' (reserved name)", name)
	}
	return snapshotCreate(vmid, name, c.opts["description"])
}

func pctDelsnapshot(args []string) error {
	vmid, name, c, err := parseSnapCmd("delsnapshot", args, "force")
	if err != nil {
		return err
	}
	force, _ := pveschema.ParseBoolean(c.opts["force"])
	return snapshotDelete(vmid, name, force == "1", nil)
}

func pctRollback(args []string) error {
	vmid, name, c, err := parseSnapCmd("rollback", args, "start")
	if err != nil {
		return err
	}
	if err := snapshotRollback(vmid, name); err != nil {
		return err
	}
	if start, _ := pveschema.ParseBoolean(c.opts["start"]); start == "1" {
		return pctStart([]string{strconv.Itoa(vmid)}) // API2::LXC::Status->vm_start
	}
	return nil
}

// withConf runs fn on the CT's config under the state lock (lock_config).
func withConf(vmid int, fn func(*ctConf) error) error {
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	return fn(conf)
}

// snapshotCopyConfig is __snapshot_copy_config: every key but snapshots,
// snapstate, snaptime, vmstate, lock, digest, description and unusedN
// (the raw lxc.* entries and env included).
func snapshotCopyConfig(src, dst *ctConf) {
	for k, v := range src.Keys {
		switch {
		case k == "snapstate" || k == "snaptime" || k == "vmstate" || k == "lock" || k == "digest" || k == "description":
		case isIndexed(k, "unused"):
		default:
			dst.Keys[k] = v
		}
	}
	dst.Raw = append([][2]string(nil), src.Raw...)
}

func isTemplate(c *ctConf) bool { return c.Keys["template"] == "1" }

// snapshotCreate is AbstractConfig snapshot_create: __snapshot_prepare
// (checks, lock: snapshot, the [NAME] section with snapstate: prepare),
// the volume snapshots (a running CT is not frozen by the double: PVE
// freezes it for the moment of the snapshot), __snapshot_commit.
func snapshotCreate(vmid int, name, comment string) error {
	var snap *ctConf
	err := withConf(vmid, func(conf *ctConf) error {
		if isTemplate(conf) {
			return fail("you can't take a snapshot if it's a template")
		}
		if err := checkLock(conf); err != nil {
			return err
		}
		if _, ok := conf.Snapshots[name]; ok {
			return fail("snapshot name '%s' already used", name)
		}
		ok, err := hasSnapshotFeature(conf.Keys)
		if err != nil {
			return err
		}
		if !ok {
			return fail("snapshot feature is not available")
		}
		names := make([]string, 0, len(conf.Snapshots))
		for n := range conf.Snapshots {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if conf.Snapshots[n].Keys["parent"] == name {
				fmt.Fprintf(os.Stderr, "deleting parent '%s' reference from '%s' to avoid bogus snapshot cycle.\n", name, n)
				delete(conf.Snapshots[n].Keys, "parent")
			}
		}
		conf.Keys["lock"] = "snapshot"
		snap = newConf()
		snapshotCopyConfig(conf, snap)
		snap.Keys["snapstate"] = "prepare"
		snap.Keys["snaptime"] = strconv.FormatInt(time.Now().Unix(), 10)
		snap.Description = comment
		conf.Snapshots[name] = snap
		return writeConf(vmid, conf)
	})
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, k := range volumeKeys(snap.Keys) {
		if err = volumeSnapshot(volumeOf(k, snap.Keys[k]), name); err != nil {
			break
		}
		done[k] = true
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapshot create failed: starting cleanup")
		if derr := snapshotDelete(vmid, name, true, done); derr != nil {
			fmt.Fprintln(os.Stderr, derr.Error())
		}
		return fail("%v", err)
	}
	return withConf(vmid, func(conf *ctConf) error {
		if conf.Keys["lock"] != "snapshot" {
			return fail("missing snapshot lock")
		}
		s, ok := conf.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		if s.Keys["snapstate"] != "prepare" {
			return fail("wrong snapshot state")
		}
		delete(s.Keys, "snapstate")
		delete(conf.Keys, "lock")
		conf.Keys["parent"] = name
		return writeConf(vmid, conf)
	})
}

// snapshotDelete is AbstractConfig snapshot_delete: lock snapshot-delete
// (the caller's snapshot lock when cleaning up a failed create: done names
// the volumes it snapshotted), snapstate: delete, each volume's snapshot
// removed (an error ends it, the lock left, unless force), then the
// section goes, the parent links skip it, and its volumes are added as
// unusedN (the write drops those the config still uses: so a volume only
// the snapshot had, e.g. a swapped-out rootfs, stays as unusedN).
func snapshotDelete(vmid int, name string, force bool, done map[string]bool) error {
	expected := "snapshot-delete"
	if done != nil {
		expected = "snapshot"
	}
	var snap *ctConf
	err := withConf(vmid, func(conf *ctConf) error {
		s, ok := conf.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		if done == nil { // set_lock
			if err := checkLock(conf); err != nil {
				return err
			}
			conf.Keys["lock"] = expected
		}
		if conf.Keys["lock"] != expected {
			return fail("encountered invalid lock, expected '%s'", expected)
		}
		if isTemplate(conf) {
			if done == nil {
				_ = writeConf(vmid, conf) // the lock was set by set_lock already
			}
			return fail("you can't delete a snapshot if vm is a template")
		}
		s.Keys["snapstate"] = "delete"
		snap = s
		return writeConf(vmid, conf)
	})
	if err != nil {
		return err
	}
	var unused []string
	for _, k := range volumeKeys(snap.Keys) {
		if done != nil && !done[k] {
			continue
		}
		vol := volumeOf(k, snap.Keys[k])
		if strings.HasPrefix(vol, "/") {
			continue
		}
		if err := volumeSnapshotDelete(vol, name); err != nil {
			if !force {
				return fail("%v", err)
			}
			fmt.Fprintln(os.Stderr, err.Error())
			continue
		}
		unused = append(unused, vol)
	}
	return withConf(vmid, func(conf *ctConf) error {
		if conf.Keys["lock"] != expected {
			return fail("encountered invalid lock, expected '%s'", expected)
		}
		s, ok := conf.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		relink := func(c *ctConf) {
			if c.Keys["parent"] == name {
				if p := s.Keys["parent"]; p != "" {
					c.Keys["parent"] = p
				} else {
					delete(c.Keys, "parent")
				}
			}
		}
		relink(conf)
		for n, o := range conf.Snapshots {
			if n != name {
				relink(o)
			}
		}
		delete(conf.Snapshots, name)
		delete(conf.Keys, "lock")
		for _, v := range unused {
			if err := addUnused(conf, v); err != nil {
				return err
			}
		}
		return writeConf(vmid, conf)
	})
}

// snapshotRollback is AbstractConfig snapshot_rollback: each volume's
// rollback must be possible, the snapshot complete, no lock; a running CT
// is stopped (Config.pm __snapshot_rollback_vm_stop: vm_stop forced);
// lock: rollback while the volumes are rolled back; then the snapshot's
// config becomes the current one, keeping the current description and
// unusedN, the current volumes the snapshot lacks added as unusedN
// (__snapshot_rollback_get_unused), pending changes dropped.
func snapshotRollback(vmid int, name string) error {
	var snap *ctConf
	err := withConf(vmid, func(conf *ctConf) error {
		if isTemplate(conf) {
			return fail("you can't rollback if vm is a template")
		}
		s, ok := conf.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		for _, k := range volumeKeys(s.Keys) {
			if err := volumeRollbackPossible(volumeOf(k, s.Keys[k]), name); err != nil {
				return fail("%v", err)
			}
		}
		if st := s.Keys["snapstate"]; st != "" {
			return fail("unable to rollback to incomplete snapshot (snapstate = %s)", st)
		}
		if err := checkLock(conf); err != nil {
			return err
		}
		if isRunning(vmid) {
			if err := stopCT(vmid); err != nil {
				return err
			}
		}
		if isRunning(vmid) {
			return fail("unable to rollback vm %d: vm is running", vmid)
		}
		conf.Keys["lock"] = "rollback"
		snap = s
		return writeConf(vmid, conf)
	})
	if err != nil {
		return err
	}
	for _, k := range volumeKeys(snap.Keys) {
		vol := volumeOf(k, snap.Keys[k])
		if strings.HasPrefix(vol, "/") {
			continue
		}
		if err := volumeSnapshotRollback(vol, name); err != nil {
			return fail("%v", err) // lock: rollback stays, as on PVE
		}
	}
	return withConf(vmid, func(conf *ctConf) error {
		if conf.Keys["lock"] != "rollback" {
			return fail("got wrong lock")
		}
		delete(conf.Keys, "lock")
		s, ok := conf.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		inSnap := map[string]bool{}
		for _, k := range volumeKeys(s.Keys) {
			inSnap[volumeOf(k, s.Keys[k])] = true
		}
		for _, k := range volumeKeys(conf.Keys) {
			if vol := volumeOf(k, conf.Keys[k]); !strings.HasPrefix(vol, "/") && !inSnap[vol] {
				if err := addUnused(conf, vol); err != nil {
					return err
				}
			}
		}
		// __snapshot_apply_config
		next := &ctConf{Description: conf.Description, Keys: map[string]string{}, Snapshots: conf.Snapshots}
		for _, k := range unusedKeys(conf.Keys) {
			next.Keys[k] = conf.Keys[k]
		}
		snapshotCopyConfig(s, next)
		next.Keys["parent"] = name
		return writeConf(vmid, next)
	})
}

// pctListsnapshot is GuestHelpers.pm print_snapshot_tree over Snapshot.pm
// list (the snapshots plus "current", "You are here!"): a tree by parent,
// siblings by snaptime ("current" last), `%s %-Ns %-23s %s` with N =
// 30 - len(prefix), the description's first line or "no-description".
func pctListsnapshot(args []string) error {
	vmid, _, err := parseVMIDCmd("listsnapshot", "", args, 1)
	if err != nil {
		return err
	}
	conf, err := loadConf(vmid)
	if err != nil {
		return err
	}
	type entry struct {
		name, parent, desc string
		time               int64
		hasTime            bool
		children           []string
	}
	entries := map[string]*entry{}
	for n, s := range conf.Snapshots {
		t, _ := strconv.ParseInt(s.Keys["snaptime"], 10, 64)
		entries[n] = &entry{name: n, parent: s.Keys["parent"], desc: s.Description, time: t, hasTime: true}
	}
	entries["current"] = &entry{name: "current", parent: conf.Keys["parent"], desc: "You are here!"}
	less := func(a, b string) bool {
		ea, eb := entries[a], entries[b]
		if ea.hasTime != eb.hasTime {
			return ea.hasTime
		}
		if ea.time != eb.time {
			return ea.time < eb.time
		}
		return a < b // Perl: hash order; the double: by name
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var roots []string
	for _, n := range names {
		e := entries[n]
		if p, ok := entries[e.parent]; ok && e.parent != "" && e.parent != "current" {
			p.children = append(p.children, n)
		} else {
			roots = append(roots, n)
		}
	}
	firstLine := regexp.MustCompile(`(?m)(.*)$`)
	var walk func(prefix, n string)
	walk = func(prefix, n string) {
		e := entries[n]
		desc := e.desc
		if desc == "" {
			desc = "no-description"
		}
		desc = firstLine.FindString(desc)
		ts := ""
		if e.hasTime {
			ts = time.Unix(e.time, 0).Format("2006-01-02 15:04:05")
		}
		fmt.Printf("%s %-*s %-23s %s\n", prefix, max(30-len(prefix), 0), n, ts, desc)
		sort.Slice(e.children, func(i, j int) bool { return less(e.children[i], e.children[j]) })
		for _, c := range e.children {
			walk(" "+prefix, c)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return less(roots[i], roots[j]) })
	for _, r := range roots {
		walk("`->", r)
	}
	return nil
}
