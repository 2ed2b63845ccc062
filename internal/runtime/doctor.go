package runtime

import (
	"context"
	"os"
	"path/filepath"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/store"
)

// Doctor runs the host checks: the state root and the data dir, then
// every backend the config can route to.
func (r *Runtime) Doctor(ctx context.Context) []backend.Check {
	checks := []backend.Check{r.checkStateRoot(), r.checkDataDir()}
	for _, name := range r.Config.Backends() {
		be, err := r.Backends.Get(name)
		if err != nil {
			checks = append(checks, backend.Check{Name: name + ": backend", Detail: errdefs.Text(err), Hint: errdefs.Hint(err)})
			continue
		}
		d, ok := be.(backend.Doctor)
		if !ok {
			checks = append(checks, backend.Check{Name: name + ": checks", OK: true, Detail: "backend has no host checks"})
			continue
		}
		checks = append(checks, d.Doctor(ctx)...)
	}
	return checks
}

func (r *Runtime) checkStateRoot() backend.Check {
	c := backend.Check{Name: "state root"}
	f, err := os.CreateTemp(r.Store.Root(), ".doctor*")
	if err != nil {
		c.Detail = err.Error()
		c.Hint = store.RootHint(r.Store.Root())
		return c
	}
	f.Close()
	_ = os.Remove(f.Name())
	c.OK, c.Detail = true, filepath.Clean(r.Store.Root())+" is writable"
	return c
}

// checkDataDir: images and image bundles go under data_dir, which need
// not exist yet.
func (r *Runtime) checkDataDir() backend.Check {
	return backend.WritableCheck("data dir", filepath.Clean(r.Config.DataDir), r.dataDirHint())
}
