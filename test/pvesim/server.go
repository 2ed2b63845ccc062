// Package pvesim simulates the Proxmox VE 9.1 REST API (the subset a
// container runtime uses) over HTTPS, for tests and by hand. Nothing runs
// for real: containers are records whose status changes when their tasks
// finish. See README.md.
package pvesim

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a simulator. The zero value works: one node "pve1",
// user root@pam with password "secret", token root@pam!pvesim with secret
// DefaultTokenSecret, tasks that finish right away.
type Options struct {
	Listen string   // address to listen on; default 127.0.0.1:0
	Nodes  []string // node names; default ["pve1"]

	// Users maps "user@realm" to a password (ticket login); Tokens maps
	// "user@realm!tokenid" to a secret. If both are nil, the defaults above
	// are used.
	Users  map[string]string
	Tokens map[string]string
	// NoSysAudit: API tokens lack Sys.Audit on /nodes (a token given
	// PVEVMAdmin and PVEDatastoreUser only): GET /nodes/N/apt/versions
	// answers 403 (perm.go needSysAudit).
	NoSysAudit bool

	// Now is the clock used for tickets and task start times; default
	// time.Now. Use a FakeClock to expire tickets.
	Now func() time.Time

	// TaskDuration is how long every task stays "running"; TaskDurations
	// overrides it per task type (e.g. "vzcreate").
	TaskDuration  time.Duration
	TaskDurations map[string]time.Duration
	// AuthFailDelay delays every 401 (pveproxy waits about 3 s).
	AuthFailDelay time.Duration

	// NodeMaxMem / NodeMem set a node's total and used memory in bytes
	// (default 16 GiB / 2 GiB); running guests add their mem.
	NodeMaxMem map[string]int64
	NodeMem    map[string]int64

	// Bridges maps a node to its bridges (default: every node has vmbr0).
	Bridges map[string][]string
	// NoStorage maps a node to storage ids it lacks (default: every node
	// has local (backup,iso,vztmpl) and local-lvm (images,rootdir)).
	NoStorage map[string][]string
	// Storages are more storages every node has (minus NoStorage), e.g.
	// {ID: "tank", Type: "zfspool", Content: "images,rootdir"}: the type
	// decides the snapshot feature (lvmthin, zfspool, btrfs, rbd).
	Storages []StorageSpec

	// QemuVMs are fake VMs that occupy VMIDs and appear in resources.
	QemuVMs []QemuVM
	// Templates are volids present on every node from the start, e.g.
	// "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst".
	Templates []string

	// Logf, if set, receives one line per request.
	Logf func(format string, args ...any)
}

// StorageSpec is one storage.cfg entry (Total in bytes, default 100 GiB).
type StorageSpec struct {
	ID, Type, Content string
	Total             int64
}

// QemuVM is a fake QEMU guest (only listed; never managed).
type QemuVM struct {
	VMID   int
	Node   string
	Name   string
	Status string // running or stopped (default stopped)
	MaxMem int64  // bytes; default 2 GiB
}

// DefaultTokenSecret is the secret of the default token root@pam!pvesim.
const DefaultTokenSecret = "5ec2e7a0-0000-4000-8000-000000000001"

// Faults are the fault switches. Change them with Server.SetFaults or the
// convenience methods; counters are consumed as requests arrive.
type Faults struct {
	Latency time.Duration // added to every request

	FailNext  int            // fail this many next requests...
	FailCode  int            // ...with this code (502, 503 or 504; default 503)
	FailPath  *regexp.Regexp // ...counting only requests whose path matches (nil: all)...
	FailAfter bool           // ...after the request took effect (a proxy's 5xx)

	DropNext  int            // hijack and close this many next requests (-1: all)...
	DropPath  *regexp.Regexp // ...matching this path (nil: all)...
	DropAfter bool           // ...after the request took effect (else before)

	LockTimeout bool // config-lock operations fail with "got timeout"
	NoQuorum    bool // writes fail with "cluster not ready - no quorum?"
	// DisabledStorage marks storages disabled in storage.cfg.
	DisabledStorage map[string]bool
	// RaceNextCreate names a node where a CT is created at the same moment
	// as the next create, with its VMID (pmxcfs: "File exists").
	RaceNextCreate string
	// CfsLockTimeout: the next N create tasks time out on their rootfs
	// storage's cluster lock.
	CfsLockTimeout int
	TaskFail       map[string]string // task type -> exit text for its next task ("WARNINGS: n" succeeds with warnings)
	NoWorkerUPID   int               // next N start requests fail with "got no worker upid"
	AuthFailDelay  time.Duration     // delay of every 401
	// TaskUnlistedFor hides a task from the node's task list for this
	// long after it starts: create_vm (pve-container API2/LXC.pm) writes
	// the CT's config under the create lock before fork_worker registers
	// the task, and a request whose connection dropped may still be on
	// its way there (waiting for a lock, checking storages).
	TaskUnlistedFor time.Duration
}

// Server is one simulated cluster.
type Server struct {
	opts Options
	now  func() time.Time

	mu       sync.Mutex
	nodes    map[string]*node
	order    []string
	cts      map[int]*ct
	tasks    map[string]*task
	tickets  map[string]*ticket
	calls    map[string]int
	rejected []string
	faults   Faults
	pid      uint32
	closed   bool
	timers   []*time.Timer

	cert   tls.Certificate
	fp     string
	ln     net.Listener
	srv    *http.Server
	url    string
	routes []route
}

// New builds a simulator; call Start to serve.
func New(opts Options) *Server {
	if len(opts.Nodes) == 0 {
		opts.Nodes = []string{"pve1"}
	}
	if opts.Users == nil && opts.Tokens == nil {
		opts.Users = map[string]string{"root@pam": "secret"}
		opts.Tokens = map[string]string{"root@pam!pvesim": DefaultTokenSecret}
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	s := &Server{
		opts:    opts,
		now:     opts.Now,
		nodes:   map[string]*node{},
		cts:     map[int]*ct{},
		tasks:   map[string]*task{},
		tickets: map[string]*ticket{},
		calls:   map[string]int{},
		pid:     0x1000,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.faults.AuthFailDelay = opts.AuthFailDelay
	for _, n := range opts.Nodes {
		nd := &node{name: n, maxmem: 16 << 30, mem: 2 << 30, maxcpu: 8, storages: map[string]*storage{}}
		if v, ok := opts.NodeMaxMem[n]; ok {
			nd.maxmem = v
		}
		if v, ok := opts.NodeMem[n]; ok {
			nd.mem = v
		}
		nd.storages["local"] = &storage{id: "local", typ: "dir", content: "backup,iso,vztmpl", total: 100 << 30, vols: map[string]*volume{}}
		nd.storages["local-lvm"] = &storage{id: "local-lvm", typ: "lvmthin", content: "images,rootdir", total: 200 << 30, vols: map[string]*volume{}}
		for _, sp := range opts.Storages {
			total := sp.Total
			if total == 0 {
				total = 100 << 30
			}
			nd.storages[sp.ID] = &storage{id: sp.ID, typ: sp.Type, content: sp.Content, total: total, vols: map[string]*volume{}}
		}
		for _, sid := range opts.NoStorage[n] {
			delete(nd.storages, sid)
		}
		nd.bridges = []string{"vmbr0"}
		if b, ok := opts.Bridges[n]; ok {
			nd.bridges = b
		}
		s.nodes[n] = nd
		s.order = append(s.order, n)
		for _, t := range opts.Templates {
			sid, _, _ := strings.Cut(t, ":")
			if st := nd.storages[sid]; st != nil {
				st.vols[t] = &volume{volid: t, content: "vztmpl", format: volFormat(t), size: 120 << 20, ctime: s.now().Unix()}
			}
		}
	}
	s.routes = s.buildRoutes()
	return s
}

// Start generates the certificate and serves HTTPS (HTTP/1.1 only, so that
// status lines carry PVE's messages).
func (s *Server) Start() error {
	cert, fp, err := selfSigned(s.opts.Nodes)
	if err != nil {
		return err
	}
	s.cert, s.fp = cert, fp
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:      s,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	s.url = "https://" + ln.Addr().String()
	go func() { _ = s.srv.Serve(tls.NewListener(ln, s.srv.TLSConfig)) }() // ErrServerClosed at Close
	return nil
}

// Close stops serving and cancels pending tasks.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
	}
}

// URL is "https://HOST:PORT" (append /api2/json for the API).
func (s *Server) URL() string { return s.url }

// Fingerprint is the SHA-256 fingerprint of the certificate, "AB:CD:...".
func (s *Server) Fingerprint() string { return s.fp }

// Client returns an http.Client that pins the simulator's certificate.
func (s *Server) Client() *http.Client { return PinnedClient(s.fp) }

// Calls returns the number of requests per "METHOD /path/{template}"
// (unrouted requests are counted under their raw path).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls zeroes the request counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.mu.Unlock()
}

// SetFaults changes the fault switches under the server's lock.
func (s *Server) SetFaults(f func(*Faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.faults)
}

// SetLatency adds d to every request.
func (s *Server) SetLatency(d time.Duration) { s.SetFaults(func(f *Faults) { f.Latency = d }) }

// FailNext fails the next n requests whose path matches pathRE ("" = any)
// with HTTP code (502, 503 or 504).
func (s *Server) FailNext(n, code int, pathRE string) {
	s.SetFaults(func(f *Faults) { f.FailAfter = false })
	s.SetFaults(func(f *Faults) {
		f.FailNext, f.FailCode, f.FailPath = n, code, compileOpt(pathRE)
	})
}

// DropNext hijacks and closes the next n requests matching pathRE
// (n = -1: all of them).
func (s *Server) DropNext(n int, pathRE string) {
	s.SetFaults(func(f *Faults) { f.DropNext, f.DropPath, f.DropAfter = n, compileOpt(pathRE), false })
}

// FailNextAfter is FailNext, but each request takes effect before the 5xx.
func (s *Server) FailNextAfter(n, code int, pathRE string) {
	s.SetFaults(func(f *Faults) { f.FailNext, f.FailCode, f.FailPath, f.FailAfter = n, code, compileOpt(pathRE), true })
}

// Migrate moves a CT to another node at once (as HA or `pct migrate`
// would), config and volumes included.
func (s *Server) Migrate(vmid int, nodeName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, n := s.cts[vmid], s.nodes[nodeName]
	if x == nil || n == nil {
		return fmt.Errorf("no CT %d or node %s", vmid, nodeName)
	}
	from := s.nodes[x.node]
	for sid, st := range from.storages {
		for id, v := range st.vols {
			if v.vmid == vmid {
				delete(st.vols, id)
				if to := n.storages[sid]; to != nil {
					to.vols[id] = v
				}
			}
		}
	}
	x.node = nodeName
	return nil
}

// DropNextAfter is DropNext, but each request takes effect before its
// connection is closed: the client cannot know whether it happened.
func (s *Server) DropNextAfter(n int, pathRE string) {
	s.SetFaults(func(f *Faults) { f.DropNext, f.DropPath, f.DropAfter = n, compileOpt(pathRE), true })
}

// SetLockTimeout makes config-lock operations fail with "got timeout".
func (s *Server) SetLockTimeout(on bool) { s.SetFaults(func(f *Faults) { f.LockTimeout = on }) }

// FailNextTask makes the next task of type typ (vzcreate, vzstart, ...)
// end with exit status text.
func (s *Server) FailNextTask(typ, text string) {
	s.SetFaults(func(f *Faults) {
		if f.TaskFail == nil {
			f.TaskFail = map[string]string{}
		}
		f.TaskFail[typ] = text
	})
}

// SetNoQuorum makes the cluster lose (or regain) quorum: creates, config
// changes and starts fail with "cluster not ready - no quorum?".
func (s *Server) SetNoQuorum(on bool) { s.SetFaults(func(f *Faults) { f.NoQuorum = on }) }

// SetStorageDisabled disables (or enables) storage sid cluster-wide.
func (s *Server) SetStorageDisabled(sid string, on bool) {
	s.SetFaults(func(f *Faults) {
		if f.DisabledStorage == nil {
			f.DisabledStorage = map[string]bool{}
		}
		f.DisabledStorage[sid] = on
	})
}

// RaceNextCreate makes another creator on node other take the next
// create's VMID at the same moment: its CT appears there, and pmxcfs
// refuses ours with "close (rename) atomic file ... failed: File exists".
func (s *Server) RaceNextCreate(other string) {
	s.SetFaults(func(f *Faults) { f.RaceNextCreate = other })
}

// CfsLockTimeoutNext makes the next n create tasks fail on their rootfs
// storage's cluster lock ("cfs-lock 'storage-ID' error: got lock request
// timeout"), cleaning up as PVE's create worker does.
func (s *Server) CfsLockTimeoutNext(n int) { s.SetFaults(func(f *Faults) { f.CfsLockTimeout = n }) }

// NoWorkerUPID makes the next n start requests fail with "got no worker upid".
func (s *Server) NoWorkerUPID(n int) { s.SetFaults(func(f *Faults) { f.NoWorkerUPID = n }) }

// SetAuthFailDelay delays every 401 by d.
func (s *Server) SetAuthFailDelay(d time.Duration) {
	s.SetFaults(func(f *Faults) { f.AuthFailDelay = d })
}

// AddCreatingCT puts CT vmid on node as another creator's create leaves
// it mid-task (API2/LXC.pm create_vm: the config is written under the
// `create` lock before the rootfs is restored), stopped, with memory
// bytes as its limit.
func (s *Server) AddCreatingCT(vmid int, node string, memory int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cts[vmid] = &ct{vmid: vmid, node: node, lock: "create", status: "stopped",
		conf: map[string]string{"memory": strconv.FormatInt(memory>>20, 10), "hostname": fmt.Sprintf("CT%d", vmid)}}
}

// SetTaskDuration makes the tasks of type typ that start from now on
// stay running for d (Options.TaskDurations, changed later): a test can
// let a client die while PVE's worker, which goes on without it, runs.
func (s *Server) SetTaskDuration(typ string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	durations := map[string]time.Duration{}
	for k, v := range s.opts.TaskDurations {
		durations[k] = v
	}
	durations[typ] = d
	s.opts.TaskDurations = durations
}

// SetNodeMem sets a node's total and base used memory in bytes.
func (s *Server) SetNodeMem(nodeName string, maxmem, mem int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[nodeName]; n != nil {
		n.maxmem, n.mem = maxmem, mem
	}
}

func compileOpt(re string) *regexp.Regexp {
	if re == "" {
		return nil
	}
	return regexp.MustCompile(re)
}

// FakeClock is a settable clock for Options.Now.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock starts a clock at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *FakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// selfSigned makes an ECDSA P-256 certificate like pveproxy's and returns it
// with its SHA-256 fingerprint.
func selfSigned(nodes []string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodes[0] + ".pvesim", Organization: []string{"PVE Cluster Node (pvesim)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append([]string{"localhost"}, nodes...),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, FingerprintOf(der), nil
}

// FingerprintOf formats the SHA-256 of a DER certificate as PVE does.
func FingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// PinnedClient returns an http.Client that accepts exactly the certificate
// with fingerprint fp (PVE format, case-insensitive).
func PinnedClient(fp string) *http.Client {
	want := strings.ToUpper(fp)
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // replaced by the pin below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || FingerprintOf(raw[0]) != want {
					return fmt.Errorf("pvesim: certificate fingerprint mismatch")
				}
				return nil
			},
		}},
	}
}

// ---- responses ----

// apiError is a failed request: a status code, the status-line message and
// for 400 the per-parameter errors.
type apiError struct {
	code   int
	msg    string
	errors map[string]string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

func fail500(format string, a ...any) *apiError {
	return &apiError{code: 500, msg: fmt.Sprintf(format, a...)}
}

func paramError(errs map[string]string) *apiError {
	return &apiError{code: 400, msg: "Parameter verification failed.", errors: errs}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "max-age=0")
	_, _ = w.Write(b) // a client that went away
}

// writeError answers with PVE's message in the status line. net/http cannot
// set a reason phrase, so the connection is hijacked and the response
// written by hand (with Connection: close).
func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"data": nil}
	if e.errors != nil {
		body["errors"] = e.errors
	}
	b, _ := json.Marshal(body)
	reason := strings.NewReplacer("\r", " ", "\n", " ").Replace(strings.TrimSpace(e.msg))
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(e.code)
		_, _ = w.Write(b)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	writeRaw(buf, e.code, reason, b)
}

func writeRaw(buf *bufio.ReadWriter, code int, reason string, body []byte) {
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nDate: %s\r\nConnection: close\r\n\r\n",
		code, reason, len(body), time.Now().UTC().Format(http.TimeFormat))
	// A client that went away: nothing to tell it.
	_, _ = buf.WriteString(head)
	_, _ = buf.Write(body)
	_ = buf.Flush()
}

// Guests lists the cluster's CTs as "VMID@NODE STATUS", sorted by VMID.
func (s *Server) Guests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.cts))
	for id := range s.cts {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%d@%s %s", id, s.cts[id].node, s.cts[id].status))
	}
	return out
}

// RunningTasks lists the tasks still running as "TYPE ID" (vzstart 100,
// imgcopy with an empty id), sorted.
func (s *Server) RunningTasks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, t := range s.tasks {
		if t.running {
			out = append(out, t.typ+" "+t.id)
		}
	}
	sort.Strings(out)
	return out
}

// Stored is everything the cluster keeps that a client sent it or an
// operation left, one line each, sorted; for tests that check what must
// never be stored (secrets) and what must not be left behind (a lock, a
// snapshot, a template). Per CT what its config file holds (pve-container
// Config.pm write_pct_config): "VMID KEY: VALUE" for the current config,
// "VMID lock: L" while it is locked, "VMID [pve:pending] KEY: VALUE" for a
// pending change, and per snapshot section "VMID snapshot NAME" and its
// lines "VMID [NAME] KEY: VALUE"; per volume "NODE VOLID", and "NODE VOLID
// snapshot NAME" for each snapshot the volume holds.
func (s *Server) Stored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, x := range s.cts {
		for k, v := range x.conf {
			out = append(out, fmt.Sprintf("%d %s: %s", id, k, v))
		}
		if x.lock != "" {
			out = append(out, fmt.Sprintf("%d lock: %s", id, x.lock))
		}
		for k, v := range x.pending {
			out = append(out, fmt.Sprintf("%d [pve:pending] %s: %s", id, k, v))
		}
		for name, sn := range x.snaps {
			out = append(out, fmt.Sprintf("%d snapshot %s", id, name))
			for k, v := range sn {
				out = append(out, fmt.Sprintf("%d [%s] %s: %s", id, name, k, v))
			}
		}
	}
	for _, n := range s.nodes {
		for _, st := range n.storages {
			for volid, v := range st.vols {
				out = append(out, n.name+" "+volid)
				for _, name := range v.snaps {
					out = append(out, n.name+" "+volid+" snapshot "+name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
