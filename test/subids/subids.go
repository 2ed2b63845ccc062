// Package subids gives tests the /etc/subuid and /etc/subgid entries a PVE
// node has for root (root:100000:65536), which unprivileged CTs need: the
// pct double (test/pctdouble) runs them with lxc-start and extracts their
// templates with lxc-usernsexec, and both map ids through newuidmap and
// newgidmap, which grant root only the ranges those files list.
//
// Acquire adds a missing entry and Release takes back what was added once
// no other user is left. Users are counted across processes (go test runs
// packages in parallel) in a file under /run, under a flock; a user whose
// process died no longer counts.
package subids

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Entry is what a PVE node has in both files.
const Entry = "root:100000:65536"

var files = []string{"/etc/subuid", "/etc/subgid"}

const (
	lockFile  = "/run/lock/proxcage-test-subids.lock"
	usersFile = "/run/proxcage-test-subids.users" // "pid token" lines
	addedFile = "/run/proxcage-test-subids.added" // the files we appended Entry to
)

// Acquire makes sure both files grant root 100000-165535 and registers the
// caller (token unique within the process). It returns the release
// function.
func Acquire(token string) (func(), error) {
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if grants(string(data)) {
			continue
		}
		s := string(data)
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		if err := os.WriteFile(f, []byte(s+Entry+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("add %s to %s: %w", Entry, f, err)
		}
		if err := appendLine(addedFile, f); err != nil {
			return nil, err
		}
	}
	me := fmt.Sprintf("%d %s", os.Getpid(), token)
	if err := appendLine(usersFile, me); err != nil {
		return nil, err
	}
	return func() { release(me) }, nil
}

func release(me string) {
	unlock, err := lock()
	if err != nil {
		return
	}
	defer unlock()
	var left []string
	data, _ := os.ReadFile(usersFile) // missing: no users
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		pid, _, _ := strings.Cut(l, " ")
		n, _ := strconv.Atoi(pid)
		if l == "" || l == me || n <= 0 || syscall.Kill(n, 0) != nil {
			continue
		}
		left = append(left, l)
	}
	if len(left) > 0 {
		_ = os.WriteFile(usersFile, []byte(strings.Join(left, "\n")+"\n"), 0o644) // best effort: a lost line only ends a user's count early
		return
	}
	_ = os.Remove(usersFile) // best effort, as above
	added, _ := os.ReadFile(addedFile)
	for _, f := range strings.Fields(string(added)) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		out := strings.Replace(string(data), Entry+"\n", "", 1)
		_ = os.WriteFile(f, []byte(out), 0o644) // best effort: the entry left behind is what a PVE node has anyway
	}
	_ = os.Remove(addedFile)
}

func grants(data string) bool {
	for _, l := range strings.Split(data, "\n") {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) != 3 || (f[0] != "root" && f[0] != "0") {
			continue
		}
		s, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && s <= 100000 && 165536 <= s+n {
			return true
		}
	}
	return false
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func lock() (func(), error) {
	f, err := os.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
