package lxc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// processFile is the stand-in's own file (DIR/process.json): StandIn as
// cmd/proxcage-lxc-init reads it, with the seccomp filter as a file name
// in the same directory. Its format is shared with cmd/proxcage-lxc-init
// (kept in sync by TestProcessFileMatchesTheStandIn).
type processFile struct {
	Inheritable []int  `json:"inheritable,omitempty"`
	Ambient     []int  `json:"ambient,omitempty"`
	Seccomp     string `json:"seccomp,omitempty"` // file name of the BPF program, in the same directory
	NoNewPrivs  bool   `json:"noNewPrivs,omitempty"`
}

// writeProcessFile writes DIR/process.json, and DIR/seccomp.bpf compiled
// from the profile the translator checked.
func writeProcessFile(dir string, si StandIn) error {
	pf := processFile{Inheritable: si.Inheritable, Ambient: si.Ambient, NoNewPrivs: si.NoNewPrivs}
	if si.Seccomp != nil {
		f, err := os.OpenFile(filepath.Join(dir, "seccomp.bpf"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		err = compileSeccomp(si.Seccomp, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
		pf.Seccomp = "seccomp.bpf"
	}
	data, err := json.Marshal(pf)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "process.json"), data, 0o644)
}
