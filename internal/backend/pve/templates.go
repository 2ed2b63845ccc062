package pve

import (
	"context"
	"path/filepath"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/vztmpl"
)

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

// templateDir is where templates are built: the template storage's
// directory on the node (pct), or the local cache before upload (api;
// prune then frees the cache only, the uploaded copies stay on PVE).
func (b *Backend) templateDir(ctx context.Context) (string, error) {
	switch t := b.tr.(type) {
	case *pctTransport:
		return t.templateDir(ctx)
	case *apiTransport:
		return t.cacheDir, nil
	}
	return "", errdefs.New(errdefs.ErrInternal, "no template directory for transport %s", b.tr.name())
}

// Templates implements backend.TemplateManager.
func (b *Backend) Templates(ctx context.Context, live []*backend.Container) ([]backend.Template, error) {
	dir, err := b.templateDir(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := vztmpl.List(dir)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInternal, err, "list templates in %s", dir)
	}
	keep := inUse(live)
	out := make([]backend.Template, 0, len(ts))
	for _, t := range ts {
		out = append(out, backend.Template{Name: b.cfg.TemplateStorage + ":vztmpl/" + t.Name, Size: t.Size, InUse: keep[t.Name]})
	}
	return out, nil
}

// PruneTemplates implements backend.TemplateManager: removes proxcage's
// templates that no container of this store was made from.
func (b *Backend) PruneTemplates(ctx context.Context, live []*backend.Container) ([]string, error) {
	dir, err := b.templateDir(ctx)
	if err != nil {
		return nil, err
	}
	removed, err := vztmpl.Prune(dir, inUse(live))
	if err != nil {
		return removed, errdefs.Wrap(errdefs.ErrInternal, err, "prune templates in %s", dir)
	}
	return removed, nil
}
