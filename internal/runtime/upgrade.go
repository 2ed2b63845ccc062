package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/spec"
	"github.com/proxcage/proxcage/internal/store"
	"github.com/proxcage/proxcage/internal/volume"
)

// UpgradeRequest is `proxcage upgrade ID [--image REF]`.
type UpgradeRequest struct {
	ID   string
	Ref  string // "" = the name the container was made from, resolved again
	Pull image.PullOptions
	// Health is the command whose exit 0 says the new container works
	// (--health-cmd; else the image's Healthcheck CMD; else: still
	// running after Settle).
	Health  []string
	Timeout time.Duration // for the health check to pass (default 30s)
	Settle  time.Duration // a container without health check must run this long (default 2s)
	// Stop is how long the old container gets after SIGTERM (default 10s,
	// podman stop's).
	Stop time.Duration
	// Progress gets one line per step.
	Progress func(format string, a ...any)
	// Resume finishes an upgrade a crash left (pve).
	Resume bool
	// NoHealth skips the image's HEALTHCHECK (the container must then
	// still run after Settle).
	NoHealth bool
}

// UpgradeResult says what an upgrade did.
type UpgradeResult struct {
	ID      string `json:"id"`
	Image   string `json:"image"`
	From    string `json:"from"`
	To      string `json:"to"`
	Changed bool   `json:"changed"`
}

// recorded is what an image container's bundle says it was made from.
type recorded struct {
	name, digest string
	overrides    imagespec.Overrides
	volumes      []volume.Mount
}

func readRecorded(s *specs.Spec, id string) (recorded, error) {
	ann := s.Annotations
	rec := recorded{name: ann[imagespec.AnnotationImageName], digest: ann[imagespec.AnnotationImageDigest]}
	if rec.name == "" || rec.digest == "" {
		return rec, errdefs.New(errdefs.ErrInvalidArgument, "container %q was not made from an image (create/run --image)", id)
	}
	if v := ann[AnnotationImageOverrides]; v != "" {
		if err := json.Unmarshal([]byte(v), &rec.overrides); err != nil {
			return rec, errdefs.New(errdefs.ErrInternal, "annotation %s of %s: %v", AnnotationImageOverrides, id, err)
		}
	}
	vols, err := volume.Decode(ann)
	rec.volumes = vols
	return rec, err
}

// Upgrade moves an image container to the image its name names now (or
// REF), keeping its id, its volumes and the user's overrides (command,
// env, workdir, user, tty, annotations), merged over the new image's
// config. Nothing happens when the digest is the same.
//
// On this host's backends (native, lxc) a container is its bundle: the
// upgrade stops it, makes it again from the new image and starts it; the
// new one must pass the health check, else it is removed and the old
// one is made again from the old image (still in the store by digest)
// and started, with the same volumes: the data written by the failed
// start stays (a directory has no snapshot).
func (r *Runtime) Upgrade(ctx context.Context, req UpgradeRequest) (UpgradeResult, error) {
	say := req.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	res := UpgradeResult{ID: req.ID}
	rec, be, _, err := r.load(req.ID)
	if err != nil {
		return res, err
	}
	up, inPlace := be.(backend.Upgrader)
	if req.Resume {
		if !inPlace {
			return res, errdefs.New(errdefs.ErrInvalidArgument, "upgrade --resume: the %s backend's upgrade has nothing to resume (it makes the container again in one go)", rec.Backend)
		}
		err := r.locked(req.ID, func(rec *store.Record, _ backend.Backend, c *backend.Container, h *store.Handle) error {
			found, forward, err := up.ResumeUpgrade(ctx, c)
			rec.Private = c.Private
			if err == nil && found {
				// The bundle says what the CT runs: the new image's spec,
				// kept beside it until then, or the old one.
				err = r.settleBundle(rec, forward)
			}
			if serr := h.Save(rec); err == nil {
				err = serr
			}
			if err == nil && !found {
				err = errdefs.New(errdefs.ErrFailedPrecondition, "container %q has no unfinished upgrade", req.ID)
			}
			return err
		})
		return res, err
	}
	b, err := spec.Load(rec.Bundle)
	if err != nil {
		return res, errdefs.Wrap(errdefs.Category(err), err, "read the bundle of %s", req.ID)
	}
	old, err := readRecorded(b.Spec, req.ID)
	if err != nil {
		return res, err
	}
	ref := req.Ref
	if ref == "" {
		ref = old.name
	}
	res.Image, res.From, res.To = ref, old.digest, old.digest
	st, err := r.ImageStore()
	if err != nil {
		return res, err
	}
	say("resolving %s", ref)
	img, err := st.Pull(ctx, ref, req.Pull)
	if err != nil {
		return res, err
	}
	res.To = img.Digest.String()
	if res.To == old.digest {
		return res, nil
	}
	health := req.Health
	if len(health) == 0 && img.Config != nil {
		health = healthCommand(img.Config.Config.Healthcheck)
	}

	if inPlace {
		return r.upgradeInPlace(ctx, req, up, st, img, old, b.Spec, res)
	}
	wasRunning := rec.Status == "running"
	if cur, err := r.State(ctx, req.ID); err == nil {
		wasRunning = cur.Status == specs.StateRunning
	}
	carry := ImageRequest{Pull: req.Pull, Overrides: old.overrides, Volumes: old.volumes}

	// The volumes keep a user while the container is made again, so no
	// `volumes rm` or other container's delete --volumes takes them then.
	vs, keeper := r.Volumes(), req.ID+".upgrading"
	for _, v := range old.volumes {
		if _, err := vs.Attach(v, keeper, ""); err != nil {
			return res, err
		}
	}
	defer func() {
		for _, v := range old.volumes {
			if _, err := vs.Detach(v.Name, keeper, false); err != nil {
				r.Log.Warn("release the upgrade's hold on a volume", "volume", v.Name, "err", err)
			}
		}
	}()
	say("stopping %s", req.ID)
	if req.Stop <= 0 {
		req.Stop = 10 * time.Second
	}
	if err := r.stopAndDelete(ctx, req.ID, req.Stop); err != nil {
		return res, errdefs.Context(err, "stop the old container", "")
	}
	say("creating %s from %s (%s)", req.ID, ref, res.To)
	next := carry
	next.Ref, next.Name = res.To, ref
	err = r.CreateFromImage(ctx, req.ID, next, backend.CreateOpts{})
	if err == nil {
		say("starting %s", req.ID)
		if err = r.Start(ctx, req.ID); err == nil {
			if req.NoHealth {
				health = nil
			}
			err = r.checkHealth(ctx, req.ID, nil, health, req.Timeout, req.Settle, say)
		}
	}
	if err == nil {
		res.Changed = true
		return res, nil
	}

	// Back to the old image.
	cause := err
	say("the new container failed (%s): back to %s", errdefs.OneLine(cause), old.digest)
	if derr := r.stopAndDelete(ctx, req.ID, req.Stop); derr != nil && !errors.Is(derr, errdefs.ErrNotFound) {
		return res, errdefs.WithHint(cause, fmt.Sprintf("and removing it failed (%s): `proxcage delete --force %s`, then create it again from %s", errdefs.OneLine(derr), req.ID, old.digest))
	}
	back := carry
	back.Ref, back.Name = old.digest, old.name
	if rerr := r.CreateFromImage(ctx, req.ID, back, backend.CreateOpts{}); rerr != nil {
		return res, errdefs.WithHint(cause, fmt.Sprintf("and making the old container again failed (%s): `proxcage create --image %s %s`", errdefs.OneLine(rerr), old.digest, req.ID))
	}
	if wasRunning {
		if serr := r.Start(ctx, req.ID); serr != nil {
			return res, errdefs.WithHint(cause, fmt.Sprintf("and starting the old container again failed (%s)", errdefs.OneLine(serr)))
		}
	}
	res.To = old.digest
	return res, errdefs.Wrap(errdefs.Category(cause), cause, "upgrade to %s failed, %s runs %s again", img.Digest, req.ID, old.digest)
}

// stopAndDelete ends a container as `podman stop` then rm does: SIGTERM,
// SIGKILL after grace, then delete (keeping the volumes).
func (r *Runtime) stopAndDelete(ctx context.Context, id string, grace time.Duration) error {
	if st, err := r.State(ctx, id); err == nil && st.Status == specs.StateRunning {
		_ = r.Kill(ctx, id, unix.SIGTERM, false)
		if !r.waitStopped(ctx, id, grace) {
			_ = r.Kill(ctx, id, unix.SIGKILL, true)
			r.waitStopped(ctx, id, 10*time.Second)
		}
	}
	return r.Delete(ctx, id, true)
}

func (r *Runtime) waitStopped(ctx context.Context, id string, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		st, err := r.State(ctx, id)
		if err != nil || st.Status == specs.StateStopped {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// checkHealth runs the health command in the container until it exits 0
// (or timeout); without one, the container must still run after settle.
func (r *Runtime) checkHealth(ctx context.Context, id string, base *specs.Process, cmd []string, timeout, settle time.Duration, say func(string, ...any)) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if settle <= 0 {
		settle = 2 * time.Second
	}
	if len(cmd) == 0 {
		time.Sleep(settle)
		st, err := r.State(ctx, id)
		if err != nil {
			return err
		}
		if st.Status != specs.StateRunning {
			return errdefs.New(errdefs.ErrFailedPrecondition, "the new container is %s %s after its start", st.Status, settle)
		}
		return nil
	}
	say("health check: %s", strings.Join(cmd, " "))
	end := time.Now().Add(timeout)
	for {
		st, err := r.State(ctx, id)
		if err != nil {
			return err
		}
		if st.Status != specs.StateRunning {
			return errdefs.New(errdefs.ErrFailedPrecondition, "the new container is %s", st.Status)
		}
		status, err := r.Exec(ctx, id, ExecRequest{Base: base, Args: cmd})
		if err == nil && status == 0 {
			return nil
		}
		if time.Now().After(end) {
			if err != nil {
				return errdefs.Wrap(errdefs.ErrFailedPrecondition, err, "health check %q", strings.Join(cmd, " "))
			}
			return errdefs.New(errdefs.ErrFailedPrecondition, "health check %q failed for %s (last exit status %d)", strings.Join(cmd, " "), timeout, status)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// healthCommand is the argv of an image's HEALTHCHECK: CMD args as they
// are, CMD-SHELL through /bin/sh -c (Docker's rule); NONE or none: nil.
func healthCommand(h *v1.HealthConfig) []string {
	if h == nil || len(h.Test) < 2 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	}
	return nil
}

// upgradeInPlace is the upgrade of a backend that keeps the container
// (pve: the CT keeps its VMID, NICs and volumes, and only the rootfs and
// the image's lines of its config change). The container stays locked
// throughout; the health check reads and execs without the lock.
func (r *Runtime) upgradeInPlace(ctx context.Context, req UpgradeRequest, up backend.Upgrader, st *image.Store, img *image.Image, old recorded, cur *specs.Spec, res UpgradeResult) (UpgradeResult, error) {
	say := req.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	rootfs, _, err := st.Rootfs(ctx, img, r.applyLayer)
	if err != nil {
		return res, err
	}
	o := old.overrides
	if o.Hostname == "" {
		o.Hostname = identifiers.Hostname(req.ID)
	}
	next, err := imagespec.Generate(imagespec.Image{Name: res.Image, Digest: img.Digest.String(), Config: img.Config}, rootfs, o)
	if err != nil {
		return res, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "image %s", res.Image)
	}
	ov, _ := json.Marshal(old.overrides)
	next.Annotations[AnnotationImageOverrides] = string(ov)
	if len(old.volumes) > 0 {
		next.Annotations[volume.Annotation] = volume.Encode(old.volumes)
	}
	if img.Config != nil {
		for p := range img.Config.Config.Volumes {
			if !slices.ContainsFunc(old.volumes, func(v volume.Mount) bool { return v.Path == path.Clean(p) }) {
				r.Log.Warn("the new image's VOLUME is no volume of the upgraded container (its files stay in the rootfs); a new container gets it", "id", req.ID, "path", p)
			}
		}
	}
	next.Root.Path = rootfs
	src, err := imageArchive(st, img, old.overrides, next.Process)
	if err != nil {
		return res, err
	}
	// The scratch CT: the new image alone, without NIC, volumes or a
	// VMID of the operator's.
	scratch := *next
	scratch.Annotations = maps.Clone(next.Annotations)
	for k := range scratch.Annotations {
		if strings.HasPrefix(k, "org.proxcage.net") || k == volume.Annotation || k == "org.proxcage.vmid" {
			delete(scratch.Annotations, k)
		}
	}
	scratch.Annotations["org.proxcage.net"] = "none"
	scratch.Hostname = identifiers.Hostname(req.ID + "-upgrade")
	health := req.Health
	if len(health) == 0 && img.Config != nil {
		health = healthCommand(img.Config.Config.Healthcheck)
	}
	if req.Stop <= 0 {
		req.Stop = 10 * time.Second
	}
	if req.NoHealth {
		health = nil
	}
	target := backend.UpgradeTarget{Image: src, Spec: &scratch, Rootfs: rootfs, Stop: req.Stop,
		ExecCheck: len(health) > 0, InitChanged: initChanged(cur, next),
		Check: func(ctx context.Context) error {
			say("started; checking its health")
			return r.checkHealth(ctx, req.ID, next.Process, health, req.Timeout, req.Settle, say)
		}}
	err = r.locked(req.ID, func(rec *store.Record, _ backend.Backend, c *backend.Container, h *store.Handle) error {
		// Another upgrade may have run while this one waited for the lock.
		if d := rec.Annotations[imagespec.AnnotationImageDigest]; d != old.digest {
			if d == res.To {
				return errUpToDate
			}
			return errdefs.New(errdefs.ErrFailedPrecondition, "container %q changed image (to %s) while this upgrade waited: run it again", req.ID, d)
		}
		// The new spec waits beside the bundle's: a crash after the swap
		// leaves it for a forward --resume.
		data, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "encode config.json")
		}
		// A new config.json already waiting is a crashed upgrade's: the
		// backend refuses this upgrade until that one is resumed, whose
		// forward --resume reads it, so a failure here puts it back
		// rather than remove it. (Before, the refusal removed it, and the
		// --resume of an upgrade that had passed its check then failed:
		// "read the new config.json".)
		pending := filepath.Join(rec.Bundle, pendingSpec)
		prev, prevErr := os.ReadFile(pending)
		if err := atomicfile.Write(pending, data, atomicfile.Options{Perm: 0o600}); err != nil {
			return errdefs.Wrap(errdefs.ErrInternal, err, "write the new config.json")
		}
		say("upgrading %s to %s (%s)", req.ID, res.Image, res.To)
		uerr := up.Upgrade(ctx, c, target)
		rec.Private = c.Private
		if uerr != nil {
			if prevErr == nil {
				if err := atomicfile.Write(pending, prev, atomicfile.Options{Perm: 0o600}); err != nil {
					r.Log.Warn("put back the new config.json of the unfinished upgrade", "id", req.ID, "err", err)
				}
			} else {
				_ = os.Remove(pending)
			}
			if serr := h.Save(rec); serr != nil {
				r.Log.Warn("save the state after a failed upgrade", "id", req.ID, "err", serr)
			}
			return uerr
		}
		if err := r.settleBundle(rec, true); err != nil {
			return err
		}
		return h.Save(rec)
	})
	if errors.Is(err, errUpToDate) {
		return res, nil
	}
	if err != nil {
		return res, errdefs.Wrap(errdefs.Category(err), err, "upgrade to %s", img.Digest)
	}
	res.Changed = true
	return res, nil
}

// initChanged names what differs between two specs among the settings a
// CT keeps in raw lxc.init.*/lxc.signal.halt lines (user, working
// directory, stop signal).
func initChanged(a, b *specs.Spec) []string {
	var out []string
	if a.Process == nil || b.Process == nil {
		return nil
	}
	ua, ub := a.Process.User, b.Process.User
	if ua.UID != ub.UID || ua.GID != ub.GID || !slices.Equal(ua.AdditionalGids, ub.AdditionalGids) {
		out = append(out, "the user")
	}
	if a.Process.Cwd != b.Process.Cwd {
		out = append(out, "the working directory")
	}
	if a.Annotations[imagespec.AnnotationStopSignal] != b.Annotations[imagespec.AnnotationStopSignal] {
		out = append(out, "the stop signal")
	}
	return out
}

// pendingSpec is the new image's config.json while an in-place upgrade
// runs, beside the bundle's own.
const pendingSpec = "config.json.upgrade"

var errUpToDate = errors.New("up to date")

// settleBundle makes the bundle say what the container runs after an
// in-place upgrade (forward: the pending spec becomes config.json, the
// record's annotations and rootfs follow, the image store learns who
// uses which) or leaves it as it was (the pending spec goes).
func (r *Runtime) settleBundle(rec *store.Record, forward bool) error {
	pending := filepath.Join(rec.Bundle, pendingSpec)
	if !forward {
		if err := os.Remove(pending); err != nil && !errors.Is(err, os.ErrNotExist) {
			return errdefs.Wrap(errdefs.ErrInternal, err, "remove the new config.json")
		}
		return nil
	}
	data, err := os.ReadFile(pending)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "read the new config.json")
	}
	var next specs.Spec
	if err := json.Unmarshal(data, &next); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "read the new config.json")
	}
	oldDigest := rec.Annotations[imagespec.AnnotationImageDigest]
	if err := os.Rename(pending, filepath.Join(rec.Bundle, "config.json")); err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "write config.json")
	}
	if st, err := r.ImageStore(); err == nil {
		if h, err := v1.NewHash(next.Annotations[imagespec.AnnotationImageDigest]); err == nil {
			if err := st.Use(h, rec.ID); err != nil {
				r.Log.Warn("record the new image's use", "id", rec.ID, "err", err)
			}
		}
		if h, err := v1.NewHash(oldDigest); err == nil && oldDigest != next.Annotations[imagespec.AnnotationImageDigest] {
			if err := st.Release(h, rec.ID); err != nil {
				r.Log.Warn("release the old image", "id", rec.ID, "err", err)
			}
		}
	}
	if next.Root != nil {
		rec.Rootfs = next.Root.Path
	}
	rec.Annotations = next.Annotations
	return nil
}
