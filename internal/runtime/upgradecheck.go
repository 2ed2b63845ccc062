package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/store"
)

// `upgrade --check`: for each container made from an image, whether the
// name it was made from (AnnotationImageName) now names another image than
// the one it runs (AnnotationImageDigest). Only manifests are fetched;
// nothing is pulled, recorded or changed.

// UpgradeStatus is one container's answer.
type UpgradeStatus struct {
	ID        string `json:"id"`
	Image     string `json:"image"`     // the name the container was made from
	Current   string `json:"current"`   // the manifest digest it runs
	Available string `json:"available"` // the one Image names now ("" when the check failed)
	UpToDate  bool   `json:"upToDate"`
	Error     string `json:"error"` // why the check failed, one line ("" when it did not)
	// Err is the failure itself (its category makes the exit code).
	Err error `json:"-"`
	// Pinned: Image is a digest reference, up to date without asking.
	Pinned bool `json:"-"`
}

// ImageOf returns the image name and manifest digest a container was made
// from (its bundle's annotations), and false for a bundle container.
func ImageOf(ann map[string]string) (name, digest string, ok bool) {
	name, digest = ann[imagespec.AnnotationImageName], ann[imagespec.AnnotationImageDigest]
	if name == "" || digest == "" {
		return "", "", false
	}
	return name, digest, true
}

// pinned reports whether an image name is a digest reference
// (NAME@sha256:...): it names the same image forever.
func pinned(name string) bool {
	_, d, ok := strings.Cut(name, "@")
	return ok && strings.Contains(d, ":")
}

// parallelChecks bounds the registries asked at once.
const parallelChecks = 4

// CheckUpgrades checks the containers ids (every image container when ids
// is empty: bundle containers are skipped) against their registries, in
// id order. An id that does not exist, or names a bundle container, fails
// the whole call before any registry is asked; a registry that fails
// fails only its containers' checks (Error, Err), the others are still
// answered. opts.Platform "" means the platform of the stored image the
// container runs (else this host's).
func (r *Runtime) CheckUpgrades(ctx context.Context, ids []string, opts image.PullOptions) ([]UpgradeStatus, error) {
	if err := image.CheckPlatform(opts.Platform); err != nil {
		return nil, err
	}
	recs, err := r.upgradeRecords(ids)
	if err != nil {
		return nil, err
	}
	out := make([]UpgradeStatus, len(recs))
	if len(recs) == 0 {
		return out, nil
	}
	var st *image.Store
	for i, rec := range recs {
		name, digest, _ := ImageOf(rec.Annotations)
		out[i] = UpgradeStatus{ID: rec.ID, Image: name, Current: digest}
		if pinned(name) {
			out[i].Available, out[i].UpToDate, out[i].Pinned = digest, true, true
		} else if st == nil {
			if st, err = r.ImageStore(); err != nil {
				return nil, err
			}
		}
	}

	// One resolve per name and platform, a few at a time.
	type key struct{ name, platform string }
	type answer struct {
		digest v1.Hash
		err    error
	}
	keys := make([]key, len(out))
	answers := map[key]*answer{}
	for i := range out {
		if out[i].UpToDate {
			continue
		}
		keys[i] = key{out[i].Image, r.checkPlatform(st, out[i].Current, opts.Platform)}
		if answers[keys[i]] == nil {
			answers[keys[i]] = &answer{}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelChecks)
	for k, a := range answers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o := opts
			o.Platform = k.platform
			a.digest, a.err = st.Resolve(ctx, k.name, o)
		})
	}
	wg.Wait()
	for i := range out {
		if out[i].UpToDate {
			continue
		}
		a := answers[keys[i]]
		if a.err != nil {
			out[i].Err, out[i].Error = a.err, errdefs.OneLine(a.err)
			continue
		}
		out[i].Available = a.digest.String()
		out[i].UpToDate = out[i].Available == out[i].Current
	}
	return out, nil
}

// upgradeRecords are the records to check: those of ids (each once, all
// made from an image), or every image container's.
func (r *Runtime) upgradeRecords(ids []string) ([]*store.Record, error) {
	var recs []*store.Record
	if len(ids) == 0 {
		all, err := r.Store.List()
		if err != nil {
			return nil, err
		}
		for _, rec := range all {
			if _, _, ok := ImageOf(rec.Annotations); ok {
				recs = append(recs, rec)
			}
		}
		return recs, nil
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		rec, err := r.Store.Load(id)
		if err != nil {
			return nil, err
		}
		if _, _, ok := ImageOf(rec.Annotations); !ok {
			return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
				Msg:  fmt.Sprintf("container %q was not made from an image", id),
				Hint: "only containers made with --image have an image to check"}
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// checkPlatform is the platform to resolve for a container running the
// image digest: the one asked for, else the stored image's own (a
// container made with --platform is checked for that platform), else ""
// (this host's). The variant is kept only for arm, whose variants are
// different images (arm64 indexes spell v8 or nothing).
func (r *Runtime) checkPlatform(st *image.Store, digest, asked string) string {
	if asked != "" {
		return asked
	}
	img, err := st.Get(digest)
	if err != nil || img.Config == nil || img.Config.OS == "" || img.Config.Architecture == "" {
		return ""
	}
	p := img.Config.OS + "/" + img.Config.Architecture
	if img.Config.Architecture == "arm" && img.Config.Variant != "" {
		p += "/" + img.Config.Variant
	}
	return p
}
