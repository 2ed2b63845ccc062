package lxc

// Translation of linux.resources and the cgroups path.

import (
	"fmt"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runcDefaultDevices are the device rules runc appends to every
// container's (specconv.AllowedDevices); path is the node a rule is for.
var runcDefaultDevices = []struct {
	rule devRule
	path string
}{
	{devRule{allow: true, typ: 'c', major: -1, minor: -1, access: "m"}, ""},
	{devRule{allow: true, typ: 'b', major: -1, minor: -1, access: "m"}, ""},
	{devRule{allow: true, typ: 'c', major: 1, minor: 3, access: "rwm"}, "/dev/null"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 8, access: "rwm"}, "/dev/random"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 7, access: "rwm"}, "/dev/full"},
	{devRule{allow: true, typ: 'c', major: 5, minor: 0, access: "rwm"}, "/dev/tty"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 5, access: "rwm"}, "/dev/zero"},
	{devRule{allow: true, typ: 'c', major: 1, minor: 9, access: "rwm"}, "/dev/urandom"},
	{devRule{allow: true, typ: 'c', major: 136, minor: -1, access: "rwm"}, ""}, // /dev/pts/*
	{devRule{allow: true, typ: 'c', major: 5, minor: 2, access: "rwm"}, ""},    // /dev/ptmx
	{devRule{allow: true, typ: 'c', major: 10, minor: 200, access: "rwm"}, ""}, // /dev/net/tun
}

func (t *translator) cg(field, key, value string) {
	prefix := "lxc.cgroup."
	if t.set.CgroupV2 {
		prefix = "lxc.cgroup2."
	}
	t.add(field, prefix+key, value)
}

// cgroups: linux.resources on the host's layout (v1: lxc.cgroup.*, v2:
// lxc.cgroup2.*), with runc's conversions for v2.
func (t *translator) cgroups() {
	if p := t.lx.CgroupsPath; p != "" {
		t.warn("linux.cgroupsPath: %q is not applied; LXC creates the container's cgroup itself (lxc.payload.%s)", p, t.id)
	}
	r := t.lx.Resources
	if r == nil {
		r = &specs.LinuxResources{}
	}
	t.memory(r.Memory)
	t.cpu(r.CPU)
	if r.Pids != nil && r.Pids.Limit != nil {
		// As runc: 0 is "1" (systemd cannot set 0), below 0 unlimited.
		v := "max"
		switch l := *r.Pids.Limit; {
		case l > 0:
			v = strconv.FormatInt(l, 10)
		case l == 0:
			v = "1"
		}
		t.cg("linux.resources.pids.limit", "pids.max", v)
	}
	t.blockIO(r.BlockIO)
	for i, h := range r.HugepageLimits {
		field := fmt.Sprintf("linux.resources.hugepageLimits[%d]", i)
		if !hugePageSize.MatchString(h.Pagesize) {
			t.fail("%s: page size %q is not like 2MB or 1GB", field, h.Pagesize)
			return
		}
		if t.set.CgroupV2 {
			t.cg(field, "hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
		} else {
			t.cg(field, "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
		}
	}
	for _, dev := range slices.Sorted(maps.Keys(r.Rdma)) {
		l := r.Rdma[dev]
		v := dev
		if l.HcaHandles != nil {
			v += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			v += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if v != dev {
			t.cg("linux.resources.rdma", "rdma.max", v)
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		if t.set.CgroupV2 {
			// runc ignores them on v2 too: there is no controller.
			t.warn("linux.resources.network: cgroup v2 has no net_cls/net_prio controller; classID and priorities are not applied")
		} else {
			if n.ClassID != nil {
				t.cg("linux.resources.network.classID", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
			}
			for _, p := range n.Priorities {
				t.cg("linux.resources.network.priorities", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
			}
		}
	}
	t.unified(r.Unified)
	t.deviceRules(r.Devices)
}

var hugePageSize = regexp.MustCompile(`^[0-9]+[KMG]B$`)

// memory: v1 limit_in_bytes (before memsw, which the kernel wants no
// smaller), memsw, soft limit; v2 memory.max, memory.swap.max (OCI swap is
// memory+swap: swap alone is the difference), memory.low, with runc's
// rules for -1 (max) and 0 (unset).
func (t *translator) memory(m *specs.LinuxMemory) {
	if m == nil {
		return
	}
	num := func(v int64) string {
		if v == -1 {
			return "max"
		}
		return strconv.FormatInt(v, 10)
	}
	var limit, swap int64
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil {
		swap = *m.Swap
	}
	if t.set.CgroupV2 {
		if limit != 0 {
			t.cg("linux.resources.memory.limit", "memory.max", num(limit))
		}
		switch {
		case limit == -1 && swap == 0:
			t.cg("linux.resources.memory.swap", "memory.swap.max", "max")
		case swap == -1:
			t.cg("linux.resources.memory.swap", "memory.swap.max", "max")
		case swap == 0:
		case limit == -1:
			t.cg("linux.resources.memory.swap", "memory.swap.max", num(swap))
		case limit == 0:
			t.fail("linux.resources.memory.swap: a swap limit needs a memory limit (cgroup v2 limits swap apart from memory)")
			return
		case swap < limit:
			t.fail("linux.resources.memory.swap: %d (memory+swap) is below the memory limit %d", swap, limit)
			return
		default:
			t.cg("linux.resources.memory.swap", "memory.swap.max", strconv.FormatInt(swap-limit, 10))
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			t.cg("linux.resources.memory.reservation", "memory.low", num(*m.Reservation))
		}
		if m.Swappiness != nil {
			t.warn("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness; %d is not applied", *m.Swappiness)
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			t.warn("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer; not applied")
		}
	} else {
		if limit != 0 {
			t.cg("linux.resources.memory.limit", "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
		}
		if swap != 0 {
			t.cg("linux.resources.memory.swap", "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			t.cg("linux.resources.memory.reservation", "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10))
		}
		if m.Swappiness != nil && int64(*m.Swappiness) != -1 {
			if *m.Swappiness > 100 {
				t.fail("linux.resources.memory.swappiness: %d is outside 0..100", *m.Swappiness)
				return
			}
			t.cg("linux.resources.memory.swappiness", "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			t.cg("linux.resources.memory.disableOOMKiller", "memory.oom_control", "1")
		}
	}
	if m.Kernel != nil || m.KernelTCP != nil { //nolint:staticcheck // deprecated, still read to warn
		t.warn("linux.resources.memory.kernel, kernelTCP: kernel memory limits are ignored (as runc does; the kernel dropped them)")
	}
	if m.UseHierarchy != nil {
		t.warn("linux.resources.memory.useHierarchy: not applied (runc ignores it as well; hierarchy is always on in current kernels)")
	}
	if m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate {
		t.warn("linux.resources.memory.checkBeforeUpdate: only meaningful for an update; ignored at create")
	}
}

// cpu: v1 cpu.shares, cfs_period_us, cfs_quota_us, cfs_burst_us,
// rt_period_us, rt_runtime_us; v2 cpu.weight (runc's conversion of
// shares), cpu.max "QUOTA PERIOD", cpu.max.burst. cpuset and cpu.idle
// are the same files on both.
func (t *translator) cpu(c *specs.LinuxCPU) {
	if c == nil {
		return
	}
	var quota int64
	var period uint64
	if c.Quota != nil {
		quota = *c.Quota
	}
	if c.Period != nil {
		period = *c.Period
	}
	if t.set.CgroupV2 {
		if c.Shares != nil && *c.Shares != 0 {
			t.cg("linux.resources.cpu.shares", "cpu.weight", strconv.FormatUint(cpuSharesToWeight(*c.Shares), 10))
		}
		if quota != 0 || period != 0 {
			v := "max"
			if quota > 0 {
				v = strconv.FormatInt(quota, 10)
			}
			if period == 0 {
				period = 100000 // the kernel's default period
			}
			t.cg("linux.resources.cpu.quota", "cpu.max", v+" "+strconv.FormatUint(period, 10))
		}
		if c.Burst != nil {
			t.cg("linux.resources.cpu.burst", "cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
		}
		if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			t.fail("linux.resources.cpu.realtimeRuntime: cgroup v2 has no real-time CPU budget")
			return
		}
	} else {
		if c.Shares != nil && *c.Shares != 0 {
			t.cg("linux.resources.cpu.shares", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		if period != 0 {
			t.cg("linux.resources.cpu.period", "cpu.cfs_period_us", strconv.FormatUint(period, 10))
		}
		if quota != 0 {
			t.cg("linux.resources.cpu.quota", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10))
		}
		if c.Burst != nil {
			t.cg("linux.resources.cpu.burst", "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10))
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			t.cg("linux.resources.cpu.realtimePeriod", "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			t.cg("linux.resources.cpu.realtimeRuntime", "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10))
		}
	}
	if c.Idle != nil {
		t.cg("linux.resources.cpu.idle", "cpu.idle", strconv.FormatInt(*c.Idle, 10))
	}
	if c.Cpus != "" {
		t.cg("linux.resources.cpu.cpus", "cpuset.cpus", c.Cpus)
	}
	if c.Mems != "" {
		t.cg("linux.resources.cpu.mems", "cpuset.mems", c.Mems)
	}
}

// cpuSharesToWeight converts cgroup v1 cpu.shares (2..262144) to v2
// cpu.weight (1..10000) as runc does (opencontainers/cgroups
// ConvertCPUSharesToCgroupV2Value): a quadratic in log2(shares) that maps
// the minimum, the default (1024 -> 100) and the maximum onto each other.
// 0 is unset.
func cpuSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exponent := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exponent)))
}

// blkioToIOWeight converts a v1 blkio weight (10..1000) to a v2 io.weight
// (1..10000) as runc does: linearly.
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// blockIO: v1 blkio.*, v2 io.weight (converted) and io.max.
func (t *translator) blockIO(b *specs.LinuxBlockIO) {
	if b == nil {
		return
	}
	v2 := t.set.CgroupV2
	if b.Weight != nil && *b.Weight != 0 {
		if v2 {
			t.cg("linux.resources.blockIO.weight", "io.weight", strconv.FormatUint(blkioToIOWeight(*b.Weight), 10))
		} else {
			t.cg("linux.resources.blockIO.weight", "blkio.weight", strconv.FormatUint(uint64(*b.Weight), 10))
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if v2 {
			t.warn("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight; not applied")
		} else {
			t.cg("linux.resources.blockIO.leafWeight", "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10))
		}
	}
	for _, d := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		if d.Weight != nil && *d.Weight != 0 {
			if v2 {
				t.cg("linux.resources.blockIO.weightDevice", "io.weight", dev+" "+strconv.FormatUint(blkioToIOWeight(*d.Weight), 10))
			} else {
				t.cg("linux.resources.blockIO.weightDevice", "blkio.weight_device", dev+" "+strconv.FormatUint(uint64(*d.Weight), 10))
			}
		}
		if d.LeafWeight != nil && *d.LeafWeight != 0 {
			if v2 {
				t.warn("linux.resources.blockIO.weightDevice %s: cgroup v2 has no leaf weight; not applied", dev)
			} else {
				t.cg("linux.resources.blockIO.weightDevice", "blkio.leaf_weight_device", dev+" "+strconv.FormatUint(uint64(*d.LeafWeight), 10))
			}
		}
	}
	for _, th := range []struct {
		field, v1, v2 string
		devs          []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range th.devs {
			dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
			if v2 {
				t.cg("linux.resources.blockIO."+th.field, "io.max", fmt.Sprintf("%s %s=%d", dev, th.v2, d.Rate))
			} else {
				t.cg("linux.resources.blockIO."+th.field, th.v1, fmt.Sprintf("%s %d", dev, d.Rate))
			}
		}
	}
}

var unifiedKey = regexp.MustCompile(`^[a-z0-9_]+\.[a-z0-9_.]+$`)

// unified: raw cgroup v2 files, lxc.cgroup2.FILE; on v1 there are none.
func (t *translator) unified(u map[string]string) {
	if len(u) == 0 {
		return
	}
	if !t.set.CgroupV2 {
		t.fail("linux.resources.unified: the host uses cgroup v1, which has no cgroup v2 files to set")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(u)) {
		if !unifiedKey.MatchString(k) || strings.Contains(k, "..") {
			t.fail("linux.resources.unified: %q is not a cgroup file name", k)
			return
		}
		t.cg(fmt.Sprintf("linux.resources.unified %q", k), k, u[k])
	}
}

// devRule is a device cgroup rule in the kernel's v1 syntax; src names
// where it came from.
type devRule struct {
	allow        bool
	typ          byte // 'a', 'b', 'c'
	major, minor int64
	access       string
	src          string
}

func (r devRule) String() string {
	if r.typ == 'a' {
		return "a"
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), r.access)
}

// overlaps: some device and access is in both rules.
func (r devRule) overlaps(o devRule) bool {
	return (r.typ == 'a' || o.typ == 'a' || r.typ == o.typ) &&
		(r.major < 0 || o.major < 0 || r.major == o.major) &&
		(r.minor < 0 || o.minor < 0 || r.minor == o.minor) &&
		strings.ContainsAny(r.access, o.access)
}

// deviceRules: the spec's rules, then the ones runc appends to every
// container (null, zero, full, tty, random, urandom, ptys, tun, mknod of
// any device; a default it drops when linux.devices lists that node),
// starting from "deny all" as runc's device program does. On v1 they are
// devices.deny/allow in order, which the kernel applies in order. On v2
// LXC emulates them with an eBPF program whose semantics differ: "a"
// resets the list and picks allow- or deny-by-default, and a rule of the
// default's own kind is ignored (lxc.container.conf(5), CONTROL GROUPS).
// So on v2 a deny that would take back an earlier allow (or an allow
// that would undo an earlier deny) cannot be expressed and is refused.
func (t *translator) deviceRules(spec []specs.LinuxDeviceCgroup) {
	var rules []devRule
	for i, d := range spec {
		field := fmt.Sprintf("linux.resources.devices[%d]", i)
		r := devRule{allow: d.Allow, major: -1, minor: -1, access: d.Access, src: field}
		switch d.Type {
		case "", "a":
			r.typ = 'a'
		case "b", "c":
			r.typ = d.Type[0]
		default:
			t.fail("%s: unknown device type %q (a, b or c)", field, d.Type)
			return
		}
		if d.Major != nil {
			r.major = *d.Major
		}
		if d.Minor != nil {
			r.minor = *d.Minor
		}
		if r.access == "" || strings.Trim(r.access, "rwm") != "" {
			t.fail("%s: access %q: want letters of rwm", field, d.Access)
			return
		}
		if r.typ == 'a' && (r.major >= 0 || r.minor >= 0 || len(r.access) != 3) {
			t.warn("%s: a rule for type a covers every device and access (as in the kernel); its numbers and access %q are not applied", field, d.Access)
		}
		rules = append(rules, r)
	}
	var nodes []string
	for _, d := range t.lx.Devices {
		nodes = append(nodes, path.Clean(d.Path))
	}
	for _, d := range runcDefaultDevices {
		if d.path != "" && slices.Contains(nodes, d.path) {
			continue
		}
		r := d.rule
		r.src = "runc's default device rule " + r.String()
		rules = append(rules, r)
	}
	if rules[0].typ != 'a' {
		rules = append([]devRule{{typ: 'a', access: "rwm"}}, rules...)
	}
	var local []devRule // v2: the exceptions since the last "a"
	allowAll := false
	for _, r := range rules {
		if t.set.CgroupV2 {
			switch {
			case r.typ == 'a':
				allowAll, local = r.allow, nil
			case r.allow == allowAll:
				// LXC ignores a rule of the default's own kind: fine when
				// it changes nothing, refused when it would take back an
				// earlier exception.
				for _, l := range local {
					if l.overlaps(r) {
						t.fail("%s: on cgroup v2, LXC's device program cannot take back the earlier %s %s after a default %s (it ignores such rules)", r.src, map[bool]string{true: "allow", false: "deny"}[l.allow], l, map[bool]string{true: "allow", false: "deny"}[allowAll])
						return
					}
				}
				continue
			default:
				local = append(local, r)
			}
		}
		key := "devices.deny"
		if r.allow {
			key = "devices.allow"
		}
		t.cg("linux.resources.devices", key, r.String())
	}
}
