// Package proc tells a live process from a dead one whose pid the kernel
// may have given to another: a pid with its start time names one process
// for good. It imports nothing of proxcage's.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// StartTime is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat): with the pid, it names one process for good.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Alive reports whether pid is still the process that started at start
// (and not a zombie).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && st == start
}

// Stamp is "PID.START" for this process: put in a temp file's name, it
// lets any later process prove the writer dead (Dead) and remove what a
// killed writer left, at once rather than after an age limit.
func Stamp() string {
	pid := os.Getpid()
	start, err := StartTime(pid)
	if err != nil {
		return strconv.Itoa(pid) + ".0"
	}
	return fmt.Sprintf("%d.%d", pid, start)
}

// Dead parses a Stamp at the start of s (up to the first '-' or the end):
// ok is false when s holds no stamp; dead says whether its process is gone.
func Dead(s string) (dead, ok bool) {
	stamp, _, _ := strings.Cut(s, "-")
	p, st, found := strings.Cut(stamp, ".")
	if !found {
		return false, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(st, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 || start == 0 {
		return false, false
	}
	return !Alive(pid, start), true
}
