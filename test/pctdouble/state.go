package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/proxcage/proxcage/internal/atomicfile"
)

// Layout of $PCTDOUBLE_DIR (see README.md):
//
//	lxc/<vmid>.conf                     PVE-style CT config (like /etc/pve/lxc)
//	volumes/<storage>/vm-<vmid>-disk-N  allocated volumes: rootfs and mpN (volume.go)
//	volumes/<storage>/.snap/<vol>/<snap> their snapshots
//	lxcpath/<vmid>/config               generated LXC config (like /var/lib/lxc)
//	storage/<storage>/template/cache/   templates (volid <storage>:vztmpl/<file>)
//	vms.json, storages.json, bridges, node, version, faults   (optional inputs)
//	.lock                               flock taken around every state change
var stateDir string

func initState() error {
	stateDir = os.Getenv("PCTDOUBLE_DIR")
	if stateDir == "" {
		return fail("pctdouble: PCTDOUBLE_DIR is not set; it must name the double's state directory (see test/pctdouble/README.md)")
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return fail("pctdouble: %v", err)
	}
	stateDir = abs
	for _, d := range []string{"lxc", "volumes", "lxcpath"} {
		if err := os.MkdirAll(filepath.Join(stateDir, d), 0o755); err != nil {
			return fail("pctdouble: %v", err)
		}
	}
	return nil
}

func statePath(parts ...string) string {
	return filepath.Join(append([]string{stateDir}, parts...)...)
}

func confPath(vmid int) string { return statePath("lxc", fmt.Sprintf("%d.conf", vmid)) }
func lxcPath() string          { return statePath("lxcpath") }

// lockState takes the global state lock (flock on $PCTDOUBLE_DIR/.lock) and
// returns the function that releases it. Every read-modify-write of the
// state happens under it, so parallel invocations behave like PVE's
// cluster-wide config locks.
func lockState() (func(), error) {
	f, err := os.OpenFile(statePath(".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fail("pctdouble: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fail("pctdouble: flock: %v", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) // Close drops it anyway
		f.Close()
	}, nil
}

// writeFileAtomic writes via a temporary file and rename, so lock-free
// readers (pct list, pct config) never see a half-written file.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, atomicfile.Options{Perm: 0o640})
}

func readTrimmed(name, def string) string {
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return def
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return def
	}
	return s
}

func nodeName() string { return readTrimmed("node", "pve") }

const defaultVersion = "pve-manager/9.1.1/ab12cd34 (running kernel: 6.8.12-4-pve)"

// versionString is pveversion's line: the file `version`, with the
// pve-manager version dpkg/status lists when it does (below).
func versionString() string {
	v := readTrimmed("version", defaultVersion)
	if pm := dpkgInstalled("pve-manager"); pm != "" {
		v = versionRE.ReplaceAllString(v, "pve-manager/"+pm+"/$2")
	}
	return v
}

// containerVersion is the pve-container version `pveversion -v` lists
// (dpkg/status, else the file `pve-container`; default the release whose
// source the double follows).
func containerVersion() string {
	if v := dpkgInstalled("pve-container"); v != "" {
		return v
	}
	return readTrimmed("pve-container", "6.1.10")
}

// dpkgInstalled is pkg's version in the optional dpkg/status (dpkg's
// status file format), the node's installed packages: pveversion -v reads
// them there (pve-manager 9.2.11 bin/pveversion -> PVE/API2/APT.pm
// versions, AptPkg's CurrentVer), and so may proxcage ([pve.tools]
// dpkg_status). "" when the file or the installed package is missing.
func dpkgInstalled(pkg string) string {
	b, err := os.ReadFile(statePath("dpkg", "status"))
	if err != nil {
		return ""
	}
	for _, stanza := range strings.Split(string(b), "\n\n") {
		f := map[string]string{}
		for _, l := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok {
				f[k] = v
			}
		}
		if f["Package"] == pkg && f["Status"] == "install ok installed" {
			return f["Version"]
		}
	}
	return ""
}

// bridges lists the bridge names that "exist" (file `bridges`, whitespace
// separated; default vmbr0).
func bridges() map[string]bool {
	if ns := netnsName(); ns != "" {
		return netnsBridges(ns) // the namespace's real bridges (netns.go)
	}
	res := map[string]bool{}
	for _, b := range strings.Fields(readTrimmed("bridges", "vmbr0")) {
		res[b] = true
	}
	return res
}

// storage is one entry of storages.json.
type storage struct {
	Storage  string `json:"storage"`
	Type     string `json:"type"`
	Content  string `json:"content"`
	Disabled bool   `json:"disabled,omitempty"`
	Shared   bool   `json:"shared,omitempty"`
	// Nodes limits the storage to these nodes (storage.cfg "nodes").
	Nodes []string `json:"nodes,omitempty"`
	// Path and ContentDirs: a file storage's directory and its
	// content-dirs overrides, from storage.cfg (default: storage/<id>).
	Path        string            `json:"path,omitempty"`
	ContentDirs map[string]string `json:"contentDirs,omitempty"`
}

// templateDir is where a file storage keeps vztmpl volumes: pve-storage
// 9.1.7 Plugin.pm get_subdir, its path then content-dirs' vztmpl or
// template/cache.
func (s storage) templateDir() string {
	base := s.Path
	if base == "" {
		base = statePath("storage", s.Storage)
	}
	sub := "template/cache"
	if d, ok := s.ContentDirs["vztmpl"]; ok {
		sub = d
	}
	return filepath.Join(base, sub)
}

func (s storage) hasContent(c string) bool {
	for _, x := range strings.Split(s.Content, ",") {
		if strings.TrimSpace(x) == c {
			return true
		}
	}
	return false
}

var defaultStorages = []storage{
	{Storage: "local", Type: "dir", Content: "vztmpl,iso,backup"},
	{Storage: "local-lvm", Type: "lvmthin", Content: "rootdir,images"},
}

func storages() ([]storage, error) {
	if b, err := os.ReadFile(statePath("storage.cfg")); err == nil {
		return parseStorageCfg(b)
	}
	b, err := os.ReadFile(statePath("storages.json"))
	if os.IsNotExist(err) {
		return defaultStorages, nil
	}
	if err != nil {
		return nil, fail("pctdouble: %v", err)
	}
	var res []storage
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fail("pctdouble: storages.json: %v", err)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Storage < res[j].Storage })
	return res, nil
}

// findStorage returns the storage or PVE's "storage 'x' does not exist".
func findStorage(id string) (storage, error) {
	all, err := storages()
	if err != nil {
		return storage{}, err
	}
	for _, s := range all {
		if s.Storage == id {
			if s.Disabled {
				return s, fail("storage '%s' is disabled", id)
			}
			// pve-storage Storage.pm storage_check_node.
			if len(s.Nodes) > 0 && !slices.Contains(s.Nodes, nodeName()) {
				return s, fail("storage '%s' is not available on node '%s'", id, nodeName())
			}
			return s, nil
		}
	}
	return storage{}, fail("storage '%s' does not exist", id)
}

// storageWithContent also checks the content type, as PVE's allocation does.
func storageWithContent(id, content string) (storage, error) {
	s, err := findStorage(id)
	if err != nil {
		return s, err
	}
	if !s.hasContent(content) {
		return s, fail("content type '%s' is not available or configured on storage '%s'", content, id)
	}
	return s, nil
}

// vm is one entry of vms.json: a guest only listed, that occupies a VMID.
// By default a QEMU VM; with "type": "lxc", a CT of another node (give its
// node), which pct on this node lists in /cluster/resources but cannot
// read or change.
type vm struct {
	VMID   int    `json:"vmid"`
	Name   string `json:"name"`
	Node   string `json:"node"`
	Status string `json:"status,omitempty"`
	Type   string `json:"type,omitempty"` // qemu (default) or lxc
	Tags   string `json:"tags,omitempty"`
}

func vms() ([]vm, error) {
	b, err := os.ReadFile(statePath("vms.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fail("pctdouble: %v", err)
	}
	var res []vm
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fail("pctdouble: vms.json: %v", err)
	}
	for i := range res {
		if res[i].Node == "" {
			res[i].Node = nodeName()
		}
	}
	return res, nil
}

// ctIDs lists the VMIDs that have a config, sorted.
func ctIDs() []int {
	ents, _ := os.ReadDir(statePath("lxc"))
	var ids []int
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".conf")
		if !ok {
			continue
		}
		if id, err := strconv.Atoi(n); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// vmidOwner says who holds a VMID: "CT", "VM" (with its node) or "".
func vmidOwner(vmid int) (string, string, error) {
	if _, err := os.Stat(confPath(vmid)); err == nil {
		return "CT", nodeName(), nil
	}
	list, err := vms()
	if err != nil {
		return "", "", err
	}
	for _, v := range list {
		if v.VMID == vmid {
			if v.Type == "lxc" {
				return "CT", v.Node, nil // Cluster.pm check_vmid_unused
			}
			return "VM", v.Node, nil
		}
	}
	return "", "", nil
}

// ---------------------------------------------------------------------------
// The CT config file, in pct's format (PVE::LXC::Config parse_pct_config /
// write_pct_config): per section, the description as '#'-comment lines at
// the top (each line passed through encode_text), then sorted "key: value"
// lines, then the env as one "lxc.environment.runtime: K=V" line per
// variable, then the raw "lxc.*" lines in their original order. The current
// config comes first, then "[pve:pending]" (changes waiting for the next
// start), then one "[NAME]" section per snapshot, sorted.

type ctConf struct {
	Description string
	Keys        map[string]string
	Raw         [][2]string // lxc.* entries
	digest      string
	// Pending is the [pve:pending] section (nil: none); Snapshots the
	// [NAME] sections. Both only on the top-level config.
	Pending   *ctConf
	Snapshots map[string]*ctConf
}

// envKey is the config key of one env variable (Config.pm).
const envKey = "lxc.environment.runtime"

func newConf() *ctConf { return &ctConf{Keys: map[string]string{}} }

var (
	confKeyRE     = regexp.MustCompile(`^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$`)
	confRawRE     = regexp.MustCompile(`^(lxc\.[a-zA-Z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*$`)
	confPendingRE = regexp.MustCompile(`(?i)^\[pve:pending\]\s*$`)
	confSectionRE = regexp.MustCompile(`(?i)^\[([a-z][a-z0-9_\-]+)\]\s*$`)
)

func parseConf(data []byte) *ctConf {
	c := newConf()
	c.Snapshots = map[string]*ctConf{}
	sum := sha1.Sum(data)
	c.digest = hex.EncodeToString(sum[:])
	cur := c
	var desc []string
	// parse_pct_config: a section's description is the comment lines
	// (and description: lines) up to the next section header.
	flush := func() {
		cur.Description = strings.Join(desc, "\n")
		desc = nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if confPendingRE.MatchString(line) {
			flush()
			cur = newConf()
			c.Pending = cur
			continue
		}
		if m := confSectionRE.FindStringSubmatch(line); m != nil {
			flush()
			cur = newConf()
			c.Snapshots[m[1]] = cur
			continue
		}
		if strings.HasPrefix(line, "#") {
			desc = append(desc, decodeText(line[1:]))
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if m := confRawRE.FindStringSubmatch(line); m != nil {
			if m[1] == envKey {
				// parse_pct_config: the env is these lines joined with NUL.
				if e, ok := cur.Keys["env"]; ok {
					cur.Keys["env"] = e + "\x00" + m[2]
				} else {
					cur.Keys["env"] = m[2]
				}
				continue
			}
			cur.Raw = append(cur.Raw, [2]string{m[1], m[2]})
			continue
		}
		if m := confKeyRE.FindStringSubmatch(line); m != nil {
			if m[1] == "description" {
				desc = append(desc, decodeText(m[2]))
				continue
			}
			cur.Keys[m[1]] = m[2]
		}
	}
	flush()
	delete(c.Keys, "snapstate") // parse_pct_config: "just to be sure"
	return c
}

// bytes is write_pct_config. Like it, it first drops the unusedN entries
// whose volume the current config uses again.
func (c *ctConf) bytes() []byte {
	c.dropUsedUnused()
	b := c.sectionBytes()
	if c.Pending != nil && (len(c.Pending.Keys) > 0 || len(c.Pending.Raw) > 0 || c.Pending.Description != "") {
		b = append(b, "\n[pve:pending]\n"...)
		b = append(b, c.Pending.sectionBytes()...)
	}
	names := make([]string, 0, len(c.Snapshots))
	for n := range c.Snapshots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b = append(b, "\n["+n+"]\n"...)
		b = append(b, c.Snapshots[n].sectionBytes()...)
	}
	return b
}

// dropUsedUnused: write_pct_config removes 'unusedX' settings if the
// volume is still used (get_vm_volumes: rootfs and mpN volumes).
func (c *ctConf) dropUsedUnused() {
	used := map[string]bool{}
	for _, k := range volumeKeys(c.Keys) {
		used[volumeOf(k, c.Keys[k])] = true
	}
	for _, k := range unusedKeys(c.Keys) {
		if used[c.Keys[k]] {
			delete(c.Keys, k)
		}
	}
}

func (c *ctConf) sectionBytes() []byte {
	var b bytes.Buffer
	if c.Description != "" {
		for _, l := range strings.Split(c.Description, "\n") {
			b.WriteString("#" + encodeText(l) + "\n")
		}
	}
	keys := make([]string, 0, len(c.Keys))
	for k := range c.Keys {
		if k != "description" && k != "digest" && k != "env" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, c.Keys[k])
	}
	// write_pct_config: split(/\0+/, $env), one line each.
	for _, e := range splitEnv(c.Keys["env"]) {
		fmt.Fprintf(&b, "%s: %s\n", envKey, e)
	}
	for _, r := range c.Raw {
		if r[0] != envKey { // written above from env
			fmt.Fprintf(&b, "%s: %s\n", r[0], r[1])
		}
	}
	return b.Bytes()
}

// currentView is load_current_config($vmid, $current): the current
// section, with the pending changes applied unless current is set, and
// without snapshots.
func (c *ctConf) currentView(current bool) *ctConf {
	v := &ctConf{Description: c.Description, Keys: map[string]string{}, Raw: c.Raw, digest: c.digest}
	for k, val := range c.Keys {
		v.Keys[k] = val
	}
	if c.Pending != nil && !current {
		for k, val := range c.Pending.Keys {
			if k != "delete" {
				v.Keys[k] = val
			}
		}
		for _, k := range pendingDeletes(c.Pending) {
			delete(v.Keys, k)
		}
	}
	return v
}

// pendingDeletes is parse_pending_delete: the keys of "delete:", a '!'
// prefix (force) dropped.
func pendingDeletes(p *ctConf) []string {
	var res []string
	for _, k := range strings.FieldsFunc(p.Keys["delete"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		res = append(res, strings.TrimPrefix(k, "!"))
	}
	return res
}

// noConfErr is pct's text for a missing CT.
func noConfErr(vmid int) error {
	return fail("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", nodeName(), vmid)
}

func loadConf(vmid int) (*ctConf, error) {
	b, err := os.ReadFile(confPath(vmid))
	if os.IsNotExist(err) {
		return nil, noConfErr(vmid)
	}
	if err != nil {
		return nil, fail("pctdouble: %v", err)
	}
	return parseConf(b), nil
}

func writeConf(vmid int, c *ctConf) error {
	if err := writeFileAtomic(confPath(vmid), c.bytes()); err != nil {
		return fail("pctdouble: writing config: %v", err)
	}
	return nil
}

// checkLock is PVE::AbstractConfig::check_lock.
func checkLock(c *ctConf) error {
	if l := c.Keys["lock"]; l != "" {
		return fail("CT is locked (%s)", l)
	}
	return nil
}

// encodeText is PVE::Tools::encode_text: URI-escape control characters,
// ':' and everything outside printable ASCII.
func encodeText(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 0x20 || c == ':' || c > 0x7e {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func decodeText(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// parseStorageCfg reads an optional storage.cfg in PVE's format (pve-common
// 9.2.1 SectionConfig.pm parse_config: "TYPE: ID" at the start of a line,
// then indented "key value" lines; pve-storage 9.1.7 Plugin.pm properties
// content, disable, shared, nodes, path, content-dirs). It takes the place
// of storages.json, and proxcage reads the same file beside ct_config_dir.
func parseStorageCfg(b []byte) ([]storage, error) {
	var res []storage
	var cur *storage
	for i, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if l[0] != ' ' && l[0] != '\t' {
			typ, id, ok := strings.Cut(l, ":")
			if !ok || strings.TrimSpace(id) == "" {
				return nil, fail("pctdouble: storage.cfg line %d: %q is not a section header", i+1, l)
			}
			res = append(res, storage{Storage: strings.TrimSpace(id), Type: strings.TrimSpace(typ)})
			cur = &res[len(res)-1]
			continue
		}
		if cur == nil {
			return nil, fail("pctdouble: storage.cfg line %d: a property before any section", i+1)
		}
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		v = strings.TrimSpace(v)
		switch k {
		case "content":
			cur.Content = v
		case "disable":
			cur.Disabled = v == "1"
		case "shared":
			cur.Shared = v == "1"
		case "nodes":
			cur.Nodes = strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == ';' || c == ' ' })
		case "path":
			cur.Path = v
		case "content-dirs":
			cur.ContentDirs = map[string]string{}
			for _, d := range strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == ';' || c == ' ' }) {
				if c, p, ok := strings.Cut(d, "="); ok {
					cur.ContentDirs[c] = p
				}
			}
		}
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Storage < res[j].Storage })
	return res, nil
}
