//go:build seccomp

package lxc

import (
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

	"github.com/proxcage/proxcage/test/golden"
)

// TestSeccompGolden runs every testdata/seccomp/*.json (a profile and
// probes) through what create does with a profile, the translator and
// writeProcessFile, and compares with the .golden file: the translator's
// seccomp warnings, then what the compiled seccomp.bpf, run the way the
// kernel runs it, returns for each probe ("ARCH SYSCALL [ARG...]"); or
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
		prog := readBPF(t, filepath.Join(dir, "seccomp.bpf"))
		for _, p := range c.Probes {
			b.WriteString(probe(t, prog, p) + "\n")
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

// probe runs prog on the seccomp_data of one call ("ARCH NAME [ARG...]")
// and says what it returns.
func probe(t *testing.T, prog []sockFilter, p string) string {
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
	ret, err := runBPF(prog, data[:])
	if err != nil {
		t.Fatalf("probe %q: %v", p, err)
	}
	return fmt.Sprintf("%s %s(%s) = %s", f[0], f[1], strings.Join(args, ", "), retAction(ret))
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

// sockFilter is struct sock_filter, classic BPF's instruction.
type sockFilter struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

func readBPF(t *testing.T, path string) []sockFilter {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || len(raw)%8 != 0 {
		t.Fatalf("%s is %d bytes, not a whole number of sock_filter entries", path, len(raw))
	}
	prog := make([]sockFilter, len(raw)/8)
	for i := range prog {
		e := raw[8*i:]
		prog[i] = sockFilter{binary.LittleEndian.Uint16(e), e[2], e[3], binary.LittleEndian.Uint32(e[4:])}
	}
	return prog
}

// runBPF runs a seccomp filter as the kernel does (classic BPF, with the
// loads seccomp allows: 32-bit words of seccomp_data, the scratch memory,
// immediates) and returns its return value.
func runBPF(prog []sockFilter, data []byte) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		src := in.k
		if in.code&0x08 != 0 { // BPF_X
			src = x
		}
		switch in.code & 0x07 {
		case 0x00, 0x01: // BPF_LD, BPF_LDX
			var v uint32
			switch {
			case in.code&0xe0 == 0x20 && in.code&0x18 == 0: // BPF_ABS | BPF_W
				if in.k%4 != 0 || int(in.k)+4 > len(data) {
					return 0, fmt.Errorf("pc %d: load of seccomp_data[%d]", pc, in.k)
				}
				v = binary.LittleEndian.Uint32(data[in.k:])
			case in.code&0xe0 == 0x00: // BPF_IMM
				v = in.k
			case in.code&0xe0 == 0x60 && in.k < 16: // BPF_MEM
				v = mem[in.k]
			case in.code&0xe0 == 0x80: // BPF_LEN
				v = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: load %#x", pc, in.code)
			}
			if in.code&0x07 == 0x00 {
				a = v
			} else {
				x = v
			}
		case 0x02, 0x03: // BPF_ST, BPF_STX
			if in.k >= 16 {
				return 0, fmt.Errorf("pc %d: store to mem[%d]", pc, in.k)
			}
			if in.code&0x07 == 0x02 {
				mem[in.k] = a
			} else {
				mem[in.k] = x
			}
		case 0x04: // BPF_ALU
			switch in.code & 0xf0 {
			case 0x00:
				a += src
			case 0x10:
				a -= src
			case 0x20:
				a *= src
			case 0x30, 0x90:
				if src == 0 {
					return 0, nil // the kernel returns 0 on a division by zero
				}
				if in.code&0xf0 == 0x30 {
					a /= src
				} else {
					a %= src
				}
			case 0x40:
				a |= src
			case 0x50:
				a &= src
			case 0x60:
				a <<= src
			case 0x70:
				a >>= src
			case 0x80:
				a = -a
			case 0xa0:
				a ^= src
			default:
				return 0, fmt.Errorf("pc %d: alu %#x", pc, in.code)
			}
		case 0x05: // BPF_JMP
			var taken bool
			switch in.code & 0xf0 {
			case 0x00: // BPF_JA
				pc += int(in.k)
				continue
			case 0x10:
				taken = a == src
			case 0x20:
				taken = a > src
			case 0x30:
				taken = a >= src
			case 0x40:
				taken = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: jump %#x", pc, in.code)
			}
			if taken {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		case 0x06: // BPF_RET
			switch in.code & 0x18 {
			case 0x00:
				return in.k, nil
			case 0x10:
				return a, nil
			}
			return 0, fmt.Errorf("pc %d: return %#x", pc, in.code)
		case 0x07: // BPF_MISC
			if in.code&0xf8 == 0x00 { // BPF_TAX
				x = a
			} else {
				a = x
			}
		}
	}
	return 0, fmt.Errorf("the filter runs off its end")
}
