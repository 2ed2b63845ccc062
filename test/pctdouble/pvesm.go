package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// pvesm path VOLID | pvesm status [--content TYPE] [--storage ID] [--enabled]
func pvesmMain(args []string) error {
	if len(args) == 0 {
		return fail("ERROR: no command specified\nUSAGE: pvesm <COMMAND> [ARGS] [OPTIONS]")
	}
	switch args[0] {
	case "path":
		return pvesmPath(args[1:])
	case "status":
		return pvesmStatus(args[1:])
	case "free":
		return pvesmFree(args[1:])
	}
	return fail("ERROR: unknown command 'pvesm %s'\nUSAGE: pvesm <COMMAND> [ARGS] [OPTIONS]", args[0])
}

func pvesmPath(args []string) error {
	c, err := parseCLI(args, func(string) bool { return false })
	if err != nil {
		return err
	}
	if len(c.pos) != 1 {
		return fail("400 %s arguments\npvesm path <volume>", map[bool]string{true: "not enough", false: "too many"}[len(c.pos) < 1])
	}
	volid := c.pos[0]
	sid, rest, ok := strings.Cut(volid, ":")
	if !ok || pveschema.CheckNamedFormat("pve-storage-id", sid) != "" || rest == "" {
		return fail("unable to parse volume ID '%s'", volid)
	}
	s, err := findStorage(sid)
	if err != nil {
		return err
	}
	if file, ok := strings.CutPrefix(rest, "vztmpl/"); ok {
		// pve-storage 9.1.7 Storage.pm path -> the plugin's
		// parse_volname: no content check; volume storages cannot name a
		// file (Plugin.pm parse_lvm_name, ZFSPoolPlugin.pm parse_volname).
		switch s.Type {
		case "lvm", "lvmthin":
			return fail("lvm name '%s' contains illegal characters", rest)
		case "zfspool":
			return fail("unable to parse zfs volume name '%s'", rest)
		}
		if file == "" || strings.Contains(file, "/") {
			return fail("unable to parse directory volume name '%s'", rest)
		}
		fmt.Println(filepath.Join(s.templateDir(), file))
		return nil
	}
	// Volumes of the double's CTs.
	if strings.HasPrefix(rest, "vm-") {
		fmt.Println(statePath("volumes", sid, rest))
		return nil
	}
	return fail("unable to parse directory volume name '%s'", rest)
}

func pvesmStatus(args []string) error {
	c, err := parseCLI(args, func(n string) bool { return n == "enabled" })
	if err != nil {
		return err
	}
	all, err := storages()
	if err != nil {
		return err
	}
	if sid := c.opts["storage"]; sid != "" {
		if _, err := findStorage(sid); err != nil {
			return err
		}
	}
	total, used, avail := fsUsage(stateDir)
	maxlen := 0
	var list []storage
	for _, s := range all {
		if ct := c.opts["content"]; ct != "" && !s.hasContent(ct) {
			continue
		}
		if sid := c.opts["storage"]; sid != "" && s.Storage != sid {
			continue
		}
		if c.opts["enabled"] == "1" && s.Disabled {
			continue
		}
		list = append(list, s)
		if len(s.Storage) > maxlen {
			maxlen = len(s.Storage)
		}
	}
	maxlen++
	// PVE::CLI::pvesm status printout.
	fmt.Printf("%-*s %10s %10s %15s %15s %15s %8s\n", maxlen, "Name", "Type", "Status", "Total", "Used", "Available", "%")
	for _, s := range list {
		if s.Disabled {
			fmt.Printf("%-*s %10s %10s %15d %15d %15d %8s\n", maxlen, s.Storage, s.Type, "disabled", 0, 0, 0, "N/A")
			continue
		}
		per := 0.0
		if total > 0 {
			per = float64(used) * 100 / float64(total)
		}
		fmt.Printf("%-*s %10s %10s %15d %15d %15d %7.2f%%\n", maxlen, s.Storage, s.Type, "active", total/1024, used/1024, avail/1024, per)
	}
	return nil
}

// pvesmFree is `pvesm free <volume> [--storage S]`: pve-storage 9.1.7
// API2/Storage/Content.pm delete ($real_volume_id, then a worker that runs
// vdisk_free and prints "Removed volume"). Nothing checks whether a CT
// still uses the volume. A volume that is not there is no error on
// LVM-thin (LvmThinPlugin.pm free_image removes only what lvs lists); the
// double treats every storage so (guess for the others).
func pvesmFree(args []string) error {
	const usage = "pvesm free <volume> [OPTIONS]"
	c, err := parseCLI(args, func(string) bool { return false })
	if err != nil {
		return fail("%s\n%s", err.Error(), usage)
	}
	if len(c.pos) != 1 {
		return fail("400 %s arguments\n%s", map[bool]string{true: "not enough", false: "too many"}[len(c.pos) < 1], usage)
	}
	for k := range c.opts {
		if k != "storage" && k != "delay" {
			return paramError(pveschema.Errors{k: pveschema.AdditionalPropMsg}, usage)
		}
	}
	volid, storeid := c.pos[0], c.opts["storage"]
	if strings.Contains(volid, ":") {
		sid, _, ok := splitVolID(volid)
		switch {
		case !ok || pveschema.CheckNamedFormat("pve-storage-id", sid) != "":
			return paramError(pveschema.Errors{"volume": fmt.Sprintf("unable to parse volume ID '%s'", volid)}, usage)
		case storeid != "" && sid != storeid:
			return paramError(pveschema.Errors{"volume": fmt.Sprintf("storage ID mismatch (%s != %s)", sid, storeid)}, usage)
		}
	} else {
		if storeid == "" {
			return paramError(pveschema.Errors{"volume": "no storage specified - incomplete volume ID"}, usage)
		}
		volid = storeid + ":" + volid
	}
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	sid, _, _ := splitVolID(volid)
	if _, err := storageType(sid); err != nil { // Storage.pm path -> storage_config
		return err
	}
	msgs, err := vdiskFree(volid)
	for _, m := range msgs {
		fmt.Println(m)
	}
	if err != nil {
		return err
	}
	fmt.Printf("Removed volume '%s'\n", volid)
	return nil
}
