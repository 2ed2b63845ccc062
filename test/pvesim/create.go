package pvesim

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// createCT is pve-container 6.1.10 src/PVE/API2/LXC.pm create_vm, in its
// order: quorum; the VMID unused cluster-wide; the root-only options
// (check_ct_modify_config_perm); the template volume's storage; each
// volume's storage enabled, on this node and with rootdir content (a 400
// on "storage"); then, under the config lock, the config with nothing but
// "lock: create" (create_and_lock_config, whose errors carry "unable to
// create CT N - "); and the vzcreate task, which allocates the disks and
// activates the template volume ("volume '...' does not exist" is a task
// error) and on failure removes the disks and the config again.
func (s *Server) createCT(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	if s.faults.NoQuorum {
		return nil, noQuorum()
	}
	vmid, _ := strconv.Atoi(c.p["vmid"])
	if kind, owner := s.vmidOwner(vmid); kind != "" {
		return nil, fail500("%s %d already exists on node '%s'", kind, vmid, owner)
	}
	unprivileged := !falseRE.MatchString(c.p["unprivileged"])
	if err := checkCTModifyConfigPerm(c.id, nil, createConfParams(c.p), nil, unprivileged); err != nil {
		return nil, err
	}
	// check_volume_access: parse_volname needs the template's storage.
	tpl := c.p["ostemplate"]
	tsid, _, _ := strings.Cut(tpl, ":")
	if !s.storageKnown(tsid) {
		return nil, fail500("storage '%s' does not exist", tsid)
	}
	// The mount points (create_vm's $mp_param): rootfs and mpN, a bare
	// size meaning the "storage" parameter (default local); without rootfs
	// and mpN, rootfs is that storage with 4 GiB. Each volume's storage must
	// be enabled, on this node and take rootdir content.
	defStorage := c.p["storage"]
	if defStorage == "" {
		defStorage = "local"
	}
	mpKeys := volumeKeys(c.p)
	if len(mpKeys) > 0 && mpKeys[0] != "rootfs" {
		return nil, fail500("mount points configured, but 'rootfs' not set - aborting")
	}
	if len(mpKeys) == 0 {
		c.p["rootfs"] = defStorage + ":4"
		mpKeys = []string{"rootfs"}
	}
	for _, k := range mpKeys {
		props := mpProps(k, c.p[k])
		if bareSizeRE.MatchString(props["volume"]) {
			props["volume"] = defStorage + ":" + props["volume"]
			c.p[k] = pveschema.PrintPropertyString(mpFormat(k), props)
		}
		if vol := props["volume"]; isVolume(vol) {
			sid, _, _ := strings.Cut(vol, ":")
			st, err := s.storageCheckEnabled(sid, n.name)
			if err != nil {
				return nil, err
			}
			if !st.allows("rootdir") {
				return nil, paramError(map[string]string{"storage": fmt.Sprintf("storage '%s' does not support container directories", sid)})
			}
		}
	}
	// unusedN: "ignoring 'unusedN', cannot create/restore with unused
	// volume" (a warning of the API daemon, not the client's).
	for _, k := range indexedKeys(c.p, "unused") {
		delete(c.p, k)
	}
	conf := map[string]string{}
	for k, v := range c.p {
		if !notConfig[k] {
			conf[k] = v
		}
	}
	if t, ok := conf["tags"]; ok {
		conf["tags"] = pveschema.UniqueTags(t) // as PVE stores them
	}
	storeEnv(conf)
	// create_and_lock_config: a 5 s flock on the config, then the write
	// that pmxcfs refuses when another node wrote this VMID meanwhile.
	if s.faults.LockTimeout {
		return nil, fail500("unable to create CT %d - %s", vmid, lockTimeout(vmid).msg)
	}
	if other := s.faults.RaceNextCreate; other != "" {
		s.faults.RaceNextCreate = ""
		s.cts[vmid] = &ct{vmid: vmid, node: other, conf: map[string]string{"hostname": "racer"}, status: "stopped"}
		return nil, fail500("unable to create CT %d - close (rename) atomic file '/etc/pve/nodes/%s/lxc/%d.conf' failed: File exists", vmid, n.name, vmid)
	}
	cfsTimeout := false
	if s.faults.CfsLockTimeout > 0 {
		s.faults.CfsLockTimeout--
		cfsTimeout = true
	}
	for k, v := range map[string]string{"arch": "amd64", "memory": "512", "swap": "512", "unprivileged": "1"} {
		if _, ok := conf[k]; !ok {
			conf[k] = v
		}
	}
	if _, ok := conf["ostype"]; !ok {
		conf["ostype"] = "unmanaged"
		base := path.Base(tpl)
		for _, os := range []string{"debian", "ubuntu", "alpine", "centos", "fedora", "archlinux", "opensuse", "devuan", "gentoo", "nixos"} {
			if strings.HasPrefix(base, os) {
				conf["ostype"] = os
			}
		}
	}
	// As PVE's create_and_lock_config: until the worker finishes, the CT's
	// config holds nothing but the create lock (no description, no tags),
	// so nobody can tell yet whose CT it is.
	x := &ct{vmid: vmid, node: n.name, conf: map[string]string{}, lock: "create", status: "stopped"}
	s.cts[vmid] = x
	start := c.p["start"] == "1"
	tplPath := "/var/lib/vz/template/cache/" + path.Base(tpl)
	upid := s.startTask(n.name, "vzcreate", strconv.Itoa(vmid), c.id.user, func(fail string) ([]string, string) {
		var lines []string
		var newVols []*volume
		undo := func(exit string) ([]string, string) {
			delete(s.cts, vmid)
			for _, v := range newVols {
				for _, st := range n.storages {
					delete(st.vols, v.volid)
				}
			}
			return lines, exit
		}
		emsg := fmt.Sprintf("unable to create CT %d - ", vmid)
		// create_disks: rootfs, then mpN in index order, each STORAGE:SIZE
		// a new volume (vdisk_alloc under the storage's lock, a cluster
		// lock, cfs_lock_storage, for a shared storage), stored with its
		// size (print_ct_mountpoint, without mp for rootfs).
		for _, k := range mpKeys {
			props := mpProps(k, conf[k])
			m := newDiskRE.FindStringSubmatch(props["volume"])
			if m == nil {
				continue
			}
			if cfsTimeout {
				lines = append(lines, fmt.Sprintf("trying to acquire cfs lock 'storage-%s' ...", m[1]))
				return undo(emsg + fmt.Sprintf("cfs-lock 'storage-%s' error: got lock request timeout", m[1]))
			}
			v, out := s.allocDisk(n.storages[m[1]], vmid, newDiskSize(m[2]))
			newVols = append(newVols, v)
			lines = append(lines, out...)
			props["volume"], props["size"] = v.volid, formatDiskSize(v.size)
			conf[k] = pveschema.PrintPropertyString(mpFormat(k), props)
		}
		// restore_archive: storage_check_enabled, then activate_volume.
		tst, terr := s.storageCheckEnabled(tsid, n.name)
		if terr != nil {
			return undo(emsg + terr.msg)
		}
		vol := tst.vols[tpl]
		if vol == nil || vol.content != "vztmpl" {
			return undo(emsg + fmt.Sprintf("volume '%s' does not exist", tpl))
		}
		switch {
		case vol.ociErr != nil:
			lines = append(lines, "Detected OCI archive")
			return undo(emsg + vol.ociErr.Error())
		case vol.oci != nil:
			// restore_oci_archive, after the create parameters (oci.go).
			lines = append(lines, applyOCI(conf, vol.oci)...)
		default:
			lines = append(lines,
				fmt.Sprintf("extracting archive '%s'", tplPath),
				fmt.Sprintf("Total bytes read: %d (%dMiB, 100MiB/s)", vol.size, vol.size>>20),
				"Detected container architecture: "+conf["arch"])
		}
		if fail != "" && !strings.HasPrefix(fail, "WARNINGS: ") {
			return undo(fail)
		}
		x.lock = ""
		x.conf = conf
		if start {
			x.status, x.started = "running", s.now()
		}
		return append(lines, warnLines(fail)...), fail
	})
	return upid, nil
}

// createConfParams are the create parameters check_ct_modify_config_perm
// sees: what create_vm has not extracted by then.
func createConfParams(p map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		switch k {
		case "node", "vmid", "ignore-unpack-errors", "bwlimit", "start", "ha-managed", "unprivileged",
			"restore", "unique", "force", "password", "ssh-public-keys", "pool", "ostemplate", "storage":
			continue
		}
		out[k] = v
	}
	return out
}
