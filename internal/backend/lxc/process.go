package lxc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// processFile is what the stand-in (cmd/proxcage-lxc-init) applies itself,
// because LXC cannot, or not at the right moment: the inheritable and
// ambient capability sets (lxc.cap.keep covers the bounding, permitted and
// effective ones) and the seccomp filter, loaded right before exec as runc
// does. Its format is shared with cmd/proxcage-lxc-init (kept in sync by
// TestProcessFileMatchesTheStandIn).
type processFile struct {
	Inheritable []int  `json:"inheritable,omitempty"`
	Ambient     []int  `json:"ambient,omitempty"`
	Seccomp     string `json:"seccomp,omitempty"` // file name of the BPF program, in the same directory
	// NoNewPrivs before the filter: loading one needs no_new_privs or
	// CAP_SYS_ADMIN, and LXC has dropped the capabilities by then (runc
	// loads it before dropping them when the spec leaves no_new_privs off).
	NoNewPrivs bool `json:"noNewPrivs,omitempty"`
}

// capNumbers maps CAP_* names to numbers.
func capNumbers(names []string) ([]int, error) {
	known := map[string]int{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = int(c)
	}
	var out []int
	for _, n := range names {
		v, ok := known[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		out = append(out, v)
	}
	return out, nil
}

// writeProcessFile writes DIR/process.json (and DIR/seccomp.bpf). It
// returns what differs from the spec, for the log.
func writeProcessFile(dir string, s *specs.Spec) (warnings []string, err error) {
	var pf processFile
	if c := s.Process.Capabilities; c != nil {
		if pf.Inheritable, err = capNumbers(c.Inheritable); err != nil {
			return nil, fmt.Errorf("process.capabilities.inheritable: %w", err)
		}
		if pf.Ambient, err = capNumbers(c.Ambient); err != nil {
			return nil, fmt.Errorf("process.capabilities.ambient: %w", err)
		}
	}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		f, err := os.OpenFile(filepath.Join(dir, "seccomp.bpf"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		err = compileSeccomp(s.Linux.Seccomp, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp: %w", err)
		}
		pf.Seccomp = "seccomp.bpf"
		pf.NoNewPrivs = !s.Process.NoNewPrivileges
		if pf.NoNewPrivs {
			warnings = append(warnings, "process.noNewPrivileges is false but linux.seccomp is set: no_new_privs is set before the filter is loaded (the process has no CAP_SYS_ADMIN to load it otherwise)")
		}
	}
	data, _ := json.Marshal(pf)
	return warnings, os.WriteFile(filepath.Join(dir, "process.json"), data, 0o644)
}
