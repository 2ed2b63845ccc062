package pve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// nodeFiles reads what a PVE node keeps in plain files, so that the pct
// transport does not start a Perl interpreter that loads the PVE stack
// (pveversion, pvesm, pvesh: about a CPU-second and ~150 MB each) to learn
// a fact a file states. Each read reports whether the file said; when it
// did not (not a node's layout, pmxcfs not mounted), the transport asks
// the tool, whose answer or error is then the one to trust.
type nodeFiles struct {
	pmxcfs     string // /etc/pve: storage.cfg, datacenter.cfg
	dpkgStatus string // /var/lib/dpkg/status
}

// readOptional returns a file's bytes, or nil when it does not exist.
func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// versions reads the installed pve-manager and pve-container versions
// from dpkg's status file, where `pveversion -v` takes them (pve-manager
// 9.2.11 bin/pveversion -> PVE/API2/APT.pm versions: AptPkg's CurrentVer,
// which is dpkg's record of the installed package). ok is false when the
// file lists no installed pve-manager or pve-container.
func (f nodeFiles) versions() (manager, container Version, ok bool, err error) {
	if f.dpkgStatus == "" {
		return Version{}, Version{}, false, nil
	}
	b, err := readOptional(f.dpkgStatus)
	if err != nil || b == nil {
		return Version{}, Version{}, false, err
	}
	got := installedVersions(b, "pve-manager", "pve-container")
	m, mok := got["pve-manager"]
	c, cok := got["pve-container"]
	if !mok || !cok {
		return Version{}, Version{}, false, nil
	}
	return m, c, true, nil
}

// installedVersions reads dpkg status stanzas (deb-control fields, a blank
// line between packages) and returns the upstream version of each named
// package that is installed ("Status: install ok installed").
func installedVersions(status []byte, names ...string) map[string]Version {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	res := map[string]Version{}
	for _, stanza := range bytes.Split(status, []byte("\n\n")) {
		var pkg, st, ver string
		for _, l := range strings.Split(string(stanza), "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
				switch k {
				case "Package":
					pkg = v
				case "Status":
					st = v
				case "Version":
					ver = v
				}
			}
		}
		if !want[pkg] || st != "install ok installed" {
			continue
		}
		if m := bareVersion.FindStringSubmatch(ver); m != nil {
			res[pkg] = versionOf(m)
		}
	}
	return res
}

// fileStorageTypes are the storage plugins whose vztmpl volumes are files
// under the storage's path (pve-storage 9.1.7: DirPlugin, NFSPlugin,
// CIFSPlugin, CephFSPlugin, BTRFSPlugin use Plugin.pm filesystem_path ->
// get_subdir). Other types answer through pvesm.
var fileStorageTypes = map[string]bool{"dir": true, "nfs": true, "cifs": true, "cephfs": true, "btrfs": true}

// templateDir reads storage.cfg for the directory of storeid's vztmpl
// files, as pve-storage 9.1.7 Plugin.pm get_subdir makes it: the
// storage's path, then its content-dirs override for vztmpl or
// template/cache. ok is false when storage.cfg is absent, does not define
// storeid, or its type keeps templates elsewhere.
func (f nodeFiles) templateDir(storeid string) (string, bool, error) {
	b, err := readOptional(filepath.Join(f.pmxcfs, "storage.cfg"))
	if err != nil || b == nil {
		return "", false, err
	}
	typ, props := storageSection(b, storeid)
	if !fileStorageTypes[typ] || props["path"] == "" {
		return "", false, nil
	}
	sub := "template/cache"
	for _, d := range splitList(props["content-dirs"]) {
		if c, p, ok := strings.Cut(d, "="); ok && c == "vztmpl" {
			sub = p
		}
	}
	return filepath.Join(props["path"], sub), true, nil
}

// storageSection finds "TYPE: ID" in a section config (pve-common
// SectionConfig.pm parse_config: a header at the start of a line, then
// indented "key value" lines up to a blank line) and returns its type and
// properties.
func storageSection(cfg []byte, id string) (string, map[string]string) {
	var typ string
	var props map[string]string
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			if props != nil && strings.TrimSpace(l) == "" {
				return typ, props
			}
			continue
		}
		if l[0] != ' ' && l[0] != '\t' {
			if props != nil {
				return typ, props
			}
			t, sid, ok := strings.Cut(l, ":")
			if ok && strings.TrimSpace(sid) == id {
				typ, props = strings.TrimSpace(t), map[string]string{}
			}
			continue
		}
		if props != nil {
			k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
			props[k] = strings.TrimSpace(v)
		}
	}
	return typ, props
}

// splitList is PVE::Tools::split_list: items separated by commas,
// semicolons or blanks.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ';' || c == ' ' || c == '\t' })
}

// nextIDRange is datacenter.cfg's next-id range, lower inclusive, upper
// exclusive, defaults 100 and 1,000,000 (pve-cluster 9.1.6
// DataCenterConfig.pm next_id_format; pve-manager 9.2.11 API2/Cluster.pm
// nextid reads it so). A datacenter.cfg that does not exist is the
// defaults, as cfs_read_file returns for a missing file.
func (f nodeFiles) nextIDRange() (lower, upper int, err error) {
	lower, upper = 100, 1000*1000
	b, err := readOptional(filepath.Join(f.pmxcfs, "datacenter.cfg"))
	if err != nil || b == nil {
		return lower, upper, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(l, "next-id:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(strings.TrimSpace(v), ",") {
			k, n, _ := strings.Cut(kv, "=")
			i, perr := strconv.Atoi(n)
			if perr != nil {
				return 0, 0, errdefs.New(errdefs.ErrInvalidArgument, "datacenter.cfg next-id %q: %s is not a number", strings.TrimSpace(v), k)
			}
			switch k {
			case "lower":
				lower = i
			case "upper":
				upper = i
			}
		}
	}
	return lower, upper, nil
}

// lowestFreeVMID is /cluster/nextid's answer computed from guests, the
// cluster's whole vmlist as /cluster/resources gives it to root (pve-manager
// 9.2.11 API2/Cluster.pm: both iterate PVE::Cluster::get_vmlist ids): the
// lowest VMID in [lower, upper) that no guest holds and avoid does not hold.
func lowestFreeVMID(guests []resource, lower, upper int, avoid map[int]bool) (int, error) {
	used := map[int]bool{}
	for _, g := range guests {
		used[g.vmid()] = true
	}
	for i := lower; i < upper; i++ {
		if !used[i] && !avoid[i] {
			return i, nil
		}
	}
	return 0, &errdefs.Error{Cat: errdefs.ErrUnavailable,
		Msg:  fmt.Sprintf("unable to get any free VMID in range [%d, %d]", lower, upper),
		Hint: "widen datacenter.cfg next-id, or remove unused guests"}
}

// ctStatus is `pct status` read on the node (pve-container 6.1.10
// CLI/pct.pm status: load_config, which fails for a CT with no config
// here, then LXC.pm vmstatus: running when the CT's LXC monitor listens,
// list_active_containers). The monitor is asked through lxc-info, a C
// tool: any state but STOPPED has one. ok is false when the config
// directory does not exist (pmxcfs not mounted): then pct says why.
func (t *pctTransport) ctStatus(ctx context.Context, vmid int) (string, bool, error) {
	if _, ok, err := t.readCTConfig("pct status", vmid); !ok || err != nil {
		return "", ok, err
	}
	st, err := t.host.lxcState(ctx, vmid)
	if err != nil {
		return "", true, err
	}
	if st == "STOPPED" {
		return "stopped", true, nil
	}
	return "running", true, nil
}

// nodeNameOf names the node whose CT configs dir holds: /etc/pve/lxc is a
// link to /etc/pve/nodes/NODE/lxc.
func nodeNameOf(dir string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		if n := filepath.Base(filepath.Dir(real)); filepath.Base(filepath.Dir(filepath.Dir(real))) == "nodes" {
			return n
		}
	}
	h, _ := os.Hostname()
	return h
}

// ctConfig is `pct config VMID` read from the CT's file on the node, with
// no Perl started: pve-container 6.1.10 LXC/Config.pm parse_pct_config
// (sections [pve:pending] and [SNAPSHOT] after the current one; "#" lines
// and description: are the description, decode_text'ed; every
// lxc.environment.runtime line one variable of env, NUL-joined; other
// lxc.* keys raw, left out as pct config's parsed keys go) and
// pve-guest-common 6.0.2 AbstractConfig.pm load_current_config (pending
// values taken in, pending deletes applied: what `pct config` prints
// without --current). ok is false when the config directory does not
// exist (pmxcfs not mounted): then pct says why.
func (t *pctTransport) ctConfig(vmid int) (map[string]string, bool, error) {
	raw, ok, err := t.readCTConfig("pct config", vmid)
	if !ok || err != nil {
		return nil, ok, err
	}
	return parseCTConfigFile(string(raw)), true, nil
}

// readCTConfig reads CT vmid's config file for step (the pct command it
// stands in for); a missing file is pct's own error, classified as pct's
// would be. ok is false when the config directory does not exist.
func (t *pctTransport) readCTConfig(step string, vmid int) ([]byte, bool, error) {
	if _, err := os.Stat(t.files.configDir); err != nil {
		return nil, false, nil
	}
	raw, err := os.ReadFile(filepath.Join(t.files.configDir, strconv.Itoa(vmid)+".conf"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, classify(step, vmid, 255,
			fmt.Sprintf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", nodeNameOf(t.files.configDir), vmid))
	}
	if err != nil {
		return nil, true, errdefs.Wrap(errdefs.ErrInternal, err, "read CT %d's config", vmid)
	}
	return raw, true, nil
}

func parseCTConfigFile(raw string) map[string]string {
	cur, pending := map[string]string{}, map[string]string{}
	conf := cur
	var descr strings.Builder
	flush := func() {
		if descr.Len() > 0 {
			conf["description"] = descr.String()
		}
		descr.Reset()
	}
	for _, line := range strings.Split(raw, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(strings.TrimSpace(line), "]") {
			flush()
			if strings.EqualFold(strings.TrimSpace(line), "[pve:pending]") {
				conf = pending
			} else {
				conf = map[string]string{} // a snapshot: not the current config
			}
			continue
		}
		if d, ok := strings.CutPrefix(line, "#"); ok {
			descr.WriteString(decodeText(d) + "\n")
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "lxc.environment.runtime":
			if e, ok := conf["env"]; ok {
				conf["env"] = e + "\x00" + v
			} else {
				conf["env"] = v
			}
		case strings.HasPrefix(k, "lxc."):
		case k == "description":
			descr.WriteString(decodeText(v))
		default:
			conf[k] = v
		}
	}
	flush()
	for k, v := range pending {
		if k != "delete" {
			cur[k] = v
		}
	}
	for _, k := range splitList(pending["delete"]) {
		delete(cur, strings.TrimPrefix(k, "!"))
	}
	return cur
}

// decodeText is PVE::Tools::decode_text: %XX escapes undone.
func decodeText(s string) string {
	if d, err := urlUnescape(s); err == nil {
		return d
	}
	return s
}
