package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

type node struct {
	name     string
	maxmem   int64
	mem      int64 // base use, without guests
	maxcpu   int
	storages map[string]*storage
	bridges  []string
}

type storage struct {
	id, typ, content string
	total            int64
	vols             map[string]*volume
}

func (st *storage) allows(content string) bool {
	for _, c := range strings.Split(st.content, ",") {
		if c == content {
			return true
		}
	}
	return false
}

func (st *storage) used() int64 {
	var u int64
	for _, v := range st.vols {
		u += v.size
	}
	return u
}

type volume struct {
	volid, content, format string
	size, ctime            int64
	vmid                   int
	snaps                  []string // its snapshots, oldest first
	// oci is an OCI archive template's image config (oci.go); ociErr
	// what parsing it said, for the create that uses it.
	oci    *ociProcess
	ociErr error
}

// ct is a simulated container: a config and a status.
type ct struct {
	vmid    int
	node    string
	conf    map[string]string
	lock    string
	status  string // running | stopped
	started time.Time
	// pending is the [pve:pending] section (changes a running CT gets at
	// its next start or stop); snaps the [NAME] snapshot sections, each a
	// copy of the config plus description, snaptime, parent, snapstate.
	pending map[string]string
	snaps   map[string]map[string]string
}

func (c *ct) maxmem() int64 {
	mib, err := strconv.ParseInt(c.conf["memory"], 10, 64)
	if err != nil {
		mib = 512
	}
	return mib << 20
}

// mem is what a running container "uses": a quarter of its limit.
func (c *ct) mem() int64 {
	if c.status != "running" {
		return 0
	}
	return c.maxmem() / 4
}

func (c *ct) maxdisk() int64 {
	_, size, _ := strings.Cut(c.conf["rootfs"], "size=")
	size, _, _ = strings.Cut(size, ",")
	return parseSize(size)
}

// parseSize reads a PVE disk size ("8G", "512M", bare number = GiB... as in
// rootfs "STORAGE:8"); returns bytes.
func parseSize(s string) int64 {
	if s == "" {
		return 0
	}
	mult := int64(1 << 30)
	switch s[len(s)-1] {
	case 'K':
		mult, s = 1<<10, s[:len(s)-1]
	case 'M':
		mult, s = 1<<20, s[:len(s)-1]
	case 'G':
		mult, s = 1<<30, s[:len(s)-1]
	case 'T':
		mult, s = 1<<40, s[:len(s)-1]
	}
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f * float64(mult))
}

// digest is the SHA-1 of the config file text, as PVE reports it: the
// keys, the pending section, the snapshot sections (write_pct_config).
func (c *ct) digest() string {
	h := sha1.New()
	section := func(conf map[string]string, lock string) {
		keys := make([]string, 0, len(conf))
		for k := range conf {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if lock != "" {
			_, _ = fmt.Fprintf(h, "lock: %s\n", lock) // a hash's Write never fails
		}
		for _, k := range keys {
			_, _ = fmt.Fprintf(h, "%s: %s\n", k, conf[k])
		}
	}
	section(c.conf, c.lock)
	if len(c.pending) > 0 {
		_, _ = fmt.Fprint(h, "\n[pve:pending]\n")
		section(c.pending, "")
	}
	for _, name := range sortedKeys(c.snaps) {
		_, _ = fmt.Fprintf(h, "\n[%s]\n", name)
		section(c.snaps[name], "")
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *ct) uptime(now time.Time) int64 {
	if c.status != "running" {
		return 0
	}
	u := int64(now.Sub(c.started).Seconds())
	if u < 0 {
		return 0
	}
	return u
}

// task is a simulated worker task.
type task struct {
	upid, node, typ, id, user string
	pid, pstart               uint32
	start, end                time.Time
	running                   bool
	exit                      string
	log                       []string
}

// work is what a task does when it finishes. fail is an injected exit text
// ("" if none); it returns the log lines and the exit status ("" = OK).
type work func(fail string) (lines []string, exit string)

// startTask registers a task and schedules its completion after
// TaskDuration. Call with s.mu held.
func (s *Server) startTask(nodeName, typ, id, user string, w work) string {
	s.pid++
	now := s.now()
	t := &task{node: nodeName, typ: typ, id: id, user: user, pid: s.pid, pstart: 0x00A1B2C3 + s.pid*7, start: now, running: true}
	t.upid = fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", nodeName, t.pid, t.pstart, now.Unix(), typ, id, user)
	fail := s.faults.TaskFail[typ]
	delete(s.faults.TaskFail, typ)
	s.tasks[t.upid] = t
	d := s.opts.TaskDuration
	if td, ok := s.opts.TaskDurations[typ]; ok {
		d = td
	}
	tm := time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		lines, exit := w(fail)
		t.log = append(t.log, lines...)
		switch {
		case exit == "" || exit == "OK":
			t.exit = "OK"
			t.log = append(t.log, "TASK OK")
		case strings.HasPrefix(exit, "WARNINGS: "):
			t.exit = exit
			t.log = append(t.log, "TASK "+exit)
		default:
			t.exit = exit
			t.log = append(t.log, "TASK ERROR: "+exit)
		}
		t.running, t.end = false, s.now()
	})
	s.timers = append(s.timers, tm)
	return t.upid
}

// parseUPID splits a UPID into its fields.
func parseUPID(upid string) (fields []string, ok bool) {
	f := strings.Split(upid, ":")
	if len(f) != 9 || f[0] != "UPID" || f[8] != "" {
		return nil, false
	}
	return f, true
}

var warningsRE = regexp.MustCompile(`^WARNINGS: \d+$`)

// warnLines returns the fake warning lines for "WARNINGS: n".
func warnLines(exit string) []string {
	n, _ := strconv.Atoi(strings.TrimPrefix(exit, "WARNINGS: "))
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("WARN: simulated warning %d", i))
	}
	return out
}

func volFormat(volid string) string {
	for _, ext := range []string{"tar.gz", "tar.xz", "tar.zst", "tar.bz2", "tar"} {
		if strings.HasSuffix(volid, "."+ext) {
			return map[string]string{"tar.gz": "tgz", "tar.xz": "txz", "tar.zst": "tzst", "tar.bz2": "tbz2", "tar": "tar"}[ext]
		}
	}
	return "raw"
}

// vmidOwner says who uses a VMID: "CT" or "VM" and the node, or "".
func (s *Server) vmidOwner(vmid int) (kind, nodeName string) {
	if c := s.cts[vmid]; c != nil {
		return "CT", c.node
	}
	for _, q := range s.opts.QemuVMs {
		if q.VMID == vmid {
			return "VM", q.Node
		}
	}
	return "", ""
}
