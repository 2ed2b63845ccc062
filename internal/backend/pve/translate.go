package pve

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/spec"
)

// Bundle annotations the pve backend reads.
const (
	AnnotationVMID       = "org.proxcage.vmid"
	AnnotationRootfsSize = "org.proxcage.rootfs-size" // GiB
	AnnotationPrivileged = "org.proxcage.privileged"
	AnnotationFeatures   = "org.proxcage.features"
	AnnotationNetPrefix  = "org.proxcage.net" // org.proxcage.net0..31, or org.proxcage.net=none
)

// Tag marks every CT proxcage creates; the description line carries the
// OCI id, so the id <-> VMID mapping survives a lost state directory, and
// a second tag, IDTag(id), makes a CT of a given id findable in the one
// cluster-wide resource list (which has tags, not descriptions).
const (
	Tag               = "proxcage"
	idTagPrefix       = "proxcage-id."
	descriptionPrefix = "proxcage oci-id="
)

// IDTag is the tag naming container id. PVE lower-cases tags (by default,
// pve-guest-common GuestHelpers.pm get_unique_tags), so it is lower-case
// here too; two ids that differ only in case share it, and the
// description tells them apart. Every character of an id is one a tag
// may hold (pve-common JSONSchema.pm PVE_TAG_RE).
func IDTag(id string) string { return idTagPrefix + strings.ToLower(id) }

// Settings is what translation needs from the [pve] config, and the
// probes that answer its questions about files, so that Translate itself
// reads nothing.
type Settings struct {
	RootfsStorage   string
	Bridge          string
	AllowPrivileged bool
	Features        string
	// SourceExists reports whether a bind mount's source exists on the
	// CT's node. nil when the node is another host: PVE checks it there.
	SourceExists func(path string) bool `json:"-"`
	// RootfsHasShell reports whether the rootfs has /bin/sh, which can
	// enter a working directory for an application container (pct has no
	// option for it). nil answers no.
	RootfsHasShell func() bool `json:"-"`
	// Image is the process an OCI image template asks for, when the CT is
	// made from one (PVE 9.1 maps its Entrypoint+Cmd, Env, WorkingDir and
	// User itself): only what the bundle changes becomes an option.
	Image *specs.Process `json:",omitempty"`
}

// Node is what translation needs to know about the target node.
type Node struct {
	Version Version // pve-manager version
}

// Version is a pve-manager release.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports v >= major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// Option is one `--key value` of pct create.
type Option struct{ Key, Value string }

// Plan is a translated bundle: the options of `pct create VMID TEMPLATE`.
type Plan struct {
	Options []Option
	// Application is true when the bundle runs its own program (PVE 9.1
	// application container), false for a system container (/sbin/init).
	Application bool
}

// Args renders the options as pct arguments.
func (p *Plan) Args() []string {
	out := make([]string, 0, 2*len(p.Options))
	for _, o := range p.Options {
		out = append(out, "--"+o.Key, o.Value)
	}
	return out
}

// Translate maps an OCI bundle to pct create options. It is pure: it reads
// nothing but its arguments (files only through the probes of set).
func Translate(id string, s *specs.Spec, set Settings, node Node) (*Plan, error) {
	t := &translator{id: id, s: s, set: set, node: node, ann: s.Annotations}
	if t.ann == nil {
		t.ann = map[string]string{}
	}
	steps := []func() error{
		t.hostname, t.privileges, t.resources, t.rootfs, t.mounts,
		t.network, t.devices, t.process, t.identity,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return &Plan{Options: t.opts, Application: t.app}, nil
}

type translator struct {
	id   string
	s    *specs.Spec
	set  Settings
	node Node
	ann  map[string]string
	opts []Option
	app  bool
	priv bool
}

func (t *translator) add(k, v string) { t.opts = append(t.opts, Option{k, v}) }

var (
	dnsLabel   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	notLabel   = regexp.MustCompile(`[^a-z0-9-]+`)
	envKey     = regexp.MustCompile(`^\w+$`)
	featureKey = []string{"nesting", "keyctl", "fuse", "mknod", "mount", "force_rw_sys"}
)

// hostname: the spec's, else derived from the id as a valid DNS label of
// at most 63 characters (containerd's 64-hex ids included).
func (t *translator) hostname() error {
	h := t.s.Hostname
	if h != "" {
		for _, l := range strings.Split(h, ".") {
			if !dnsLabel.MatchString(l) {
				return fmt.Errorf("hostname %q is not a valid DNS name", h)
			}
		}
		t.add("hostname", h)
		return nil
	}
	h = strings.Trim(notLabel.ReplaceAllString(strings.ToLower(t.id), "-"), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "proxcage"
	}
	t.add("hostname", h)
	return nil
}

// privileges: unprivileged unless the bundle asks and the config allows.
// PVE maps the ids of unprivileged CTs itself, so the spec's user
// namespace is not translated.
func (t *translator) privileges() error {
	if v, ok := t.ann[AnnotationPrivileged]; ok {
		want, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("annotation %s=%q: want true or false", AnnotationPrivileged, v)
		}
		if want && !t.set.AllowPrivileged {
			return fmt.Errorf("the bundle asks for a privileged CT (%s=true) but the config does not allow it: set allow_privileged = true in [pve] to permit privileged CTs", AnnotationPrivileged)
		}
		t.priv = want
	}
	if t.priv {
		t.add("unprivileged", "0")
	} else {
		t.add("unprivileged", "1")
	}
	features := t.set.Features
	if v, ok := t.ann[AnnotationFeatures]; ok {
		features = v
	}
	if features == "" {
		return nil
	}
	for _, kv := range strings.Split(features, ",") {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(featureKey, k) {
			return fmt.Errorf("feature %q is not a PVE CT feature (known: %s)", k, strings.Join(featureKey, ", "))
		}
		if k == "keyctl" && t.priv {
			return fmt.Errorf("feature keyctl is only for unprivileged CTs")
		}
	}
	t.add("features", features)
	return nil
}

const mib = 1 << 20

func (t *translator) resources() error {
	if t.s.Linux == nil || t.s.Linux.Resources == nil {
		return nil
	}
	r := t.s.Linux.Resources
	if m := r.Memory; m != nil && m.Limit != nil && *m.Limit > 0 {
		mem := *m.Limit / mib
		if mem < 16 {
			return fmt.Errorf("linux.resources.memory.limit %d bytes is below PVE's minimum of 16 MiB", *m.Limit)
		}
		t.add("memory", strconv.FormatInt(mem, 10))
		// OCI swap is memory+swap; PVE's is swap alone. -1 (unlimited) has
		// no PVE equivalent: PVE's default applies.
		if m.Swap != nil && *m.Swap >= *m.Limit {
			t.add("swap", strconv.FormatInt((*m.Swap-*m.Limit)/mib, 10))
		}
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && *c.Quota > 0 && c.Period != nil && *c.Period > 0 {
			limit := float64(*c.Quota) / float64(*c.Period)
			t.add("cpulimit", strconv.FormatFloat(min(limit, 8192), 'f', -1, 64))
		}
		if c.Cpus != "" {
			n, err := countCPUs(c.Cpus)
			if err != nil {
				return fmt.Errorf("linux.resources.cpu.cpus: %w", err)
			}
			t.add("cores", strconv.Itoa(n))
		}
		if c.Shares != nil && *c.Shares > 0 {
			t.add("cpuunits", strconv.FormatUint(min(*c.Shares, 500000), 10))
		}
	}
	return nil
}

// countCPUs counts the CPUs of a cpuset list such as "0-3,6".
func countCPUs(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bad cpu list %q", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("bad cpu list %q", list)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

func (t *translator) rootfs() error {
	size := 8
	if v, ok := t.ann[AnnotationRootfsSize]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("annotation %s=%q: want a size in GiB (a positive integer)", AnnotationRootfsSize, v)
		}
		size = n
	}
	t.add("rootfs", fmt.Sprintf("%s:%d", t.set.RootfsStorage, size))
	return nil
}

// runtimeMounts are provided by LXC itself in every CT.
var runtimeMounts = []string{"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}

func (t *translator) mounts() error {
	n := 0
	for _, m := range t.s.Mounts {
		bind := spec.IsBind(m)
		switch {
		case bind:
			if t.set.SourceExists != nil && !t.set.SourceExists(m.Source) {
				return fmt.Errorf("bind mount %s: source %s does not exist on this node", m.Destination, m.Source)
			}
			v := fmt.Sprintf("%s,mp=%s", m.Source, m.Destination)
			if slices.Contains(m.Options, "ro") {
				v += ",ro=1"
			}
			t.add(fmt.Sprintf("mp%d", n), v)
			n++
		case slices.Contains(runtimeMounts, m.Type):
			// LXC mounts these in every CT.
		case m.Type == "tmpfs" && (m.Destination == "/dev" || strings.HasPrefix(m.Destination, "/dev/")):
			// LXC's autodev provides /dev and /dev/shm.
		default:
			return fmt.Errorf("mount %s (type %q) is not supported on pve: only bind mounts become CT mount points", m.Destination, m.Type)
		}
	}
	return nil
}

func (t *translator) network() error {
	if t.s.Linux != nil {
		for _, ns := range t.s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace && ns.Path != "" {
				return fmt.Errorf("joining network namespace %s is not supported on pve: a CT gets its own network (use org.proxcage.netN annotations)", ns.Path)
			}
		}
	}
	if t.ann[AnnotationNetPrefix] == "none" {
		return nil
	}
	var nets []string
	for i := range 32 {
		if v, ok := t.ann[fmt.Sprintf("%s%d", AnnotationNetPrefix, i)]; ok {
			nets = append(nets, v)
		}
	}
	if len(nets) == 0 && t.s.Linux != nil && len(t.s.Linux.NetDevices) > 0 {
		names := make([]string, 0, len(t.s.Linux.NetDevices))
		for k, d := range t.s.Linux.NetDevices {
			if d.Name != "" {
				k = d.Name
			}
			names = append(names, k)
		}
		slices.Sort(names)
		for _, name := range names {
			nets = append(nets, "name="+name+",ip=dhcp")
		}
	}
	if len(nets) == 0 {
		nets = []string{"name=eth0,ip=dhcp"}
	}
	for i, v := range nets {
		kv := parseKV(v)
		if kv["name"] == "" {
			kv["name"] = fmt.Sprintf("eth%d", i)
		}
		if kv["bridge"] == "" {
			kv["bridge"] = t.set.Bridge
		}
		if tag := kv["tag"]; tag != "" {
			if n, err := strconv.Atoi(tag); err != nil || n < 1 || n > 4094 {
				return fmt.Errorf("net%d: VLAN tag %q must be 1..4094", i, tag)
			}
		}
		t.add(fmt.Sprintf("net%d", i), renderKV(kv, []string{"name", "bridge", "hwaddr", "ip", "gw", "ip6", "gw6", "tag", "mtu", "rate", "firewall", "host-managed", "type"}))
	}
	return nil
}

func parseKV(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// renderKV writes known keys in order, then any others sorted, so the
// result is stable.
func renderKV(kv map[string]string, order []string) string {
	var parts []string
	for _, k := range order {
		if v, ok := kv[k]; ok && v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	var rest []string
	for k, v := range kv {
		if !slices.Contains(order, k) {
			rest = append(rest, k+"="+v)
		}
	}
	slices.Sort(rest)
	return strings.Join(append(parts, rest...), ",")
}

func (t *translator) devices() error {
	if t.s.Linux == nil {
		return nil
	}
	for i, d := range t.s.Linux.Devices {
		v := d.Path
		if d.FileMode != nil {
			v += fmt.Sprintf(",mode=%04o", d.FileMode.Perm())
		}
		if d.UID != nil {
			v += fmt.Sprintf(",uid=%d", *d.UID)
		}
		if d.GID != nil {
			v += fmt.Sprintf(",gid=%d", *d.GID)
		}
		t.add(fmt.Sprintf("dev%d", i), v)
	}
	return nil
}

// process: /sbin/init is a system container; anything else is a PVE 9.1
// application container (entrypoint + env).
func (t *translator) process() error {
	p := t.s.Process
	if len(p.Args) == 1 && p.Args[0] == "/sbin/init" {
		return nil
	}
	if !t.node.Version.AtLeast(9, 1) {
		return fmt.Errorf("process.args %q makes this an application container, which needs Proxmox VE 9.1 or later (this node runs %s); use /sbin/init to run it as a system container", p.Args, t.node.Version)
	}
	img := t.set.Image
	if img == nil {
		// A rootfs template: the CT starts as root in /.
		img = &specs.Process{Cwd: "/"}
	}
	if p.User.UID != img.User.UID || p.User.GID != img.User.GID {
		return fmt.Errorf("process.user %d:%d: pct create has no option for an application container's user; use user %d:%d", p.User.UID, p.User.GID, img.User.UID, img.User.GID)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if t.set.Image != nil && slices.Equal(p.Args, img.Args) && slices.Equal(p.Env, img.Env) && cwd == img.Cwd {
		// PVE takes all of it from the image.
		t.app = true
		return nil
	}
	args := p.Args
	if cwd != img.Cwd {
		if t.set.RootfsHasShell == nil || !t.set.RootfsHasShell() {
			return fmt.Errorf("process.cwd %q: pct create has no option for an application container's working directory, and the rootfs has no /bin/sh to enter it; use cwd \"/\"", p.Cwd)
		}
		// Images often set a WorkingDir: enter it through the CT's shell.
		args = append([]string{"/bin/sh", "-c", `cd "$0" && exec "$@"`, p.Cwd}, args...)
	}
	t.app = true
	t.add("entrypoint", shellJoin(args))
	if len(p.Env) > 0 && (t.set.Image == nil || !slices.Equal(p.Env, img.Env)) {
		for _, e := range p.Env {
			if err := checkEnvVar(e); err != nil {
				return err
			}
		}
		t.add("env", strings.Join(p.Env, "\x00"))
	}
	t.add("cmode", "console")
	// An application image manages no network itself.
	for i, o := range t.opts {
		if strings.HasPrefix(o.Key, "net") && !strings.Contains(o.Value, "host-managed=") {
			t.opts[i].Value += ",host-managed=1"
		}
	}
	return nil
}

func (t *translator) identity() error {
	t.add("tags", Tag+";"+IDTag(t.id))
	t.add("description", descriptionPrefix+t.id)
	return nil
}

// shellJoin quotes args for PVE's entrypoint string, which LXC splits with
// shell-like rules.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// OCIIDFromDescription returns the OCI id recorded in a CT description.
func OCIIDFromDescription(desc string) (string, bool) {
	for _, line := range strings.Split(desc, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if id, ok := strings.CutPrefix(line, descriptionPrefix); ok {
			return id, true
		}
	}
	return "", false
}
