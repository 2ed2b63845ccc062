package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/proxcage/proxcage/test/pveschema"
)

// pvesh get PATH [--param value ...] [--output-format json|json-pretty|text]
//
// Implemented paths: /cluster/nextid, /cluster/resources, /version, /nodes,
// /nodes/{node}/lxc, /nodes/{node}/lxc/{vmid}/status/current,
// /nodes/{node}/lxc/{vmid}/config, /nodes/{node}/storage. Only "get".
func pveshMain(args []string) error {
	if len(args) == 0 {
		return fail("ERROR: no command specified\nUSAGE: pvesh <COMMAND> [ARGS] [OPTIONS]")
	}
	verb := args[0]
	switch verb {
	case "get", "ls", "create", "set", "delete", "usage":
	default:
		return fail("ERROR: unknown command 'pvesh %s'", verb)
	}
	if len(args) < 2 {
		return fail("400 not enough arguments\npvesh %s <api_path> [OPTIONS] [FORMAT_OPTIONS]", verb)
	}
	path := "/" + strings.Trim(args[1], "/")
	c, err := parseCLI(args[2:], func(n string) bool { return n == "noborder" || n == "noheader" || n == "human-readable" })
	if err != nil {
		return err
	}
	format := c.opts["output-format"]
	delete(c.opts, "output-format")
	for _, k := range []string{"noborder", "noheader", "human-readable"} {
		delete(c.opts, k)
	}
	if format == "" {
		format = "text"
	}
	if verb != "get" {
		methodName := map[string]string{"create": "POST", "set": "PUT", "delete": "DELETE", "ls": "GET", "usage": "GET"}[verb]
		return fail("No '%s' handler defined for '%s'", strings.ToLower(methodName), path)
	}
	res, err := pveshGet(path, c.opts)
	if err != nil {
		return err
	}
	return printResult(res, format)
}

func printResult(res any, format string) error {
	switch format {
	case "json":
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	case "json-pretty":
		b, _ := json.MarshalIndent(res, "", "   ")
		fmt.Println(string(b))
	case "text", "yaml":
		switch v := res.(type) {
		case string:
			fmt.Println(v)
		case nil:
		default:
			// The real text output is a box-drawn table; the double prints
			// pretty JSON instead (use --output-format json in scripts).
			b, _ := json.MarshalIndent(res, "", "   ")
			fmt.Println(string(b))
		}
	default:
		return fail("400 Parameter verification failed.\noutput-format: value '%s' does not have a value in the enumeration 'text, json, json-pretty, yaml'", format)
	}
	return nil
}

var (
	lxcPathRE = regexp.MustCompile(`^/nodes/([^/]+)/lxc(?:/([^/]+)(/.*)?)?$`)
	nodeRE    = regexp.MustCompile(`^/nodes/([^/]+)(/.*)?$`)
)

func noHandler(path string) error {
	return fail("No 'get' handler defined for '%s'", path)
}

func pveshGet(path string, opts map[string]string) (any, error) {
	// Like PVE, "localhost" names the node the call runs on.
	if rest, ok := strings.CutPrefix(path, "/nodes/localhost"); ok {
		path = "/nodes/" + nodeName() + rest
	}
	switch path {
	case "/cluster/nextid":
		return clusterNextID(opts)
	case "/cluster/resources":
		if errs := validate(method("cluster-resources"), opts); len(errs) > 0 {
			return nil, paramError(errs, "")
		}
		return clusterResources(opts["type"])
	case "/version":
		return versionInfo(), nil
	case "/nodes":
		return []map[string]any{{"node": nodeName(), "status": "online", "type": "node", "id": "node/" + nodeName(), "maxcpu": numCPU(), "level": ""}}, nil
	}
	if m := nodeRE.FindStringSubmatch(path); len(m) > 1 && m[1] != nodeName() {
		return nil, fail("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", m[1], m[1])
	}
	if path == "/nodes/"+nodeName()+"/storage" {
		return storageRows(false)
	}
	if path == "/nodes/"+nodeName()+"/network" {
		// GET /nodes/{node}/network: the node's interfaces; the double knows
		// only its bridges (any_bridge and bridge filter to them anyway).
		rows := []map[string]any{}
		for name := range bridges() {
			rows = append(rows, map[string]any{"iface": name, "type": "bridge", "active": 1, "autostart": 1})
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i]["iface"].(string) < rows[j]["iface"].(string) })
		return rows, nil
	}
	m := lxcPathRE.FindStringSubmatch(path)
	if m == nil {
		return nil, noHandler(path)
	}
	if m[2] == "" {
		var rows []map[string]any
		for _, id := range ctIDs() {
			if c, err := loadConf(id); err == nil {
				rows = append(rows, ctStatus(id, c))
			}
		}
		if rows == nil {
			rows = []map[string]any{}
		}
		return rows, nil
	}
	if msg := pveschema.CheckNamedFormat("pve-vmid", m[2]); msg != "" {
		return nil, fail("400 Parameter verification failed.\nvmid: invalid format - %s", msg)
	}
	vmid, _ := strconv.Atoi(m[2])
	conf, err := loadConf(vmid)
	if err != nil {
		return nil, err
	}
	switch m[3] {
	case "/status/current":
		return ctStatus(vmid, conf), nil
	case "/config":
		return configJSON(conf.currentView(false)), nil
	}
	return nil, noHandler(path)
}

// configJSON renders a config as GET .../config does: numbers for integer,
// number and boolean properties, strings otherwise, plus the digest.
func configJSON(c *ctConf) map[string]any {
	m := method("lxc-create")
	res := map[string]any{"digest": c.digest}
	for k, v := range c.Keys {
		p := m.Lookup(k)
		if p != nil && (p.Type == "integer" || p.Type == "boolean" || p.Type == "number") {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				res[k] = f
				continue
			}
		}
		res[k] = v
	}
	if c.Description != "" {
		res["description"] = c.Description
	}
	if len(c.Raw) > 0 {
		var raw [][2]string
		raw = append(raw, c.Raw...)
		res["lxc"] = raw
	}
	return res
}

// clusterNextID is GET /cluster/nextid: the lowest free VMID >= 100 (free
// of CTs and VMs), as a JSON string. It reserves nothing.
func clusterNextID(opts map[string]string) (any, error) {
	if errs := validate(method("cluster-nextid"), opts); len(errs) > 0 {
		return nil, paramError(errs, "")
	}
	used := map[int]string{}
	for _, id := range ctIDs() {
		used[id] = "CT"
	}
	list, err := vms()
	if err != nil {
		return nil, err
	}
	for _, v := range list {
		used[v.VMID] = "VM"
	}
	if s, ok := opts["vmid"]; ok {
		id, _ := strconv.Atoi(s)
		if _, taken := used[id]; taken {
			// pve-manager API2/Cluster.pm nextid: "VM" for either kind.
			return nil, fail("400 Parameter verification failed.\nvmid: VM %d already exists", id)
		}
		return strconv.Itoa(id), nil
	}
	// datacenter.cfg next-id, lower inclusive, upper exclusive, defaults
	// 100 and 1000000 (pve-manager 9.2.11 API2/Cluster.pm nextid;
	// pve-cluster 9.1.6 DataCenterConfig.pm next_id_format).
	lower, upper := nextIDRange()
	for id := lower; id < upper; id++ {
		if _, taken := used[id]; !taken {
			return strconv.Itoa(id), nil
		}
	}
	return nil, fail("unable to get any free VMID in range [%d, %d]", lower, upper)
}

func clusterResources(typ string) (any, error) {
	rows := []map[string]any{}
	node := nodeName()
	if typ == "" || typ == "vm" {
		for _, id := range ctIDs() {
			c, err := loadConf(id)
			if err != nil {
				continue
			}
			s := ctStatus(id, c)
			row := map[string]any{
				"id": fmt.Sprintf("lxc/%d", id), "type": "lxc", "node": node, "vmid": id,
				"status": s["status"], "name": s["name"], "template": s["template"],
				"maxmem": s["maxmem"], "mem": s["mem"], "maxcpu": s["cpus"], "cpu": 0,
				"maxdisk": s["maxdisk"], "disk": 0, "uptime": s["uptime"],
				"diskread": 0, "diskwrite": 0, "netin": 0, "netout": 0,
			}
			if l, ok := s["lock"]; ok {
				row["lock"] = l
			}
			if t, ok := s["tags"]; ok {
				row["tags"] = t
			}
			rows = append(rows, row)
		}
		list, err := vms()
		if err != nil {
			return nil, err
		}
		for _, v := range list {
			status := v.Status
			if status == "" {
				status = "stopped"
			}
			typ := v.Type
			if typ == "" {
				typ = "qemu"
			}
			row := map[string]any{
				"id": fmt.Sprintf("%s/%d", typ, v.VMID), "type": typ, "node": v.Node, "vmid": v.VMID,
				"status": status, "name": v.Name, "template": 0, "maxmem": 2147483648, "mem": 0,
				"maxcpu": 1, "cpu": 0, "maxdisk": 34359738368, "disk": 0, "uptime": 0,
				"diskread": 0, "diskwrite": 0, "netin": 0, "netout": 0,
			}
			if v.Tags != "" {
				row["tags"] = pveschema.UniqueTags(v.Tags)
			}
			rows = append(rows, row)
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i]["vmid"].(int) < rows[j]["vmid"].(int) })
	}
	if typ == "" || typ == "node" {
		rows = append(rows, map[string]any{"id": "node/" + node, "type": "node", "node": node,
			"status": "online", "maxcpu": numCPU(), "cpu": 0, "level": "", "cgroup-mode": 1})
	}
	if typ == "" || typ == "storage" {
		st, err := storageRows(true)
		if err != nil {
			return nil, err
		}
		rows = append(rows, st...)
	}
	return rows, nil
}

func storageRows(cluster bool) ([]map[string]any, error) {
	all, err := storages()
	if err != nil {
		return nil, err
	}
	total, used, avail := fsUsage(stateDir)
	rows := []map[string]any{}
	for _, s := range all {
		row := map[string]any{"storage": s.Storage, "type": s.Type, "content": s.Content,
			"total": total, "used": used, "avail": avail, "active": 1, "enabled": 1, "shared": 0}
		if s.Disabled {
			row["active"], row["enabled"] = 0, 0
		}
		if cluster {
			row = map[string]any{"id": "storage/" + nodeName() + "/" + s.Storage, "type": "storage",
				"storage": s.Storage, "node": nodeName(), "plugintype": s.Type, "content": s.Content,
				"status":  map[bool]string{true: "unknown", false: "available"}[s.Disabled],
				"maxdisk": total, "disk": used, "shared": 0}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func fsUsage(path string) (total, used, avail int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, 0
	}
	total = int64(st.Blocks) * st.Bsize
	avail = int64(st.Bavail) * st.Bsize
	used = total - int64(st.Bfree)*st.Bsize
	return
}

var versionRE = regexp.MustCompile(`^pve-manager/([^/\s]+)/([0-9a-fA-F]+)`)

func versionInfo() map[string]any {
	v := versionString()
	res := map[string]any{"version": v, "release": "", "repoid": ""}
	if m := versionRE.FindStringSubmatch(v); m != nil {
		res["version"] = m[1]
		res["repoid"] = m[2]
		parts := strings.Split(m[1], ".")
		if len(parts) >= 2 {
			res["release"] = parts[0] + "." + parts[1]
		} else {
			res["release"] = m[1]
		}
	}
	return res
}

func pveversionMain(args []string) error {
	verbose := false
	for _, a := range args {
		switch a {
		case "-v", "--verbose", "-verbose":
			verbose = true
		default:
			return fail("Unknown option: %s\nUSAGE: pveversion [--verbose]", strings.TrimLeft(a, "-"))
		}
	}
	v := versionString()
	if !verbose {
		fmt.Println(v)
		return nil
	}
	info := versionInfo()
	kernel := "unknown"
	if m := regexp.MustCompile(`running kernel: ([^)]+)`).FindStringSubmatch(v); m != nil {
		kernel = m[1]
	}
	fmt.Printf("proxmox-ve: %s.0 (running kernel: %s)\n", info["release"], kernel)
	fmt.Printf("pve-manager: %s (running version: %s/%s)\n", info["version"], info["version"], info["repoid"])
	fmt.Println("lxc-pve: 6.0.5-3")
	fmt.Printf("pve-container: %s\n", containerVersion())
	fmt.Println("pve-cluster: 9.0.7")
	_ = os.Stdout.Sync()
	return nil
}

// nextIDRange reads next-id from the optional datacenter.cfg.
func nextIDRange() (int, int) {
	lower, upper := 100, 1000*1000
	b, err := os.ReadFile(statePath("datacenter.cfg"))
	if err != nil {
		return lower, upper
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "next-id:"); ok {
			for _, kv := range strings.Split(strings.TrimSpace(v), ",") {
				k, n, _ := strings.Cut(kv, "=")
				if i, err := strconv.Atoi(n); err == nil && k == "lower" {
					lower = i
				} else if err == nil && k == "upper" {
					upper = i
				}
			}
		}
	}
	return lower, upper
}
