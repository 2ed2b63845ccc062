package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
	if configLocked[cmd] && len(rest) > 0 {
		if vmid, err := strconv.Atoi(rest[0]); err == nil && (cmd != "stop" || !slices.Contains(rest, "--skiplock")) {
			unlock, err := lockConfig(vmid)
			if err != nil {
				return err
			}
			defer unlock()
		}
	}
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
	case "snapshot":
		return pctSnapshot(rest)
	case "listsnapshot":
		return pctListsnapshot(rest)
	case "rollback":
		return pctRollback(rest)
	case "delsnapshot":
		return pctDelsnapshot(rest)
	}
	return fail("ERROR: unknown command 'pct %s'\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]", cmd)
}

// configLocked are the pct commands that run whole under the CT's config
// flock (pve-container LXC/Config.pm lock_config: API2/LXC.pm destroy_vm,
// API2/LXC/Status.pm vm_start, vm_stop unless skiplock, vm_shutdown,
// API2/LXC/Config.pm update_vm; remove_lock for unlock). create and the
// snapshot calls take it only to set and clear the config's lock property
// (create_and_lock_config; AbstractConfig.pm snapshot_create's prepare
// and commit), which the double keeps in the config (`lock:`), so they are
// not here: meanwhile a start sees "CT is locked (create)".
var configLocked = map[string]bool{"destroy": true, "start": true, "stop": true, "shutdown": true,
	"set": true, "unlock": true}

// lockConfig is lock_config: a flock on DIR/lock/pve-config-VMID.lock
// (the node's /run/lock/lxc; [pve.tools] lock_dir points proxcage at the
// same file), waited for 10 s (AbstractConfig.pm lock_config_full's
// timeout), then pve-common Tools.pm lock_file_full's error, exit 255.
func lockConfig(vmid int) (func(), error) {
	dir := statePath("lock")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fail("pctdouble: %v", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("pve-config-%d.lock", vmid))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fail("pctdouble: %v", err)
	}
	for deadline := time.Now().Add(configLockWait()); ; {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fail("can't lock file '%s' - got timeout", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// configLockWait is 10 s, or $PCTDOUBLE_LOCK_WAIT (a Go duration) for
// tests that do not want to wait that long.
func configLockWait() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PCTDOUBLE_LOCK_WAIT")); err == nil {
		return d
	}
	return 10 * time.Second
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
		fmt.Fprintf(os.Stderr, "forced to stop CT %d before destroying!\n", vmid)
		if err := stopCT(vmid); err != nil {
			return err
		}
	}
	if c.opts["purge"] == "1" {
		fmt.Printf("purging CT %d from related configurations..\n", vmid)
	}
	unreferenced, _ := pveschema.ParseBoolean(c.opts["destroy-unreferenced-disks"])
	for _, m := range removeCT(vmid, conf, unreferenced == "1") {
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

// pctConfig is vm_config as pct prints it: the current config with the
// pending changes applied (--current 1: without them), or a snapshot's
// section (--snapshot NAME, load_snapshot_config).
func pctConfig(args []string) error {
	vmid, c, err := parseVMIDCmd("config", "lxc-config", args, 1)
	if err != nil {
		return err
	}
	snap := c.opts["snapshot"]
	current, _ := pveschema.ParseBoolean(c.opts["current"])
	if snap != "" && current == "1" {
		return paramError(pveschema.Errors{
			"snapshot": "cannot use 'snapshot' parameter with 'current'",
			"current":  "cannot use 'snapshot' parameter with 'current'",
		}, pctUsage["config"])
	}
	full, err := loadConf(vmid)
	if err != nil {
		return err
	}
	conf := full.currentView(current == "1")
	if snap != "" {
		s, ok := full.Snapshots[snap]
		if !ok {
			return fail("snapshot '%s' does not exist", snap)
		}
		conf = s
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
	running := isRunning(vmid)
	for _, d := range deletes {
		switch {
		case d == "rootfs":
			return fail("unable to delete required option '%s'", d)
		case d == "description":
			conf.Description = ""
		case isIndexed(d, "mp"):
			// vmconfig_apply_pending: a volume mount point's volume
			// becomes unusedN.
			if vol := volumeOf(d, conf.Keys[d]); !strings.HasPrefix(vol, "/") && vol != "" {
				if err := addUnused(conf, vol); err != nil {
					return err
				}
			}
		case isIndexed(d, "unused"):
			// ... and an unusedN volume is freed, if nothing uses it.
			if vol := conf.Keys[d]; vol != "" && !volumeInUse(conf, vol) {
				msgs, err := deleteMountpointVolume(vmid, vol)
				for _, m := range msgs {
					fmt.Println(m)
				}
				if err != nil {
					return fail("%v", err)
				}
			}
		}
		delete(conf.Keys, d)
	}
	if d, ok := params["description"]; ok {
		conf.Description = d
		delete(params, "description")
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		switch {
		case k == "rootfs" || isIndexed(k, "mp"):
			if err := checkSetVolume(k, v); err != nil {
				return err
			}
			if k == "rootfs" && allocRE.MatchString(volumeOf(k, v)) {
				return fail("unable to modify read-only option: 'rootfs'")
			}
			_, exists := conf.Keys[k]
			if running && (k == "rootfs" || exists) {
				// vmconfig_hotplug_pending: rootfs is not hot-pluggable
				// and an existing mpN is not replaced ("don't try to
				// hotplug over existing mp"): pending until the next
				// start (or stop: the poststop hook).
				setPending(conf, k, v)
				delete(params, k)
				continue
			}
			if k == "rootfs" {
				// vmconfig_apply_pending has no rootfs branch: the key is
				// replaced, the old volume is NOT made unusedN.
				continue
			}
			nv, err := applyMountpoint(vmid, conf, k, v)
			if err != nil {
				return err
			}
			params[k] = nv
		case isIndexed(k, "net"):
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

func isIndexed(k, prefix string) bool {
	m := pveschema.IndexedNameRE.FindStringSubmatch(k)
	return len(m) > 1 && m[1] == prefix
}

// checkSetVolume is update_pct_config's check of a rootfs/mpN volume (also
// STORAGE:SIZE): its storage must exist and allow rootdir content. As
// root@pam, check_ct_modify_config_perm checks nothing else, so a volume
// that does not exist is accepted here and fails at start (activate).
func checkSetVolume(key, value string) error {
	vol := volumeOf(key, value)
	if strings.HasPrefix(vol, "/") {
		return nil
	}
	sid, _, ok := splitVolID(vol)
	if !ok {
		return fail("unable to parse volume ID '%s'", vol)
	}
	all, err := storages()
	if err != nil {
		return err
	}
	for _, s := range all {
		if s.Storage == sid {
			if !s.hasContent("rootdir") {
				return fail("storage '%s' does not allow content type 'rootdir' (Container)", sid)
			}
			return nil
		}
	}
	return fail("storage '%s' does not exist", sid)
}

// applyMountpoint is apply_pending_mountpoint on a stopped CT: a
// STORAGE:SIZE volume is allocated (create_disks, owned by the CT's
// root), and a replaced volume becomes unusedN. (Its is_volume_in_use
// check compares with the whole old mp string, so it never holds; a volume
// the config uses again is dropped from unusedN when written.)
func applyMountpoint(vmid int, conf *ctConf, key, value string) (string, error) {
	nv, isNew, err := allocVolume(vmid, key, value)
	if err == nil && isNew {
		err = chownNewVolume(vmid, conf, nv) // as create_disks (userns.go)
	}
	if err != nil {
		return "", err
	}
	if old, ok := conf.Keys[key]; ok {
		if vol := volumeOf(key, old); !strings.HasPrefix(vol, "/") {
			if err := addUnused(conf, vol); err != nil {
				return "", err
			}
		}
	}
	return nv, nil
}

// setPending puts a change into the [pve:pending] section.
func setPending(conf *ctConf, key, value string) {
	if conf.Pending == nil {
		conf.Pending = newConf()
	}
	conf.Pending.Keys[key] = value
}

// applyPending is vmconfig_apply_pending of what the double puts into
// the pending section (rootfs, existing mpN on a running CT), as vm_start
// runs it.
func applyPending(vmid int, conf *ctConf) {
	p := conf.Pending
	conf.Pending = nil
	if p == nil {
		return
	}
	for _, k := range pendingDeletes(p) {
		delete(conf.Keys, k)
	}
	keys := make([]string, 0, len(p.Keys))
	for k := range p.Keys {
		if k != "delete" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := p.Keys[k]
		if isIndexed(k, "mp") {
			nv, err := applyMountpoint(vmid, conf, k, v)
			if err != nil {
				// add_apply_error: warned, the change stays pending.
				fmt.Fprintf(os.Stderr, "unable to apply pending change %s : %v\n", k, err)
				setPending(conf, k, v)
				continue
			}
			v = nv
		}
		conf.Keys[k] = v
	}
}

// addUnused is AbstractConfig add_unused_volume: the lowest free unusedN,
// nothing if the volume is listed already.
func addUnused(conf *ctConf, vol string) error {
	free := -1
	for i := 255; i >= 0; i-- { // __config_max_unused_disks: 256
		k := fmt.Sprintf("unused%d", i)
		if v, ok := conf.Keys[k]; ok {
			if v == vol {
				return nil
			}
		} else {
			free = i
		}
	}
	if free < 0 {
		return fail("Too many unused volumes - please delete them first.")
	}
	conf.Keys[fmt.Sprintf("unused%d", free)] = vol
	return nil
}

// volumeInUse is Config.pm is_volume_in_use($conf, $volid, 1, 1): a
// rootfs/mpN of the current config, a snapshot or the pending changes.
func volumeInUse(conf *ctConf, vol string) bool {
	in := func(keys map[string]string) bool {
		for _, k := range volumeKeys(keys) {
			if volumeOf(k, keys[k]) == vol {
				return true
			}
		}
		return false
	}
	if in(conf.Keys) {
		return true
	}
	for _, s := range conf.Snapshots {
		if in(s.Keys) {
			return true
		}
	}
	return conf.Pending != nil && in(conf.Pending.Keys)
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
