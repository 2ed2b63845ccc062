package pve

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/lxctools"
)

// tools runs the PVE and LXC command-line tools of the local node (the
// "pct" transport). Every change goes through pct, but for a CT's env,
// which pct's argv cannot carry (env.go writes it into the CT's config).
type tools struct {
	pct, pvesh, pvesm, pveversion, lxcInfo, lxcAttach string
	timeout                                           time.Duration
	log                                               *slog.Logger
}

// redacted lists options whose values never reach a log line: a
// container's environment may hold secrets.
var redacted = map[string]bool{"--env": true, "--password": true}

func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if redacted[out[i]] {
			out[i+1] = "<redacted>"
		}
	}
	return out
}

// run executes bin with args under the call timeout (lxctools' runner). A
// failure comes back classified (see errors.go) and logged with its argv
// and stderr.
func (t *tools) run(ctx context.Context, vmid int, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	out, err := lxctools.Tools{}.Run(ctx, bin, args...)
	if err == nil {
		return out, nil
	}
	step := toolName(bin)
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		step += " " + args[0]
	}
	var te *toolError
	var le *lxctools.Error
	stderr := ""
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		te = &toolError{Step: step, VMID: vmid, Code: -1, Stderr: "no answer within " + t.timeout.String(),
			Cat: errdefs.ErrUnavailable, Retry: false,
			Hint: "the node is slow or a lock is held; raise [pve] timeout or retry"}
	case errors.As(err, &le):
		stderr = le.Stderr
		te = classify(step, vmid, le.Code, le.Stderr)
	case errors.Is(err, exec.ErrNotFound):
		te = &toolError{Step: step, VMID: vmid, Code: -1, Stderr: errors.Unwrap(err).Error(), Cat: errdefs.ErrFailedPrecondition,
			Hint: "the pct transport runs on a Proxmox VE node; install PVE or set the tool paths in [pve.tools]"}
	default:
		te = &toolError{Step: step, VMID: vmid, Code: -1, Stderr: err.Error(), Cat: errdefs.ErrInternal}
	}
	t.log.Info("pve tool failed", "argv", append([]string{bin}, redact(args)...), "exit", te.Code, "stderr", strings.TrimSpace(stderr))
	return out, te.asError()
}

func toolName(bin string) string {
	if i := strings.LastIndexByte(bin, '/'); i >= 0 {
		return bin[i+1:]
	}
	return bin
}

// retryTransient repeats fn while it fails with a transient PVE error (lock
// timeouts, "CT is locked", "got no worker upid"), with jittered backoff,
// at most attempts times.
func retryTransient(ctx context.Context, log *slog.Logger, attempts int, fn func() error) error {
	delay := 300 * time.Millisecond
	for i := 1; ; i++ {
		err := fn()
		var te *toolError
		if err == nil || i >= attempts || !errors.As(err, &te) || !te.Retry {
			return err
		}
		wait := delay + time.Duration(rand.Int64N(int64(delay)))
		log.Debug("retrying transient PVE failure", "attempt", i, "wait", wait, "reason", te.Stderr)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay *= 2
	}
}
