//go:build seccomp

package lxc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/net/bpf"

	"github.com/proxcage/proxcage/test/golden"
)

// TestSeccompGolden runs every testdata/seccomp/*.json (a profile and
// probes) through what create does with a profile, the translator and
// writeProcessFile, and compares with the .golden file: the translator's
// seccomp warnings, then what the compiled seccomp.bpf, run in x/net/bpf's
// classic-BPF VM, returns for each probe ("ARCH SYSCALL [ARG...]"); or
// "error: ..." for a refused profile. The filter's instructions themselves
// are libseccomp's layout, which changes between its versions: the golden
// file holds what they decide, not them.
func TestSeccompGolden(t *testing.T) {
	golden.Cases(t, "testdata/seccomp/*.json", "seccomp filter", func(t *testing.T, data []byte) string {
		var c struct {
			Seccomp specs.LinuxSeccomp
			Probes  []string
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		s := &specs.Spec{
			Root:    &specs.Root{Path: "rootfs"},
			Process: &specs.Process{Args: []string{"/bin/app"}, Cwd: "/", NoNewPrivileges: true},
			Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}, Seccomp: &c.Seccomp},
		}
		cfg, err := Translate("sc", s, "/r", Settings{})
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		for _, w := range cfg.Warnings {
			if strings.Contains(w, "seccomp") {
				b.WriteString("warning: " + w + "\n")
			}
		}
		dir := t.TempDir()
		if err := writeProcessFile(dir, cfg.StandIn); err != nil {
			return b.String() + "error: " + err.Error() + "\n"
		}
		vm := readBPF(t, filepath.Join(dir, "seccomp.bpf"))
		for _, p := range c.Probes {
			b.WriteString(probe(t, vm, p) + "\n")
		}
		return b.String()
	})
}

// auditArch is seccomp_data.arch of the architectures the probes use
// (linux/audit.h AUDIT_ARCH_*), with libseccomp's names; x32 shares
// x86_64's and sets bit 30 of the syscall number, which libseccomp's x32
// numbers carry.
var auditArch = map[string]struct {
	arch  libseccomp.ScmpArch
	token uint32
}{
	"x86_64":  {libseccomp.ArchAMD64, 0xc000003e},
	"x86":     {libseccomp.ArchX86, 0x40000003},
	"x32":     {libseccomp.ArchX32, 0xc000003e},
	"aarch64": {libseccomp.ArchARM64, 0xc00000b7},
}

// probe runs the filter in vm on the seccomp_data of one call ("ARCH
// NAME [ARG...]") and says what it returns.
func probe(t *testing.T, vm *bpf.VM, p string) string {
	t.Helper()
	f := strings.Fields(p)
	a, ok := auditArch[f[0]]
	if len(f) < 2 || len(f) > 8 || !ok {
		t.Fatalf("probe %q: want ARCH NAME [ARG...], ARCH one of x86_64 x86 x32 aarch64", p)
	}
	// A negative number is libseccomp's stand-in for a call the
	// architecture does not have: the kernel never passes one.
	nr, err := libseccomp.GetSyscallFromNameByArch(f[1], a.arch)
	if err != nil || nr < 0 {
		return p + ": no such syscall on " + f[0]
	}
	// struct seccomp_data, in the host's byte order (little-endian here
	// and on every architecture probed).
	var data [64]byte
	binary.LittleEndian.PutUint32(data[0:], uint32(nr))
	binary.LittleEndian.PutUint32(data[4:], a.token)
	var args []string
	for i, s := range f[2:] {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("probe %q: %v", p, err)
		}
		binary.LittleEndian.PutUint64(data[16+8*i:], v)
		args = append(args, fmt.Sprintf("%#x", v))
	}
	// x/net/bpf loads packet bytes in network (big-endian) order, seccomp
	// loads seccomp_data's 32-bit words in the host's: swap each word.
	for i := 0; i < len(data); i += 4 {
		binary.BigEndian.PutUint32(data[i:], binary.LittleEndian.Uint32(data[i:]))
	}
	ret, err := vm.Run(data[:])
	if err != nil {
		t.Fatalf("probe %q: %v", p, err)
	}
	return fmt.Sprintf("%s %s(%s) = %s", f[0], f[1], strings.Join(args, ", "), retAction(uint32(ret)))
}

// retAction names a filter's return value (linux/seccomp.h SECCOMP_RET_*).
func retAction(ret uint32) string {
	data := ret & 0xffff
	switch ret & 0xffff0000 {
	case 0x80000000:
		return "SCMP_ACT_KILL_PROCESS"
	case 0x00000000:
		return "SCMP_ACT_KILL_THREAD"
	case 0x00030000:
		return "SCMP_ACT_TRAP"
	case 0x00050000:
		return fmt.Sprintf("SCMP_ACT_ERRNO(%d)", data)
	case 0x7fc00000:
		return "SCMP_ACT_NOTIFY"
	case 0x7ff00000:
		return fmt.Sprintf("SCMP_ACT_TRACE(%d)", data)
	case 0x7ffc0000:
		return "SCMP_ACT_LOG"
	case 0x7fff0000:
		return "SCMP_ACT_ALLOW"
	}
	return fmt.Sprintf("unknown %#x", ret)
}

// readBPF reads seccomp.bpf, an array of struct sock_filter in the host's
// byte order, into x/net/bpf's VM.
func readBPF(t *testing.T, path string) *bpf.VM {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || len(raw)%8 != 0 {
		t.Fatalf("%s is %d bytes, not a whole number of sock_filter entries", path, len(raw))
	}
	prog := make([]bpf.RawInstruction, len(raw)/8)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, prog); err != nil {
		t.Fatal(err)
	}
	insts, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatalf("%s: an instruction x/net/bpf does not know: %v", path, insts)
	}
	// probe's byte swap holds for the loads seccomp allows, 32-bit words
	// of seccomp_data at 4-byte-aligned offsets: make sure those are all.
	for i, in := range insts {
		switch in := in.(type) {
		case bpf.LoadAbsolute:
			if in.Size != 4 || in.Off%4 != 0 || in.Off+4 > 64 {
				t.Fatalf("%s: instruction %d: %v is not a load of a seccomp_data word", path, i, in)
			}
		case bpf.LoadIndirect, bpf.LoadMemShift:
			t.Fatalf("%s: instruction %d: %v, which seccomp does not allow", path, i, in)
		}
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return vm
}
