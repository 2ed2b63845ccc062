package pvesim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

func (s *Server) buildRoutes() []route {
	rs := []route{
		{method: "GET", tmpl: "/version", h: s.version},
		{method: "POST", tmpl: "/access/ticket", h: s.accessTicket, noAuth: true},
		{method: "GET", tmpl: "/cluster/nextid", h: s.nextID},
		{method: "GET", tmpl: "/cluster/resources", h: s.resources},
		{method: "GET", tmpl: "/nodes", h: s.listNodes},
		{method: "GET", tmpl: "/nodes/{node}/lxc", h: s.listCTs},
		{method: "POST", tmpl: "/nodes/{node}/lxc", h: s.createCT},
		{method: "GET", tmpl: "/nodes/{node}/lxc/{vmid}/config", h: s.getConfig},
		{method: "PUT", tmpl: "/nodes/{node}/lxc/{vmid}/config", h: s.putConfig},
		{method: "GET", tmpl: "/nodes/{node}/lxc/{vmid}/status/current", h: s.statusCurrent},
		{method: "POST", tmpl: "/nodes/{node}/lxc/{vmid}/status/start", h: s.ctAction("vzstart")},
		{method: "POST", tmpl: "/nodes/{node}/lxc/{vmid}/status/stop", h: s.ctAction("vzstop")},
		{method: "POST", tmpl: "/nodes/{node}/lxc/{vmid}/status/shutdown", h: s.ctAction("vzshutdown")},
		{method: "DELETE", tmpl: "/nodes/{node}/lxc/{vmid}", h: s.ctAction("vzdestroy")},
		{method: "GET", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot", h: s.listSnapshots},
		{method: "POST", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot", h: s.createSnapshot},
		{method: "GET", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}", h: s.snapshotCmdIdx},
		{method: "DELETE", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}", h: s.deleteSnapshot},
		{method: "POST", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback", h: s.rollbackSnapshot},
		{method: "GET", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config", h: s.getSnapshotConfig},
		{method: "PUT", tmpl: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config", h: s.updateSnapshotConfig},
		{method: "GET", tmpl: "/nodes/{node}/tasks", h: s.listTasks},
		{method: "GET", tmpl: "/nodes/{node}/tasks/{upid}/status", h: s.taskStatus},
		{method: "GET", tmpl: "/nodes/{node}/tasks/{upid}/log", h: s.taskLog},
		{method: "GET", tmpl: "/nodes/{node}/network", h: s.network},
		{method: "GET", tmpl: "/nodes/{node}/apt/versions", h: s.aptVersions},
		{method: "GET", tmpl: "/nodes/{node}/storage", h: s.listStorage},
		{method: "GET", tmpl: "/nodes/{node}/storage/{storage}/content", h: s.storageContent},
		{method: "DELETE", tmpl: "/nodes/{node}/storage/{storage}/content/{volume}", h: s.deleteVolume},
		{method: "POST", tmpl: "/nodes/{node}/storage/{storage}/upload", h: s.upload},
	}
	for i := range rs {
		rs[i].segs = strings.Split(strings.Trim(rs[i].tmpl, "/"), "/")
	}
	return rs
}

func (s *Server) version(c *call) (any, *apiError) {
	return map[string]any{"version": "9.1.1", "release": "9.1", "repoid": "5f2e1d0c"}, nil
}

// aptVersions is pve-manager API2/APT.pm versions, cut to the packages
// a container runtime reads (pve-container decides the OCI features).
func (s *Server) aptVersions(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.node(c); err != nil {
		return nil, err
	}
	if err := s.needSysAudit(c); err != nil {
		return nil, err
	}
	pkg := func(name, ver string) map[string]any {
		return map[string]any{"Package": name, "Version": ver, "CurrentState": "Installed", "Title": name}
	}
	return []any{pkg("proxmox-ve", "9.1.0"), pkg("pve-manager", "9.1.1"), pkg("lxc-pve", "6.0.5-3"), pkg("pve-container", "6.1.10")}, nil
}

// node returns the node named in the path. Call with s.mu held.
func (s *Server) node(c *call) (*node, *apiError) {
	n := s.nodes[c.p["node"]]
	if n == nil {
		name := c.p["node"]
		return nil, fail500("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", name, name)
	}
	return n, nil
}

// ct returns the container of the path on the path's node. Call with s.mu held.
func (s *Server) ct(c *call) (*ct, *apiError) {
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	vmid, _ := strconv.Atoi(c.p["vmid"])
	x := s.cts[vmid]
	if x == nil || x.node != n.name {
		return nil, fail500("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", n.name, vmid)
	}
	return x, nil
}

func lockTimeout(vmid int) *apiError {
	return fail500("can't lock file '/run/lock/lxc/pve-config-%d.lock' - got timeout", vmid)
}

func (s *Server) nextID(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := c.p["vmid"]; v != "" {
		vmid, _ := strconv.Atoi(v)
		if kind, _ := s.vmidOwner(vmid); kind != "" {
			return nil, paramError(map[string]string{"vmid": fmt.Sprintf("VM %d already exists", vmid)})
		}
		return strconv.Itoa(vmid), nil
	}
	for id := 100; ; id++ {
		if kind, _ := s.vmidOwner(id); kind == "" {
			return strconv.Itoa(id), nil
		}
	}
}

func (s *Server) ctRow(x *ct, full bool) map[string]any {
	now := s.now()
	row := map[string]any{
		"vmid": x.vmid, "name": x.conf["hostname"], "status": x.status, "type": "lxc",
		"maxmem": x.maxmem(), "mem": x.mem(), "maxdisk": x.maxdisk(), "disk": 0,
		"uptime": x.uptime(now), "cpu": 0, "template": 0,
	}
	cores, _ := strconv.Atoi(x.conf["cores"])
	if cores == 0 {
		cores = s.nodes[x.node].maxcpu
	}
	if x.status == "running" {
		row["cpu"] = 0.01
	}
	if x.lock != "" {
		row["lock"] = x.lock
	}
	if t := x.conf["tags"]; t != "" {
		row["tags"] = t
	}
	if full {
		row["id"] = fmt.Sprintf("lxc/%d", x.vmid)
		row["node"] = x.node
		row["maxcpu"] = cores
	} else {
		row["cpus"] = cores
		row["maxswap"] = int64(512 << 20)
		row["swap"] = 0
		row["netin"], row["netout"], row["diskread"], row["diskwrite"] = 0, 0, 0, 0
	}
	return row
}

// nodeMem is a node's used memory: base plus running guests. Call with s.mu held.
func (s *Server) nodeMem(n *node) int64 {
	m := n.mem
	for _, x := range s.cts {
		if x.node == n.name {
			m += x.mem()
		}
	}
	for _, q := range s.opts.QemuVMs {
		if q.Node == n.name && q.Status == "running" {
			m += qemuMaxMem(q) / 2
		}
	}
	return m
}

func qemuMaxMem(q QemuVM) int64 {
	if q.MaxMem == 0 {
		return 2 << 30
	}
	return q.MaxMem
}

func (s *Server) nodeRow(n *node) map[string]any {
	return map[string]any{
		"id": "node/" + n.name, "type": "node", "node": n.name, "status": "online",
		"maxmem": n.maxmem, "mem": s.nodeMem(n), "maxcpu": n.maxcpu, "cpu": 0.02,
		"maxdisk": int64(100 << 30), "disk": int64(10 << 30), "uptime": 86400, "level": "",
		"ssl_fingerprint": s.fp,
	}
}

func (s *Server) resources(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := c.p["type"]
	rows := []map[string]any{}
	if typ == "" || typ == "vm" {
		ids := make([]int, 0, len(s.cts))
		for id := range s.cts {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for _, id := range ids {
			rows = append(rows, s.ctRow(s.cts[id], true))
		}
		for _, q := range s.opts.QemuVMs {
			st := q.Status
			if st == "" {
				st = "stopped"
			}
			mem := int64(0)
			if st == "running" {
				mem = qemuMaxMem(q) / 2
			}
			rows = append(rows, map[string]any{
				"id": fmt.Sprintf("qemu/%d", q.VMID), "type": "qemu", "node": q.Node, "vmid": q.VMID,
				"name": q.Name, "status": st, "template": 0, "maxmem": qemuMaxMem(q), "mem": mem,
				"maxcpu": 2, "cpu": 0, "maxdisk": int64(32 << 30), "disk": 0, "uptime": 0,
			})
		}
	}
	for _, name := range s.order {
		n := s.nodes[name]
		if typ == "" || typ == "node" {
			rows = append(rows, s.nodeRow(n))
		}
		if typ == "" || typ == "storage" {
			for _, sid := range sortedKeys(n.storages) {
				st := n.storages[sid]
				rows = append(rows, map[string]any{
					"id": "storage/" + name + "/" + sid, "type": "storage", "node": name, "storage": sid,
					"status": "available", "plugintype": st.typ, "content": st.content, "shared": 0,
					"maxdisk": st.total, "disk": st.used(),
				})
			}
		}
	}
	return rows, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (s *Server) listNodes(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := []map[string]any{}
	for _, name := range s.order {
		rows = append(rows, s.nodeRow(s.nodes[name]))
	}
	return rows, nil
}

func (s *Server) listCTs(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	rows := []map[string]any{}
	for _, x := range s.cts {
		if x.node == n.name {
			rows = append(rows, s.ctRow(x, false))
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i]["vmid"].(int) < rows[j]["vmid"].(int) })
	return rows, nil
}

// notConfig are create parameters that do not end up in the config.
var notConfig = map[string]bool{
	"node": true, "vmid": true, "ostemplate": true, "password": true, "ssh-public-keys": true,
	"storage": true, "start": true, "pool": true, "force": true, "unique": true, "restore": true,
	"ignore-unpack-errors": true, "bwlimit": true, "delete": true, "digest": true, "revert": true,
	"skiplock": true,
}

// typed renders config values with their schema types (integers and
// booleans as JSON numbers), as PVE does.
func typed(key string, conf map[string]string) map[string]any {
	sch := schemaFor(key)
	out := map[string]any{}
	for k, v := range conf {
		out[k] = v
		if p := sch.Lookup(k); p != nil && (p.Type == "integer" || p.Type == "boolean" || p.Type == "number") {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = json.Number(strconv.FormatFloat(f, 'f', -1, 64))
			}
		}
	}
	return out
}

// getConfig is API2/LXC/Config.pm vm_config: the config with the pending
// changes applied (load_current_config), current=1 without them,
// snapshot=NAME that section (load_snapshot_config) with the config's
// digest.
func (s *Server) getConfig(c *call) (any, *apiError) {
	if c.p["snapshot"] != "" && c.p["current"] == "1" {
		msg := "cannot use 'snapshot' parameter with 'current'"
		return nil, paramError(map[string]string{"snapshot": msg, "current": msg})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.ct(c)
	if err != nil {
		return nil, err
	}
	if name := c.p["snapshot"]; name != "" {
		sn := x.snaps[name]
		if sn == nil {
			return nil, fail500("snapshot '%s' does not exist", name)
		}
		out := typedConf(sn)
		out["digest"] = x.digest()
		return out, nil
	}
	conf := x.conf
	if c.p["current"] != "1" && len(x.pending) > 0 {
		conf = map[string]string{}
		for k, v := range x.conf {
			conf[k] = v
		}
		for k, v := range x.pending {
			conf[k] = v
		}
	}
	out := typedConf(conf)
	if x.lock != "" {
		out["lock"] = x.lock
	}
	out["digest"] = x.digest()
	return out, nil
}

// typedConf is a config section as parse_pct_config's check_type leaves
// it: integers and booleans as JSON numbers, snaptime (an integer of the
// config schema the API schema leaves out) too.
func typedConf(conf map[string]string) map[string]any {
	out := typed("POST /nodes/{node}/lxc", conf)
	if t, ok := conf["snaptime"]; ok {
		out["snaptime"] = json.Number(t)
	}
	return out
}

func (s *Server) putConfig(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.ct(c)
	if err != nil {
		return nil, err
	}
	if s.faults.LockTimeout {
		return nil, lockTimeout(x.vmid)
	}
	if x.lock != "" && c.p["skiplock"] != "1" {
		return nil, fail500("CT is locked (%s)", x.lock)
	}
	if d := c.p["digest"]; d != "" && d != x.digest() {
		return nil, fail500("detected modified configuration - file changed by other user? Try again.")
	}
	// API2/LXC/Config.pm update_vm: the deleted keys, then the set ones.
	set := map[string]string{}
	for k, v := range c.p {
		if !notConfig[k] {
			set[k] = v
		}
	}
	dels := strings.FieldsFunc(c.p["delete"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' })
	unpriv := x.conf["unprivileged"] == "1"
	if err := checkCTModifyConfigPerm(c.id, x.conf, map[string]string{}, dels, unpriv); err != nil {
		return nil, err
	}
	if err := checkCTModifyConfigPerm(c.id, x.conf, set, nil, unpriv); err != nil {
		return nil, err
	}
	var del []string
	for _, k := range dels {
		if _, set := c.p[k]; set {
			return nil, paramError(map[string]string{"delete": fmt.Sprintf("you can't use '-%s' and -delete %s' at the same time", k, k)})
		}
		del = append(del, k)
	}
	// update_pct_config: deletes of required or read-only options, and
	// each rootfs/mpN volume's storage known and taking rootdir content.
	sort.Strings(del)
	for _, k := range del {
		switch k {
		case "memory", "rootfs", "ostype":
			return nil, fail500("unable to delete required option '%s'", k)
		case "unprivileged":
			return nil, fail500("unable to delete read-only option: '%s'", k)
		}
	}
	setKeys := sortedKeys(set)
	for _, k := range setKeys {
		if k != "rootfs" && !isIndexedKey(k, "mp") {
			continue
		}
		if vol := volumeOf(k, set[k]); isVolume(vol) {
			sid, _, _ := strings.Cut(vol, ":")
			st := s.storageConfig(sid)
			if st == nil {
				return nil, fail500("storage '%s' does not exist", sid)
			}
			if !st.allows("rootdir") {
				return nil, fail500("storage '%s' does not allow content type 'rootdir' (Container)", sid)
			}
		}
	}
	n := s.nodes[x.node]
	running := x.status == "running"
	// vmconfig_apply_pending (stopped) / vmconfig_hotplug_pending
	// (running): deletes first, then the set keys, each sorted.
	for _, k := range del {
		switch {
		case isIndexedKey(k, "mp"):
			// The volume becomes unusedN (its is_volume_in_use check is
			// given the whole mp string and never holds).
			if vol := volumeOf(k, x.conf[k]); isVolume(vol) {
				if msg := addUnused(x.conf, vol); msg != "" {
					return nil, paramError(map[string]string{k: "unable to apply pending change " + k + " : " + msg})
				}
			}
		case isIndexedKey(k, "unused"):
			// Freed unless something still uses it, and only if the CT
			// owns it (delete_mountpoint_volume; the warning goes to the
			// daemon's log).
			if vol, ok := x.conf[k]; ok && !x.volumeInUse(vol) {
				deleteMountpointVolume(n, x.vmid, vol)
			}
		}
		delete(x.conf, k)
	}
	for _, k := range setKeys {
		v := set[k]
		switch {
		case k == "rootfs" && running:
			// Not hot-pluggable ("skip"): pending until the next start.
			s.setPending(x, k, v)
			continue
		case k == "rootfs":
			// vmconfig_apply_pending has no rootfs branch: the key is
			// replaced as given, the old volume is NOT made unusedN.
		case isIndexedKey(k, "mp"):
			if _, exists := x.conf[k]; running && exists {
				// "don't try to hotplug over existing mp": pending.
				s.setPending(x, k, v)
				continue
			}
			nv, msg := s.applyMountpoint(n, x, k, v)
			if msg != "" {
				return nil, paramError(map[string]string{k: "unable to apply pending change " + k + " : " + msg})
			}
			v = nv
		}
		x.conf[k] = v
	}
	dropUsedUnused(x.conf)
	if t, ok := x.conf["tags"]; ok {
		x.conf["tags"] = pveschema.UniqueTags(t) // as PVE stores them
	}
	storeEnv(x.conf)
	return nil, nil
}

// storeEnv gives conf's env the form it has once PVE wrote and read the
// config: write_pct_config puts each variable of split(/\0+/, $env) on an
// "lxc.environment.runtime: " line, parse_pct_config trims each line's
// trailing blanks (m/...\s*(.*?)\s*$/) and joins them with NUL
// (pve-container src/PVE/LXC/Config.pm). No variable left: no env.
func storeEnv(conf map[string]string) {
	v, ok := conf["env"]
	if !ok {
		return
	}
	var vars []string
	for _, e := range strings.Split(v, "\x00") {
		if e = strings.TrimRight(e, " \t\n\r\f\v"); e != "" {
			vars = append(vars, e)
		}
	}
	if len(vars) == 0 {
		delete(conf, "env")
		return
	}
	conf["env"] = strings.Join(vars, "\x00")
}

func (s *Server) statusCurrent(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.ct(c)
	if err != nil {
		return nil, err
	}
	row := s.ctRow(x, false)
	row["ha"] = map[string]any{"managed": 0}
	return row, nil
}

// ctAction starts a vzstart, vzstop, vzshutdown or vzdestroy task.
func (s *Server) ctAction(typ string) handlerFunc {
	return func(c *call) (any, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		x, err := s.ct(c)
		if err != nil {
			return nil, err
		}
		if s.faults.LockTimeout {
			return nil, lockTimeout(x.vmid)
		}
		if x.lock != "" && c.p["skiplock"] != "1" {
			return nil, fail500("CT is locked (%s)", x.lock)
		}
		if typ == "vzstart" && s.faults.NoQuorum {
			return nil, noQuorum() // API2/LXC/Status.pm vm_start
		}
		if typ == "vzstart" && s.faults.NoWorkerUPID > 0 {
			s.faults.NoWorkerUPID--
			return nil, fail500("got no worker upid")
		}
		vmid := x.vmid
		force := c.p["force"] == "1"
		return s.startTask(x.node, typ, strconv.Itoa(vmid), c.id.user, func(fail string) ([]string, string) {
			if fail != "" && !strings.HasPrefix(fail, "WARNINGS: ") {
				return nil, fail
			}
			w := warnLines(fail)
			if s.cts[vmid] != x {
				return w, fmt.Sprintf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", x.node, vmid)
			}
			switch typ {
			case "vzstart":
				if x.status == "running" {
					return w, fmt.Sprintf("CT %d already running", vmid)
				}
				s.applyPending(x) // LXC.pm vm_start: vmconfig_apply_pending
				x.status, x.started = "running", s.now()
			case "vzstop", "vzshutdown":
				if x.status != "running" {
					return w, fmt.Sprintf("CT %d not running", vmid)
				}
				x.status = "stopped"
				s.applyPending(x) // lxc-pve-poststop-hook: vmconfig_apply_pending
			case "vzdestroy":
				if x.status == "running" && !force {
					return w, fmt.Sprintf("unable to destroy CT %d - container is running", vmid)
				}
				if x.status == "running" {
					w = append(w, fmt.Sprintf("forced to stop CT %d before destroying!", vmid))
					x.status = "stopped"
				}
				delete(s.cts, vmid)
				// destroy_lxc_container: the volumes the CT owns by name.
				w = append(w, destroyVolumes(s.nodes[x.node], x, c.p["destroy-unreferenced-disks"] == "1")...)
				if c.p["purge"] == "1" {
					w = append(w, fmt.Sprintf("purging CT %d from related configurations..", vmid))
				}
			}
			return w, fail
		}), nil
	}
}

// task returns the task of the path. Call with s.mu held.
func (s *Server) task(c *call) (*task, *apiError) {
	if _, err := s.node(c); err != nil {
		return nil, err
	}
	if _, ok := parseUPID(c.p["upid"]); !ok {
		return nil, paramError(map[string]string{"upid": "unable to parse worker upid '" + c.p["upid"] + "'"})
	}
	t := s.tasks[c.p["upid"]]
	if t == nil || t.node != c.p["node"] {
		return nil, fail500("no such task")
	}
	return t, nil
}

func (s *Server) taskStatus(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.task(c)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart, "starttime": t.start.Unix(),
		"type": t.typ, "id": t.id, "user": t.user, "status": "running",
	}
	if u, tok, ok := strings.Cut(t.user, "!"); ok {
		out["user"], out["tokenid"] = u, tok
	}
	if !t.running {
		out["status"] = "stopped"
		out["exitstatus"] = t.exit
	}
	return out, nil
}

func (s *Server) taskLog(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.task(c)
	if err != nil {
		return nil, err
	}
	start, limit := page(c)
	lines := t.log
	if t.running {
		lines = []string{}
	}
	rows := []map[string]any{}
	for i := start; i < len(lines) && len(rows) < limit; i++ {
		rows = append(rows, map[string]any{"n": i + 1, "t": lines[i]})
	}
	if len(lines) == 0 && t.running {
		rows = append(rows, map[string]any{"n": 1, "t": "no content"})
	}
	c.extra["total"] = len(lines)
	return rows, nil
}

// network lists the node's interfaces; the simulator knows only bridges
// (Linux bridges, which both "bridge" and "any_bridge" select).
func (s *Server) network(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	rows := []map[string]any{}
	switch c.p["type"] {
	case "", "bridge", "any_bridge", "any_local_bridge", "include_sdn":
		for _, b := range n.bridges {
			rows = append(rows, map[string]any{
				"iface": b, "type": "bridge", "active": 1, "autostart": 1, "method": "manual",
				"method6": "manual", "families": []string{"inet"}, "bridge_ports": "eno1",
				"bridge_stp": "off", "bridge_fd": "0", "priority": 3,
			})
		}
	}
	return rows, nil
}

func (s *Server) listStorage(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	rows := []map[string]any{}
	for _, sid := range sortedKeys(n.storages) {
		st := n.storages[sid]
		if want := c.p["content"]; want != "" && !st.allows(want) {
			continue
		}
		if want := c.p["storage"]; want != "" && want != sid {
			continue
		}
		used := st.used()
		rows = append(rows, map[string]any{
			"storage": sid, "type": st.typ, "content": st.content, "active": 1, "enabled": 1, "shared": 0,
			"total": st.total, "used": used, "avail": st.total - used, "used_fraction": float64(used) / float64(st.total),
		})
	}
	return rows, nil
}

func (s *Server) storageContent(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	st := n.storages[c.p["storage"]]
	if st == nil {
		return nil, fail500("storage '%s' does not exist", c.p["storage"])
	}
	rows := []map[string]any{}
	for _, id := range sortedKeys(st.vols) {
		v := st.vols[id]
		if want := c.p["content"]; want != "" && v.content != want {
			continue
		}
		row := map[string]any{"volid": v.volid, "content": v.content, "format": v.format, "size": v.size, "ctime": v.ctime}
		if v.vmid != 0 {
			row["vmid"] = v.vmid
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// DELETE /nodes/{node}/storage/{storage}/content/{volume}: an imgdel task
// that frees the volume (pve-storage 9.1.7 src/PVE/API2/Storage/Content.pm
// 'delete' and $real_volume_id; Storage.pm vdisk_free; Plugin.pm
// free_image, which only warns when the file is gone; LvmThinPlugin.pm
// free_image, for which a missing volume is no error). Templates and CT
// volumes alike; no check that a CT still uses it (there is none).
func (s *Server) deleteVolume(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	volid, sid := c.p["volume"], c.p["storage"]
	if v, name, ok := strings.Cut(volid, ":"); ok {
		if name == "" || v == "" {
			return nil, paramError(map[string]string{"volume": fmt.Sprintf("unable to parse volume ID '%s'", volid)})
		}
		if sid != "" && v != sid {
			return nil, paramError(map[string]string{"volume": fmt.Sprintf("storage ID mismatch (%s != %s)", v, sid)})
		}
		sid = v
	} else {
		volid = sid + ":" + volid
	}
	st := n.storages[sid]
	if st == nil {
		return nil, fail500("storage '%s' does not exist", sid)
	}
	// The task id: "OWNER@STORAGE" for a volume a VMID owns.
	id := sid
	if owner := volumeOwner(volid); owner != 0 {
		id = fmt.Sprintf("%d@%s", owner, sid)
	}
	return s.startTask(n.name, "imgdel", id, c.id.user, func(fail string) ([]string, string) {
		if fail != "" && !strings.HasPrefix(fail, "WARNINGS: ") {
			return nil, fail
		}
		cur := st.vols[volid]
		if cur == nil && strings.Contains(volid, ":vztmpl/") {
			_, name, _ := strings.Cut(volid, "/")
			return []string{"disk image '/var/lib/vz/template/cache/" + name + "' does not exist", "Removed volume '" + volid + "'"}, "WARNINGS: 1"
		}
		// vdisk_free; a missing LVM-thin volume is no error (free_image
		// removes it only "if exists").
		lines := vdiskFree(n, volid)
		return append(append(lines, "Removed volume '"+volid+"'"), warnLines(fail)...), fail
	}), nil
}

var tmplExtRE = regexp.MustCompile(`\.(tar\.gz|tar\.xz|tar\.zst|tar\.bz2|tar)$`)

// POST /nodes/{node}/storage/{storage}/upload (multipart; the file part is
// named "filename"). The volume appears when the imgcopy task finishes.
func (s *Server) upload(c *call) (any, *apiError) {
	fh := c.files["filename"]
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	st := n.storages[c.p["storage"]]
	if st == nil {
		return nil, fail500("storage '%s' does not exist", c.p["storage"])
	}
	content := c.p["content"]
	if !st.allows(content) {
		return nil, fail500("storage '%s' does not support '%s' content", st.id, content)
	}
	if fh == nil {
		return nil, paramError(map[string]string{"filename": "property is missing and it is not optional"})
	}
	name := path.Base(fh.Filename)
	if content == "vztmpl" && !tmplExtRE.MatchString(name) {
		return nil, fail500("wrong file extension")
	}
	f, ferr := fh.Open()
	if ferr != nil {
		return nil, fail500("%v", ferr)
	}
	sum := sha256.New()
	size, _ := io.Copy(sum, f)
	f.Close()
	var oci *ociProcess
	var ociErr error
	if strings.HasSuffix(name, ".tar") {
		if f, err := fh.Open(); err == nil {
			oci, ociErr = readOCIProcess(f)
			f.Close()
		}
	}
	got := hex.EncodeToString(sum.Sum(nil))
	want, algo := c.p["checksum"], c.p["checksum-algorithm"]
	if algo != "" && algo != "sha256" {
		return nil, fail500("pvesim verifies only sha256 checksums, not %s", algo)
	}
	volid := fmt.Sprintf("%s:%s/%s", st.id, content, name)
	target := "/var/lib/vz/template/cache/" + name
	tmp := fmt.Sprintf("/var/tmp/pveupload-%x", s.pid*2654435761)
	return s.startTask(n.name, "imgcopy", "", c.id.user, func(fail string) ([]string, string) {
		lines := []string{
			"starting file import from: " + tmp,
			"target node: " + n.name,
			"target file: " + target,
			fmt.Sprintf("file size is: %d", size),
			fmt.Sprintf("command: cp -- %s %s", tmp, target),
		}
		if want != "" {
			if got != want {
				return lines, fmt.Sprintf("checksum mismatch: got '%s' != expect '%s'", got, want)
			}
			lines = append(lines, "calculating checksum...OK, checksum verified")
		}
		if fail != "" && !strings.HasPrefix(fail, "WARNINGS: ") {
			return lines, fail
		}
		st.vols[volid] = &volume{volid: volid, content: content, format: volFormat(name), size: size, ctime: s.now().Unix(), oci: oci, ociErr: ociErr}
		return append(append(lines, "finished file import successfully"), warnLines(fail)...), fail
	}), nil
}

// page reads the start and limit parameters of a paged GET (task list,
// task log), with PVE's defaults 0 and 50.
func page(c *call) (start, limit int) {
	start, limit = 0, 50
	if v, e := strconv.Atoi(c.p["start"]); e == nil {
		start = v
	}
	if v, e := strconv.Atoi(c.p["limit"]); e == nil {
		limit = v
	}
	return start, limit
}
