// Command proxcage-lxc-init holds an lxc container's process between
// `create` and `start`, as runc's exec fifo does: LXC has no
// created-but-paused init. The lxc backend bind-mounts this static binary
// and a directory into the container's /dev and has lxc-execute run
//
//	/dev/.proxcage-init /dev/.proxcage ARGS...
//
// at create. It checks that ARGS[0] can be executed and sets the
// inheritable and ambient capabilities (else it writes why to
// /dev/.proxcage/error and exits 127, so create fails), then blocks opening
// /dev/.proxcage/exec.fifo until `start` opens it, loads the seccomp
// filter, and execs ARGS: what LXC cannot do, at the moment runc does it.
// It is built with CGO_ENABLED=0: it runs inside any rootfs.
//
// The pve backend runs it as a CT's init under a keeper (keeper.go).
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// processFile mirrors internal/backend/lxc's.
type processFile struct {
	Inheritable []int  `json:"inheritable,omitempty"`
	Ambient     []int  `json:"ambient,omitempty"`
	Seccomp     string `json:"seccomp,omitempty"`
	NoNewPrivs  bool   `json:"noNewPrivs,omitempty"`
}

// init pins main to the first thread: capset, PR_SET_NO_NEW_PRIVS and
// seccomp(2) act on the calling thread only, so a goroutine that moved to
// another thread between them loaded its filter without no_new_privs and
// got EPERM now and then ("seccomp: permission denied").
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--keeper" {
		keeperMain(os.Args[2])
	}
	if len(os.Args) < 3 {
		_, _ = os.Stderr.WriteString("usage: proxcage-lxc-init DIR ARGS...\n")
		os.Exit(2)
	}
	dir, args := os.Args[1], os.Args[2:]
	var pf processFile
	if data, err := os.ReadFile(filepath.Join(dir, "process.json")); err == nil {
		if err := json.Unmarshal(data, &pf); err != nil {
			fail(dir, "process.json: "+err.Error())
		}
	}
	path, err := lookPath(args[0])
	if err != nil {
		fail(dir, err.Error())
	}
	if err := setCaps(pf); err != nil {
		fail(dir, "capabilities: "+err.Error())
	}
	var filter []byte
	if pf.Seccomp != "" {
		if filter, err = os.ReadFile(filepath.Join(dir, pf.Seccomp)); err != nil {
			fail(dir, "seccomp: "+err.Error())
		}
	}
	// Tell create that the container runs, then block until `start`
	// opens the fifo for reading.
	_ = os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644)
	f, err := os.OpenFile(filepath.Join(dir, "exec.fifo"), os.O_WRONLY, 0)
	if err != nil {
		fail(dir, "open exec fifo: "+err.Error())
	}
	_, _ = f.Write([]byte{0})
	f.Close()
	if pf.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail(dir, "no_new_privs: "+err.Error())
		}
	}
	if filter != nil {
		if err := loadSeccomp(filter); err != nil {
			fail(dir, "seccomp: "+err.Error())
		}
	}
	err = syscall.Exec(path, args, os.Environ())
	fail(dir, "exec "+args[0]+": "+err.Error())
}

func fail(dir, msg string) {
	_ = os.WriteFile(filepath.Join(dir, "error"), []byte(msg), 0o644)
	_, _ = os.Stderr.WriteString("proxcage-lxc-init: " + msg + "\n")
	os.Exit(127)
}

// setCaps sets the inheritable set (keeping permitted and effective) and
// raises the ambient ones.
func setCaps(pf processFile) error {
	if len(pf.Inheritable) == 0 && len(pf.Ambient) == 0 {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	for _, c := range pf.Inheritable {
		data[c/32].Inheritable |= 1 << (uint(c) % 32)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return err
	}
	for _, c := range pf.Ambient {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return errors.New("raise ambient " + strconv.Itoa(c) + ": " + err.Error())
		}
	}
	return nil
}

// loadSeccomp installs a BPF program (an array of struct sock_filter, as
// libseccomp exports it).
func loadSeccomp(prog []byte) error {
	if len(prog)%8 != 0 || len(prog) == 0 {
		return errors.New("malformed BPF program")
	}
	filters := make([]unix.SockFilter, len(prog)/8)
	for i := range filters {
		b := prog[8*i:]
		filters[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b[0:]), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, 1 /* SECCOMP_SET_MODE_FILTER */, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return errno
	}
	return nil
}

// lookPath is exec.LookPath with the container's PATH, without the os/exec
// package (kept small).
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", errors.New("exec " + name + ": " + err.Error())
		}
		return name, nil
	}
	p := os.Getenv("PATH")
	if p == "" {
		p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, d := range strings.Split(p, ":") {
		if d == "" {
			d = "."
		}
		c := filepath.Join(d, name)
		if executable(c) == nil {
			return c, nil
		}
	}
	return "", errors.New("exec: \"" + name + "\": executable file not found in $PATH")
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}
