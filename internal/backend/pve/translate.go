package pve

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/lxctools"
	"github.com/proxcage/proxcage/internal/spec"
	"github.com/proxcage/proxcage/internal/volume"
)

// Bundle annotations the pve backend reads.
const (
	AnnotationVMID       = "org.proxcage.vmid"
	AnnotationRootfsSize = "org.proxcage.rootfs-size" // GiB
	AnnotationPrivileged = "org.proxcage.privileged"
	AnnotationFeatures   = "org.proxcage.features"
	AnnotationNetPrefix  = "org.proxcage.net"         // org.proxcage.net0..31, or org.proxcage.net=none
	AnnotationVolumeSize = "org.proxcage.volume-size" // GiB of each new volume (volume.Annotation lists them)
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
	// SourceKind tells what a bind mount's source is on the CT's node.
	// nil when the node is another host: PVE checks it there.
	SourceKind func(path string) SourceKind `json:"-"`
	// RootfsHasShell reports whether the rootfs has /bin/sh, which can
	// enter a working directory for an application container (pct has no
	// option for it). nil answers no.
	RootfsHasShell func() bool `json:"-"`
	// Image is the process an OCI image template asks for, when the CT is
	// made from one (PVE 9.1 maps its Entrypoint+Cmd, Env, WorkingDir and
	// User itself): only what the bundle changes becomes an option.
	Image *specs.Process `json:",omitempty"`
	// Keeper, when set, is the directory inside the CT where a keeper's
	// files are mounted (keeper.go): the CT's entrypoint becomes the
	// wrapper there, which runs the process as its child and records its
	// exit status, and Plan.Keeper carries the process.
	Keeper string `json:",omitempty"`
	// KeeperHostDir is the keeper's directory on the node, which LXC
	// bind-mounts at Keeper: a raw line of Plan.Raw once a keeper runs.
	KeeperHostDir string `json:",omitempty"`
	// RawLines: the transport can write raw lxc.* lines into the CT
	// config (pct, as root on the node); the API cannot.
	RawLines bool `json:",omitempty"`
}

// SourceKind is what a bind mount's source is.
type SourceKind int

// The kinds of bind mount sources.
const (
	SourceMissing SourceKind = iota
	SourceDir
	SourceFile   // a regular file, socket, fifo, ...
	SourceDevice // a character or block device node
)

// Node is what translation needs to know about the target node.
type Node struct {
	Version Version // pve-manager version
	// Container is the node's pve-container version, which decides what
	// an application container can take (the OCI code lives there, not
	// in pve-manager). Zero: unknown, taken as the newest (ContainerKnown).
	Container Version
}

// Version is a package version, major.minor[.patch].
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string {
	if v.Patch != 0 {
		return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

func (v Version) full() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports v >= major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// AtLeastPatch reports v >= major.minor.patch.
func (v Version) AtLeastPatch(major, minor, patch int) bool {
	if v.Major != major || v.Minor != minor {
		return v.AtLeast(major, minor)
	}
	return v.Patch >= patch
}

// ContainerKnown is the newest pve-container whose source was read for
// the gates below (pve-container debian/changelog and git log).
var ContainerKnown = Version{6, 1, 10}

// pve-container releases that changed what an application container takes.
var (
	containerEmptyEnv = Version{6, 0, 17} // 9a5f5ce: env values may be empty
	containerTabs     = Version{6, 0, 18} // 59335b7: tabs in env and entrypoint
	containerUser     = Version{6, 1, 0}  // "oci create: honor user defined in OCI image config"
)

func (n Node) container() Version {
	if n.Container == (Version{}) {
		return ContainerKnown
	}
	return n.Container
}

func (n Node) containerAtLeast(v Version) bool {
	return n.container().AtLeastPatch(v.Major, v.Minor, v.Patch)
}

// Option is one `--key value` of pct create.
type Option struct{ Key, Value string }

// Plan is a translated bundle: the options of `pct create VMID TEMPLATE`.
type Plan struct {
	Options []Option
	// Application is true when the bundle runs its own program (PVE 9.1
	// application container), false for a system container (/sbin/init).
	Application bool
	// Notes say what the translation left out on purpose, for the log.
	Notes []string
	// Keeper is the process the keeper's wrapper runs (Settings.Keeper).
	Keeper *KeeperProcess `json:",omitempty"`
	// Raw are lxc.* lines of the CT config that no pct option sets (a
	// keeper's mount entry): the pct transport writes them as root on
	// the node; the API has no parameter for them.
	Raw []Option `json:",omitempty"`
	// ResetEntrypoint: an OCI image's config replaces the entrypoint the
	// create asked for (pve-container 6.1.10 Create.pm
	// restore_oci_archive, after the create parameters), and its
	// cmd2string cannot carry every word (a quote): the transports set
	// the entrypoint again once the CT exists.
	ResetEntrypoint bool `json:",omitempty"`
}

// KeeperProcess is what the wrapper inside the CT runs: no entrypoint
// string carries it, so no quoting applies.
type KeeperProcess struct {
	Args []string `json:"args"`
	Cwd  string   `json:"cwd"`
	// UID and GID are the process's inside the CT (PVE runs the init as
	// the image's user): the keeper's fifos must be theirs.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// KeeperEntrypoint is the CT's entrypoint under a keeper: the wrapper,
// told where its files are. Bare words: LXC splits it as it is.
func KeeperEntrypoint(dir string) string { return dir + "/init --keeper " + dir }

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
	return &Plan{Options: t.opts, Application: t.app, Notes: t.notes, Keeper: t.keeper, Raw: t.raw, ResetEntrypoint: t.resetEntrypoint}, nil
}

type translator struct {
	id     string
	s      *specs.Spec
	set    Settings
	node   Node
	ann    map[string]string
	opts   []Option
	notes  []string
	app    bool
	priv   bool
	keeper *KeeperProcess
	// resetEntrypoint: Plan.ResetEntrypoint
	resetEntrypoint bool
	raw             []Option
}

func (t *translator) add(k, v string) { t.opts = append(t.opts, Option{k, v}) }

var (
	dnsLabel   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
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
	t.add("hostname", identifiers.Hostname(t.id))
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
			// OCI shares are cgroup v1 cpu.shares (2..262144, default
			// 1024); PVE 8/9 hand cpuunits to cgroup v2 cpu.weight
			// (pve-container LXC.pm: lxc.cgroup2.cpu.weight, clamped to
			// 1..10000 by pve-common CGroup.pm clamp_cpu_shares; default
			// 100). Convert as runc and crun do, default onto default.
			t.add("cpuunits", strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(*c.Shares), 10))
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

// managedFiles are the files every engine (podman, containerd, CRI-O,
// Docker) binds into its containers and a CT gets otherwise: the name
// from the hostname option (lxc.uts.name), resolv.conf from PVE's setup
// or, for a host-managed DHCP NIC, LXC's dhclient-script (pve-container
// LXC.pm manage_dhclient, ROOTFS=...), /etc/hosts from PVE's setup (the
// image's own under ostype unmanaged). PVE can bind only directories
// (LXC.pm mountpoint_mount: "directory '...' does not exist").
var managedFiles = map[string]string{
	"/etc/hostname":    "the CT's hostname comes from the hostname option",
	"/etc/resolv.conf": "a DHCP NIC's lease writes the CT's resolv.conf (LXC's dhclient-script), a managed ostype PVE's setup; otherwise it is the image's",
	"/etc/hosts":       "PVE's setup writes the CT's /etc/hosts for a managed ostype; otherwise it is the image's",
	// podman's marker that the process runs under podman, which a CT does not.
	"/run/.containerenv": "it marks a podman container, which a CT is not",
}

func (t *translator) note(format string, a ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, a...))
}

func (t *translator) mounts() error {
	n, dev := 0, 0
	if t.s.Linux != nil {
		dev = len(t.s.Linux.Devices)
	}
	for _, m := range t.s.Mounts {
		dst := path.Clean("/" + m.Destination)
		switch {
		case managedFiles[dst] != "":
			t.note("mount %s left out: %s", dst, managedFiles[dst])
		case dst == "/dev/shm":
			// LXC's autodev mounts a tmpfs on /dev after PVE's mount points,
			// which would hide one here; pve-container 6.1.10 mounts a tmpfs
			// on /dev/shm for application CTs (LXC.pm update_lxc_config).
			if spec.IsBind(m) {
				t.note("mount /dev/shm left out: the CT's /dev/shm is LXC's and PVE's own")
			}
		case spec.IsBind(m):
			v, isDev, err := t.bind(m, dst)
			if err != nil {
				return err
			}
			if isDev {
				t.add(fmt.Sprintf("dev%d", dev), v)
				dev++
				continue
			}
			t.add(fmt.Sprintf("mp%d", n), v)
			n++
		case slices.Contains(runtimeMounts, m.Type):
			// LXC mounts these in every CT.
		case m.Type == "tmpfs" && (dst == "/dev" || strings.HasPrefix(dst, "/dev/")):
			// LXC's autodev provides /dev and /dev/shm.
		case m.Type == "tmpfs" && t.set.RawLines:
			// No mount point type is a tmpfs; LXC mounts one from a raw
			// line of the CT config, as pve-container 6.1.10 does for
			// /dev/shm (containerd's default spec has one on /run).
			opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.ContainsAny(o, " \t\n") })
			t.raw = append(t.raw, Option{"lxc.mount.entry", fmt.Sprintf("tmpfs %s tmpfs %s 0 0",
				lxctools.EscapeMountPath(strings.TrimPrefix(dst, "/")), strings.Join(append(opts, "create=dir"), ","))})
		case m.Type == "tmpfs":
			return fmt.Errorf("mount %s (type tmpfs) needs [pve] transport \"pct\": no PVE mount point is a tmpfs, and the API cannot set the lxc.mount.entry line that mounts one", m.Destination)
		default:
			return fmt.Errorf("mount %s (type %q) is not supported on pve: only bind mounts (and tmpfs, over pct) become CT mounts", m.Destination, m.Type)
		}
	}
	return t.volumes(n)
}

// volumes maps the container's volumes (volume.Annotation) to new mount
// point volumes on the rootfs storage, numbered after the binds: given
// at create, PVE allocates and formats each with the CT's root as owner
// and mounts it before it extracts the image, so the image's files at
// the path land in it (pve-container 6.1.10 API2/LXC.pm create_vm:
// create_disks, then mount_all before restore_oci_archive); backup=1
// puts it in vzdump's backups. Not keepattrs=1: mount_all makes the
// directory under the mount as the CT's root, 0755, before extraction,
// and keepattrs would copy that (not the image's directory) onto the
// volume root at every start (lxc-pve-prestart-hook).
func (t *translator) volumes(n int) error {
	vols, err := volume.Decode(t.ann)
	if err != nil || len(vols) == 0 {
		return err
	}
	size := 8
	if v, ok := t.ann[AnnotationVolumeSize]; ok {
		if size, err = strconv.Atoi(v); err != nil || size < 1 {
			return fmt.Errorf("annotation %s=%q: want a size in GiB (a positive integer)", AnnotationVolumeSize, v)
		}
	}
	for _, v := range vols {
		val := fmt.Sprintf("%s:%d,mp=%s,backup=1", t.set.RootfsStorage, size, v.Path)
		if v.ReadOnly {
			val += ",ro=1"
		}
		t.add(fmt.Sprintf("mp%d", n), val)
		n++
	}
	return nil
}

// bind maps a bind mount to an mpN (a directory) or a devN (a device
// node) value. PVE takes any source under /dev/ for a device
// (Config.pm classify_mountpoint) and binds nothing but directories.
func (t *translator) bind(m specs.Mount, dst string) (value string, isDev bool, err error) {
	src := m.Source
	ro := slices.Contains(m.Options, "ro")
	kind := SourceDir
	if t.set.SourceKind != nil {
		kind = t.set.SourceKind(src)
	}
	if strings.HasPrefix(path.Clean(src), "/dev/") {
		if kind != SourceDevice && t.set.SourceKind != nil {
			return "", false, fmt.Errorf("bind mount %s: source %s is under /dev/ but no device node, and PVE takes every source there for a device (pve-container Config.pm classify_mountpoint); bind a directory outside /dev/", dst, src)
		}
		if dst != path.Clean(src) {
			return "", false, fmt.Errorf("bind mount %s: device %s can only appear at its own path in a CT (PVE devN passthrough); mount it at %s", dst, src, path.Clean(src))
		}
		v := path.Clean(src)
		if ro {
			v += ",deny-write=1"
		}
		return v, true, nil
	}
	switch kind {
	case SourceMissing:
		return "", false, fmt.Errorf("bind mount %s: source %s does not exist on this node", dst, src)
	case SourceFile, SourceDevice:
		return "", false, fmt.Errorf("bind mount %s: source %s is not a directory, and a PVE mount point can only bind a directory (pve-container LXC.pm mountpoint_mount); bind the directory that holds it, or copy the file into the image", dst, src)
	}
	v := fmt.Sprintf("%s,mp=%s", src, dst)
	if ro {
		v += ",ro=1"
	}
	return v, false, nil
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
	imgUser, why := img.User, ""
	if !t.node.containerAtLeast(containerUser) {
		// Before 6.1.0 pve-container ignores the image's User: root.
		imgUser = specs.User{}
		why = fmt.Sprintf(", and pve-container %s (before %s) ignores the image's User", t.node.container().full(), containerUser.full())
	}
	if p.User.UID != imgUser.UID || p.User.GID != imgUser.GID {
		return fmt.Errorf("process.user %d:%d: pct create has no option for an application container's user%s; use user %d:%d", p.User.UID, p.User.GID, why, imgUser.UID, imgUser.GID)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	tabOK := t.node.containerAtLeast(containerTabs)
	if err := t.checkEnv(p.Env, tabOK); err != nil {
		return err
	}
	switch {
	case t.set.Keeper != "":
		// The wrapper runs the process, enters its cwd and passes the
		// env PVE gives the init on.
		t.keeper = &KeeperProcess{Args: p.Args, Cwd: cwd, UID: p.User.UID, GID: p.User.GID}
		t.add("entrypoint", KeeperEntrypoint(t.set.Keeper))
		if t.set.KeeperHostDir != "" {
			t.raw = append(t.raw, Option{"lxc.mount.entry", keeperMountLine(t.set.KeeperHostDir, t.set.Keeper)})
		}
	case t.set.Image != nil && slices.Equal(p.Args, img.Args) && slices.Equal(p.Env, img.Env) && cwd == img.Cwd && pveCarries(img.Args):
		// PVE takes all of it from the image.
		t.app = true
		t.unmanaged()
		return nil
	default:
		ep, err := t.entrypoint(p.Args, p.Env, cwd != img.Cwd, cwd, tabOK)
		if err != nil {
			return err
		}
		t.add("entrypoint", ep)
		t.resetEntrypoint = t.set.Image != nil
	}
	t.app = true
	if len(p.Env) > 0 && (t.set.Image == nil || !slices.Equal(p.Env, img.Env)) {
		for _, e := range p.Env {
			if err := checkEnvVar(e); err != nil {
				return err
			}
		}
		t.add("env", strings.Join(p.Env, "\x00"))
	}
	t.add("cmode", "console")
	t.unmanaged()
	// An application image manages no network itself.
	for i, o := range t.opts {
		if strings.HasPrefix(o.Key, "net") && !strings.Contains(o.Value, "host-managed=") {
			t.opts[i].Value += ",host-managed=1"
		}
	}
	return nil
}

// unmanaged: an application image is no OS that PVE's setup knows;
// pve-container Setup.pm dies "unable to detect OS distribution" at
// create and at every start on an os-release ID it has no plugin for
// (wolfi, distroless, ...), and an image it does know would get PVE's
// network, hostname and DNS files written over its own at every start.
// ostype unmanaged skips that detection and setup.
func (t *translator) unmanaged() { t.add("ostype", "unmanaged") }

func (t *translator) identity() error {
	t.add("tags", Tag+";"+IDTag(t.id))
	t.add("description", descriptionPrefix+t.id)
	return nil
}

// checkEnv refuses what PVE's env pattern refuses, on this node's
// pve-container (Config.pm env: names \w+, no control characters; empty
// values since 6.0.17, tabs since 6.0.18). A newline is refused on every
// version: each variable is one lxc.environment.runtime line of the CT
// config (6.0.18 to 6.1.7 let it through by a wrong range, 2785bef).
func (t *translator) checkEnv(env []string, tabOK bool) error {
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		if !envKey.MatchString(k) {
			return fmt.Errorf("process.env %q: PVE accepts only names of letters, digits and '_'", k)
		}
		if i := ctlChar(v, tabOK); i >= 0 {
			return fmt.Errorf("process.env %s: the value holds control character %q, which PVE refuses (pve-container %s allows %s); remove it", k, v[i], t.node.container().full(), allowedCtl(tabOK))
		}
		if v == "" && !t.node.containerAtLeast(containerEmptyEnv) {
			return fmt.Errorf("process.env %s: an empty value needs pve-container %s or later (this node has %s); set a value or drop the variable", k, containerEmptyEnv.full(), t.node.container().full())
		}
	}
	return nil
}

func allowedCtl(tabOK bool) string {
	if tabOK {
		return "tab only"
	}
	return "none"
}

// entrypoint renders args (entering cwd first when enterCwd) as PVE's
// entrypoint string, so that LXC runs exactly args with exactly env (see
// initcmd.go). An argv no string can carry is rebuilt by the CT's
// /bin/sh, or refused.
func (t *translator) entrypoint(args, env []string, enterCwd bool, cwd string, tabOK bool) (string, error) {
	words := args
	if enterCwd {
		words = append([]string{cwd}, args...)
	}
	for i, a := range words {
		if j := ctlChar(a, tabOK); j >= 0 {
			what := fmt.Sprintf("process.args[%d]", i)
			if enterCwd {
				what = "process.cwd"
				if i > 0 {
					what = fmt.Sprintf("process.args[%d]", i-1)
				}
			}
			return "", fmt.Errorf("%s %q holds control character %q: PVE's entrypoint is one line of the CT config and refuses it (pve-container %s allows %s); pass it another way, e.g. in a file", what, a, a[j], t.node.container().full(), allowedCtl(tabOK))
		}
	}
	hasShell := t.set.RootfsHasShell != nil && t.set.RootfsHasShell()
	if enterCwd && !hasShell {
		return "", fmt.Errorf("process.cwd %q: pct create has no option for an application container's working directory, and the rootfs has no /bin/sh to enter it; use cwd \"/\"", cwd)
	}
	direct := args
	if enterCwd {
		// Images often set a WorkingDir: enter it through the CT's shell.
		direct = append([]string{"/bin/sh", "-c", `cd "$0" && ` + unsetShellVars(env) + `exec "$@"`, cwd}, args...)
	}
	if s, ok := joinInitCmd(direct); ok {
		return s, nil
	}
	if !hasShell {
		return "", fmt.Errorf("process.args %q: a word holds both ' and \" together with a blank or a leading quote, which PVE's entrypoint cannot carry (LXC splits lxc.init.cmd without escapes), and the rootfs has no /bin/sh to rebuild it; pass that word another way (a file, an environment variable)", args)
	}
	if !enterCwd {
		cwd = ""
	}
	return wrapInitCmd(cwd, args, env)
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
