// Command pvesim serves the Proxmox VE API simulator by hand:
//
//	go run ./test/pvesim/cmd/pvesim -listen 127.0.0.1:8006 -nodes pve1,pve2
//
// It prints a [pve] block for proxcage's config (url, fingerprint, the
// token id, and the secret's 0600 file), then serves until interrupted.
// See test/pvesim/README.md.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxcage/proxcage/test/pvesim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8006", "address to listen on")
	nodes := flag.String("nodes", "pve1", "comma-separated node names")
	user := flag.String("user", "root@pam", "ticket login user")
	password := flag.String("password", "secret", "ticket login password")
	token := flag.String("token", "root@pam!pvesim="+pvesim.DefaultTokenSecret, "API token USER@REALM!ID=SECRET (empty: none)")
	templates := flag.String("templates", "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "comma-separated template volids present on every node")
	qemu := flag.String("qemu", "", "fake QEMU VMs, comma-separated VMID@NODE[:running]")
	taskDur := flag.Duration("task-duration", 500*time.Millisecond, "how long tasks run")
	authDelay := flag.Duration("auth-delay", 3*time.Second, "delay of every 401")
	latency := flag.Duration("latency", 0, "added latency per request")
	failNext := flag.Int("fail-next", 0, "fail the next N requests (matching -fail-path) with -fail-code")
	failCode := flag.Int("fail-code", 503, "HTTP code for -fail-next (502, 503, 504)")
	failPath := flag.String("fail-path", "", "regexp of paths -fail-next applies to")
	dropNext := flag.Int("drop-next", 0, "drop the connection of the next N requests matching -drop-path (-1: all)")
	dropPath := flag.String("drop-path", "", "regexp of paths -drop-next applies to")
	lockTimeout := flag.Bool("lock-timeout", false, "config locks time out")
	taskFail := flag.String("task-fail", "", "TYPE=TEXT: the next task of TYPE ends with TEXT (repeat with ';')")
	noWorker := flag.Int("no-worker-upid", 0, "the next N starts fail with 'got no worker upid'")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()

	opts := pvesim.Options{
		Listen:        *listen,
		Nodes:         strings.Split(*nodes, ","),
		Users:         map[string]string{*user: *password},
		Tokens:        map[string]string{},
		TaskDuration:  *taskDur,
		AuthFailDelay: *authDelay,
	}
	if *token != "" {
		id, secret, ok := strings.Cut(*token, "=")
		if !ok {
			log.Fatal("-token: want USER@REALM!ID=SECRET")
		}
		opts.Tokens[id] = secret
	}
	if *templates != "" {
		opts.Templates = strings.Split(*templates, ",")
	}
	for _, q := range strings.Split(*qemu, ",") {
		if q == "" {
			continue
		}
		spec, status, _ := strings.Cut(q, ":")
		id, nd, ok := strings.Cut(spec, "@")
		vmid, err := strconv.Atoi(id)
		if !ok || err != nil {
			log.Fatalf("-qemu %q: want VMID@NODE[:running]", q)
		}
		opts.QemuVMs = append(opts.QemuVMs, pvesim.QemuVM{VMID: vmid, Node: nd, Name: "vm" + id, Status: status})
	}
	if *verbose {
		opts.Logf = log.Printf
	}
	s := pvesim.New(opts)
	s.SetLatency(*latency)
	if *failNext > 0 {
		s.FailNext(*failNext, *failCode, *failPath)
	}
	if *dropNext != 0 {
		s.DropNext(*dropNext, *dropPath)
	}
	s.SetLockTimeout(*lockTimeout)
	s.NoWorkerUPID(*noWorker)
	for _, tf := range strings.Split(*taskFail, ";") {
		if typ, text, ok := strings.Cut(tf, "="); ok {
			s.FailNextTask(typ, text)
		}
	}
	if err := s.Start(); err != nil {
		log.Fatal(err)
	}
	// The secrets go to 0600 files, as proxcage wants them, never to the
	// terminal: the printed block names the files.
	var files []string
	defer func() {
		for _, f := range files {
			_ = os.Remove(f)
		}
	}()
	secretFile := func(kind, secret string) string {
		f, err := os.CreateTemp("", "pvesim-"+kind+"-*")
		if err == nil {
			_, err = f.WriteString(secret + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			s.Close()
			log.Fatal(err)
		}
		files = append(files, f.Name())
		return f.Name()
	}
	b := block{URL: s.URL(), Fingerprint: s.Fingerprint(), Nodes: *nodes, User: *user, PasswordFile: secretFile("password", *password)}
	if *token != "" {
		id, secret, _ := strings.Cut(*token, "=")
		b.TokenID, b.TokenSecretFile = id, secretFile("token", secret)
	}
	// Before the block is out: whoever read it may stop pvesim at once,
	// and the secret files must still go.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	fmt.Print(b.String())
	<-sig
	s.Close()
}

// block is what pvesim prints: a [pve] section to paste into proxcage's
// config as it is. Secrets stay in their 0600 files.
type block struct {
	URL, Fingerprint, Nodes  string
	TokenID, TokenSecretFile string
	User, PasswordFile       string
}

func (b block) String() string {
	var w strings.Builder
	fmt.Fprintf(&w, "# pvesim: serving %s/api2/json (nodes %s); Ctrl-C stops it and removes the secret files.\n", b.URL, b.Nodes)
	fmt.Fprintf(&w, "# Paste into proxcage's config (e.g. --config ./pvesim.toml, with default_backend = \"pve\" or a [[routes]] rule):\n")
	fmt.Fprintf(&w, "[pve]\ntransport = \"api\"\nurl = %q\nfingerprint = %q\n", b.URL, b.Fingerprint)
	login := fmt.Sprintf("user = %q\npassword_file = %q\n", b.User, b.PasswordFile)
	if b.TokenID != "" {
		fmt.Fprintf(&w, "token_id = %q\ntoken_secret_file = %q   # mode 0600, holds the secret\n", b.TokenID, b.TokenSecretFile)
		// One login only: proxcage refuses token_id and user together.
		login = "# or a ticket login instead of token_id and token_secret_file:\n# " + strings.ReplaceAll(strings.TrimSuffix(login, "\n"), "\n", "\n# ") + "\n"
	}
	w.WriteString(login)
	fmt.Fprintf(&w, "node = \"auto\"\ntemplate_storage = \"local\"\nrootfs_storage = \"local-lvm\"\nbridge = \"vmbr0\"\n")
	return w.String()
}
