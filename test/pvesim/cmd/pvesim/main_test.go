package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/test/pvesim"
)

// TestMain runs the command itself when the test re-executes its binary
// with PVESIM_RUN_MAIN=1 (the flags follow "--").
func TestMain(m *testing.M) {
	if os.Getenv("PVESIM_RUN_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{os.Args[0]}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// What pvesim prints is a [pve] block proxcage's config takes as it is:
// url, fingerprint, token id and the 0600 file holding the secret, which
// itself is never printed. The files go when pvesim stops.
func TestPrintsAConfigBlock(t *testing.T) {
	c := exec.Command(os.Args[0], "-test.run=^$", "--", "-listen", "127.0.0.1:0", "-nodes", "pve1,pve2")
	c.Env = append(os.Environ(), "PVESIM_RUN_MAIN=1")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	var text strings.Builder
	sc := bufio.NewScanner(out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			text.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "bridge = ") {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("pvesim printed no complete block")
	}
	printed := text.String()
	if strings.Contains(printed, pvesim.DefaultTokenSecret) || strings.Contains(printed, "PVEAPIToken") {
		t.Fatalf("the secret is printed:\n%s", printed)
	}
	cfg, err := config.Parse([]byte("default_backend = \"pve\"\n" + printed))
	if err != nil {
		t.Fatalf("the block is not a proxcage config: %v\n%s", err, printed)
	}
	p := cfg.PVE
	if p.Transport != "api" || !strings.HasPrefix(p.URL, "https://127.0.0.1:") || len(p.Fingerprint) != 95 ||
		p.TokenID != "root@pam!pvesim" || p.User != "" || p.Node != "auto" {
		t.Fatalf("block %+v\n%s", p, printed)
	}
	fi, err := os.Stat(p.TokenSecretFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token_secret_file %s: %v %v", p.TokenSecretFile, fi.Mode(), err)
	}
	if data, _ := os.ReadFile(p.TokenSecretFile); strings.TrimSpace(string(data)) != pvesim.DefaultTokenSecret {
		t.Fatalf("token_secret_file holds %q", data)
	}
	c.Process.Signal(syscall.SIGINT)
	c.Wait()
	if _, err := os.Stat(p.TokenSecretFile); err == nil {
		t.Fatal("the secret file outlives pvesim")
	}
}
