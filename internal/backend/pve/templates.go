package pve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/atomicfile"
	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/vztmpl"
)

// Templates proxcage leaves on the template storage: rootfs templates
// (vztmpl.FileName, proxcage-DIGEST_amd64.tar.zst) and OCI archives of
// images (OCITemplateName, proxcage-oci-IMAGE-ARCHIVE.tar: one per image
// and set of overrides). PVE extracts either at create; the file is kept
// for the next create of the same content, until `templates prune` or
// `rmi` removes it. proxcage-oci-IMAGE.tar is an older proxcage's archive
// (the image's manifest unchanged, Docker media types that PVE refuses):
// still listed and removed.

var ociArchiveName = regexp.MustCompile(`^proxcage-oci-([0-9a-f]{16})(?:-([0-9a-f]{16}))?\.tar$`)

// isTemplateName reports whether name is a template proxcage made.
func isTemplateName(name string) bool { return vztmpl.IsName(name) || ociArchiveName.MatchString(name) }

// storedTemplate is one of proxcage's template files on a node's template
// storage.
type storedTemplate struct {
	Node  string // "" for the pct transport's own node
	Volid string // STORAGE:vztmpl/NAME
	Name  string
	Size  int64
}

func (t storedTemplate) label() string {
	if t.Node == "" {
		return t.Volid
	}
	return t.Volid + " on " + t.Node
}

// inUse returns the template file names the given containers were made from.
func inUse(live []*backend.Container) map[string]bool {
	keep := map[string]bool{}
	for _, c := range live {
		if p, err := loadPrivate(c); err == nil && p.Template != "" {
			keep[filepath.Base(p.Template)] = true
		}
	}
	return keep
}

// templateKind says what a template is made from, for `templates`.
func templateKind(name string) string {
	if m := ociArchiveName.FindStringSubmatch(name); m != nil {
		if m[2] == "" {
			return "OCI image " + m[1] + "... (old archive, Docker media types)"
		}
		return "OCI image " + m[1] + "..., archive " + m[2] + "..."
	}
	return "rootfs"
}

// Templates implements backend.TemplateManager: proxcage's templates on
// the template storage (every node's, over the API).
func (b *Backend) Templates(ctx context.Context, live []*backend.Container) ([]backend.Template, error) {
	ts, err := b.tr.templates(ctx)
	if err != nil {
		return nil, err
	}
	keep := inUse(live)
	out := make([]backend.Template, 0, len(ts))
	for _, t := range ts {
		detail := templateKind(t.Name)
		if t.Node != "" {
			detail += ", node " + t.Node
		}
		out = append(out, backend.Template{Name: t.Volid, Size: t.Size, InUse: keep[t.Name], Detail: detail})
	}
	return out, nil
}

// PruneTemplates implements backend.TemplateManager: removes proxcage's
// templates that no container of this store was made from, on the
// template storage and in the transport's scratch space (temp files a
// dead writer left; the api transport's local cache).
func (b *Backend) PruneTemplates(ctx context.Context, live []*backend.Container) ([]string, error) {
	keep := inUse(live)
	return b.removeTemplates(ctx, func(name string) bool { return !keep[name] })
}

// RemoveImageTemplates implements backend.TemplateManager: the OCI
// archives of image digest (one per set of overrides) go with the image
// (`rmi`, `images prune`), but those a container was made from.
func (b *Backend) RemoveImageTemplates(ctx context.Context, digest string, live []*backend.Container) ([]string, error) {
	return b.removeTemplates(ctx, imageTemplates(digest, inUse(live)))
}

// imageTemplates selects the OCI archives of image digest (any archive
// digest, and the older one-digest name) that keep does not hold.
func imageTemplates(digest string, keep map[string]bool) func(string) bool {
	short := strings.TrimPrefix(digest, "sha256:")
	if len(short) > 16 {
		short = short[:16]
	}
	return func(n string) bool {
		m := ociArchiveName.FindStringSubmatch(n)
		return len(m) == 3 && m[1] == short && !keep[n]
	}
}

// removeTemplates removes the templates drop selects, stored and in the
// scratch space, and the scratch space's dead temp files.
func (b *Backend) removeTemplates(ctx context.Context, drop func(string) bool) ([]string, error) {
	ts, err := b.tr.templates(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, t := range ts {
		if !drop(t.Name) {
			continue
		}
		if err := b.tr.removeTemplate(ctx, t); err != nil {
			return removed, errdefs.Wrap(errdefs.Category(err), err, "remove template %s", t.label())
		}
		removed = append(removed, t.label())
	}
	more, err := b.tr.pruneScratch(ctx, drop)
	return append(removed, more...), err
}

// pruneDir removes from dir (a template storage's directory, or the api
// transport's cache) the proxcage templates drop selects and the temp
// files of writers that died: proven dead by the stamp in the name, or
// older than vztmpl.StaleTempAge (so a running write survives). It never
// touches other files.
func pruneDir(dir string, drop func(string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "read %s", dir)
	}
	var removed []string
	now := time.Now()
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		switch {
		case isTemplateName(name):
			if drop == nil || !drop(name) {
				continue
			}
		case isTempName(name):
			if !tempDead(name) {
				fi, err := e.Info()
				if err != nil || now.Sub(fi.ModTime()) < vztmpl.StaleTempAge {
					continue // gone already, or possibly still being written
				}
			}
		default:
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, errdefs.Wrap(errdefs.ErrInternal, err, "remove %s", name)
		}
		removed = append(removed, filepath.Join(dir, name))
	}
	return removed, nil
}

// isTempName: vztmpl.Ensure's temp files, and writeOnce's for OCI archives
// (".NAME.tmp-STAMP-RANDOM").
func isTempName(name string) bool {
	if vztmpl.IsTempName(name) {
		return true
	}
	base, _, ok := strings.Cut(strings.TrimPrefix(name, "."), ".tmp-")
	return ok && strings.HasPrefix(name, ".") && isTemplateName(base)
}

// tempDead reports whether a temp file's writer is proven gone by the
// stamp in its name (proc.Stamp); unstamped names never are.
func tempDead(name string) bool {
	if vztmpl.IsTempName(name) {
		return vztmpl.TempDead(name)
	}
	base, _, _ := strings.Cut(strings.TrimPrefix(name, "."), ".tmp-")
	return atomicfile.Dead(name, atomicfile.TempPrefix(base))
}

// listDir lists proxcage's templates in a local template directory.
func listDir(dir, storage string) ([]storedTemplate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list templates in %s", dir)
	}
	var out []storedTemplate
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTemplateName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, storedTemplate{Volid: fmt.Sprintf("%s:vztmpl/%s", storage, e.Name()), Name: e.Name(), Size: fi.Size()})
	}
	return out, nil
}
