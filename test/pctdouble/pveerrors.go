package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// Error conditions of a real node, with the real texts at the real stage
// (issue 14, point 8).

// checkCreateStorages is create_vm's check_and_activate_storage
// (pve-container 6.1.10 src/PVE/API2/LXC.pm) for rootfs and every mpN on a
// storage volume: the storage exists, is enabled and on this node
// (pve-storage Storage.pm storage_check_enabled), and takes container
// directories, else a 400 on "storage". It runs before the config is
// written, so its errors carry no "unable to create CT" prefix.
func checkCreateStorages(params map[string]string) error {
	for k, v := range params {
		if k != "rootfs" && !strings.HasPrefix(k, "mp") {
			continue
		}
		if m := pveschema.IndexedNameRE.FindStringSubmatch(k); k != "rootfs" && (len(m) < 2 || m[1] != "mp") {
			continue
		}
		vol, _, _ := strings.Cut(v, ",")
		vol = strings.TrimPrefix(vol, "volume=")
		if strings.HasPrefix(vol, "/") {
			continue // bind or device: not a storage
		}
		sid, _, ok := strings.Cut(vol, ":")
		if !ok {
			continue
		}
		s, err := findStorage(sid)
		if err != nil {
			return err
		}
		if !s.hasContent("rootdir") {
			return fail("400 Parameter verification failed.\nstorage: storage '%s' does not support container directories\n\n%s", sid, pctUsage["create"])
		}
	}
	return nil
}

// pveFault is the text (and effect) of a named condition of a real node,
// for the fault action "pve CONDITION" (faults.go):
//
//	noquorum     pve-cluster Cluster.pm check_cfs_quorum, the first check
//	             of every write
//	cfslock      a shared rootfs storage's cluster lock held elsewhere
//	             (Cluster.pm cfs_lock via pve-storage vdisk_alloc), inside
//	             the create worker, which removes what it made
//	race:NODE    another node creates the same VMID at the same moment:
//	             its CT appears there, and pmxcfs refuses our config
//	             (pve-cluster memdb.c memdb_rename EEXIST, worded by
//	             pve-common File.pm file_set_contents)
func pveFault(cond string, args []string, vmid string) (string, error) {
	switch {
	case cond == "noquorum":
		return "cluster not ready - no quorum?", nil
	case cond == "cfslock":
		sid := rootfsStorage(args)
		return fmt.Sprintf("trying to acquire cfs lock 'storage-%s' ...\nunable to create CT %s - cfs-lock 'storage-%s' error: got lock request timeout", sid, vmid, sid), nil
	case strings.HasPrefix(cond, "race:"):
		other := strings.TrimPrefix(cond, "race:")
		if err := addRacer(vmid, other); err != nil {
			return "", err
		}
		return fmt.Sprintf("unable to create CT %s - close (rename) atomic file '/etc/pve/nodes/%s/lxc/%s.conf' failed: File exists", vmid, nodeName(), vmid), nil
	}
	return "", fail("pctdouble: faults: unknown pve condition %q", cond)
}

// rootfsStorage is the storage of a pct create's --rootfs (default local).
func rootfsStorage(args []string) string {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "--rootfs=")
		if !ok && (a == "--rootfs" || a == "-rootfs") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			v = strings.TrimPrefix(v, "volume=")
			sid, _, _ := strings.Cut(v, ":")
			return sid
		}
	}
	return "local"
}

// addRacer lists a CT of another node at vmid in vms.json: the creator
// that won the race.
func addRacer(vmid, node string) error {
	list, err := vms()
	if err != nil {
		return err
	}
	var id int
	if _, err := fmt.Sscan(vmid, &id); err != nil {
		return fail("pctdouble: faults: race needs a VMID")
	}
	list = append(list, vm{VMID: id, Name: "racer", Node: node, Status: "stopped", Type: "lxc"})
	b, err := json.Marshal(list)
	if err != nil {
		return fail("pctdouble: %v", err)
	}
	if err := writeFileAtomic(statePath("vms.json"), b); err != nil {
		return fail("pctdouble: %v", err)
	}
	return nil
}
