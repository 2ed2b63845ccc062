package pve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// A CT's environment over pct. PVE's `env` option is one string whose
// variables are separated by NUL (pve-container src/PVE/LXC/Config.pm,
// `env`), and pct's option parser unescapes nothing (pve-common
// JSONSchema.pm get_options: a plain `=s` option, the last --env wins). An
// argv cannot hold a NUL, so `pct create/set --env` carries one variable.
// PVE keeps the env in the CT's config file as `lxc.environment.runtime:
// K=V` lines (Config.pm write_pct_config) and reads them back joined with
// NUL (parse_pct_config). So the pct transport creates the CT without env
// and then writes those lines itself, as root on the node, into the file
// pct reads, under pct's own config lock (pve-guest-common AbstractConfig
// lock_config: a 10 s flock on /run/lock/lxc/pve-config-VMID.lock). The
// values never reach an argv, where any local user could read them.
// Over the API the form value holds real NULs (apitransport.go).

// envLineKey is the config key of one variable (Config.pm, LXC.pm).
const envLineKey = "lxc.environment.runtime"

// configLockWait is lock_config's timeout (AbstractConfig lock_config: 10).
const configLockWait = 10 * time.Second

var (
	// envValueBad is what Config.pm's env pattern refuses in a value
	// ([^\x00-\x08\x0a-\x1F\x7F]): control characters other than tab.
	envValueBad = regexp.MustCompile(`[\x00-\x08\x0a-\x1f\x7f]`)
	// pctEnvLine is an env line of the config file, as parse_pct_config
	// matches lxc.* keys: "lxc.environment.runtime:" or "... =".
	pctEnvLine  = regexp.MustCompile(`^lxc\.environment\.runtime(?::|\s*=)`)
	pctLockLine = regexp.MustCompile(`^lock:\s*(.*?)\s*$`)
)

// checkEnvVar refuses a variable PVE would not pass on exactly. Only the
// name is ever printed: values may be secrets.
func checkEnvVar(v string) error {
	k, val, ok := strings.Cut(v, "=")
	switch {
	case !ok:
		return fmt.Errorf("process.env %q has no '=': PVE's env takes NAME=VALUE only (an LXC name alone would copy the node's own value)", k)
	case !envKey.MatchString(k):
		return fmt.Errorf("process.env %q: PVE accepts only names of letters, digits and '_'", k)
	case envValueBad.MatchString(val):
		return fmt.Errorf("process.env %s: the value holds a control character (a newline, say), which PVE's env refuses (tab is the only one allowed); remove it", k)
	case strings.TrimRight(val, " \t") != val:
		// parse_pct_config (m/...\s*(.*?)\s*$/) and LXC's config parser
		// (confile.c parse_line) both drop trailing blanks.
		return fmt.Errorf("process.env %s: the value ends in a blank, which the CT's config file cannot keep (PVE and LXC trim it); remove the trailing blank", k)
	}
	return nil
}

// envVars splits a plan's env value as write_pct_config does (split /\0+/).
func envVars(v string) []string {
	var out []string
	for _, e := range strings.Split(v, "\x00") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// withoutEnv returns the plan's options without env, and the env's
// variables (nil when the plan sets none).
func withoutEnv(plan *Plan) (*Plan, []string) {
	out := &Plan{Application: plan.Application}
	var vars []string
	for _, o := range plan.Options {
		if o.Key == "env" {
			vars = envVars(o.Value)
			continue
		}
		out.Options = append(out.Options, o)
	}
	return out, vars
}

// withEnv returns a CT config file with the env lines of its main section
// (what precedes the first [snapshot] or [pve:pending] section) replaced
// by vars, placed where write_pct_config writes them: after the "key:
// value" lines, before the other lxc.* lines. A CT under a lock (lock:
// create, backup...) is refused as PVE's check_lock does.
func withEnv(conf []byte, vars []string) ([]byte, error) { return withLines(conf, vars, nil, nil) }

// withLines is withEnv that also appends raw lxc.* lines (a keeper's
// mount entry) to the main section, after its other lxc.* lines, as
// write_pct_config writes them, and sets keys (a keeper's entrypoint,
// which PVE takes from an OCI image at create over the one asked for:
// Create.pm restore_oci_archive). With vars nil the env lines stay as
// they are (an image's own, PVE wrote them).
func withLines(conf []byte, vars []string, raw, set []Option) ([]byte, error) {
	lines := strings.Split(strings.TrimSuffix(string(conf), "\n"), "\n")
	var head, rest []string
	done := map[string]bool{}
	for i, l := range lines {
		if strings.HasPrefix(l, "[") {
			rest = lines[i:]
			break
		}
		if m := pctLockLine.FindStringSubmatch(l); len(m) > 1 && m[1] != "" {
			return nil, errors.New("CT is locked (" + m[1] + ")")
		}
		if vars != nil && pctEnvLine.MatchString(l) {
			continue
		}
		for _, o := range set {
			if strings.HasPrefix(l, o.Key+":") {
				l = o.Key + ": " + o.Value
				done[o.Key] = true
			}
		}
		head = append(head, l)
	}
	// The blank lines that end the main section stay where they are.
	n := len(head)
	for n > 0 && strings.TrimSpace(head[n-1]) == "" {
		n--
	}
	at := n
	for i, l := range head[:n] {
		if strings.HasPrefix(l, "lxc.") {
			at = i
			break
		}
	}
	var keys []string
	for _, o := range set {
		if !done[o.Key] {
			keys = append(keys, o.Key+": "+o.Value)
		}
	}
	env := make([]string, len(vars))
	for i, v := range vars {
		env[i] = envLineKey + ": " + v
	}
	extra := make([]string, len(raw))
	for i, o := range raw {
		extra[i] = o.Key + ": " + o.Value
	}
	out := append(append([]string{}, head[:at]...), keys...)
	out = append(append(out, env...), head[at:n]...)
	out = append(append(out, extra...), head[n:]...)
	out = append(out, rest...)
	return []byte(strings.Join(out, "\n") + "\n"), nil
}

// ctFiles are pct's own files on the node: the CT configs (pmxcfs) and the
// config locks.
type ctFiles struct {
	configDir, lockDir string
	lockWait           time.Duration
}

// lock takes pct's config lock of vmid as lock_file_full does (open
// ">>", flock LOCK_EX), waiting at most f.lockWait.
func (f ctFiles) lock(ctx context.Context, vmid int) (func(), error) {
	if err := os.MkdirAll(f.lockDir, 0o755); err != nil { // Config.pm: mkdir $lockdir
		return nil, err
	}
	name := filepath.Join(f.lockDir, fmt.Sprintf("pve-config-%d.lock", vmid))
	fh, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(f.lockWait)
	for {
		err := unix.Flock(int(fh.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = fh.Close() }, nil // closing drops the flock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = fh.Close()
			return nil, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = fh.Close()
			return nil, fmt.Errorf("can't lock file '%s' - got timeout", name)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// setEnv writes vars as CT vmid's env (replacing any it has), under the
// CT's config lock. Failures come back classified like pct's own.
func (f ctFiles) setEnv(ctx context.Context, vmid int, vars []string) error {
	return f.setLines(ctx, vmid, vars, nil, nil)
}

// setLines is setEnv (vars nil: the env as it is) that also appends raw
// lxc.* lines and sets keys (withLines).
func (f ctFiles) setLines(ctx context.Context, vmid int, vars []string, raw, set []Option) error {
	const step = "write env to the CT config"
	fail := func(err error) error {
		te := classify(step, vmid, -1, err.Error())
		if te.Cat == errdefs.ErrInternal {
			te.Hint = "proxcage writes a CT's env into " + f.configDir + " as root on the node ([pve.tools] ct_config_dir, lock_dir)"
		}
		return te.asError()
	}
	unlock, err := f.lock(ctx, vmid)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	path := filepath.Join(f.configDir, strconv.Itoa(vmid)+".conf")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// pct just made the CT: its config is elsewhere, not gone.
		return errdefs.WithHint(errdefs.New(errdefs.ErrFailedPrecondition, "%s (CT %d): %s does not exist, though pct created the CT", step, vmid, path),
			"set [pve.tools] ct_config_dir to the directory of pct's CT configs (/etc/pve/lxc on a PVE node)")
	}
	if err != nil {
		return fail(err)
	}
	out, err := withLines(data, vars, raw, set)
	if err != nil {
		return fail(err)
	}
	// A temp file renamed over the config, as PVE's file_set_contents
	// does; pmxcfs allows 0640 (pmxcfs.c cfs_fuse_chmod).
	if err := atomicfile.Write(path, out, atomicfile.Options{Perm: 0o640}); err != nil {
		return fail(err)
	}
	return nil
}
