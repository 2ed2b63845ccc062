package pve

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/test/pvesim"
)

// The api transport's templates against the PVE API simulator: upload,
// listing on every node, prune (fixture in apibackend_test.go).

// PVE's HTTP server takes no chunked bodies (the simulator answers 501, as
// pve-http-server does): an upload carries a Content-Length.
func TestAPIUploadIsNotChunked(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{})
	c := f.container("upload", nil)
	f.sim.ResetCalls()
	if err := f.backend().Create(context.Background(), c, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Calls()["POST /nodes/{node}/storage/{storage}/upload"]; n != 1 {
		t.Fatalf("uploads: %d", n)
	}
}

// The templates a create uploads are listed on every node's storage and
// pruned over the API (DELETE .../content/VOLID), the local cache with
// them; an image's archive goes with the image.
func TestAPITemplatesListedAndPruned(t *testing.T) {
	f := newAPIFixture(t, pvesim.Options{Nodes: []string{"pve1", "pve2"}, TaskDuration: time.Millisecond})
	ctx := context.Background()
	b := f.backend()
	f.cfg.Node = "pve1"
	c1 := f.container("t1", nil)
	if err := f.backend().Create(ctx, c1, backend.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	f.cfg.Node = "pve2"
	c2 := f.container("t2", nil)
	img := &backend.ImageSource{Name: "test/x:1", Digest: "sha256:" + strings.Repeat("ab", 32),
		WriteOCIArchive: func(w io.Writer) error { _, err := w.Write([]byte("oci archive")); return err },
		Defaults:        &specs.Process{Args: []string{"/sbin/init"}, Cwd: "/"}}
	if err := f.backend().Create(ctx, c2, backend.CreateOpts{Image: img}); err != nil {
		t.Fatal(err)
	}
	ts, err := b.Templates(ctx, []*backend.Container{c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tpl := range ts {
		got = append(got, fmt.Sprintf("%s %v %s", tpl.Name, tpl.InUse, tpl.Detail))
	}
	sort.Strings(got)
	if len(got) != 2 || !strings.Contains(got[0], "proxcage-") || !strings.HasSuffix(got[0], "node pve1") ||
		!strings.Contains(got[1], "local:vztmpl/proxcage-oci-abababababababab-abababababababab.tar true OCI image") || !strings.HasSuffix(got[1], "node pve2") {
		t.Fatalf("templates: %q", got)
	}
	// In use: nothing goes.
	if rm, err := b.PruneTemplates(ctx, []*backend.Container{c1, c2}); err != nil || len(rm) != 0 {
		t.Fatalf("prune while in use: %v %v", rm, err)
	}
	if rm, err := b.RemoveImageTemplates(ctx, img.Digest, []*backend.Container{c2}); err != nil || len(rm) != 0 {
		t.Fatalf("image templates removed while in use: %v %v", rm, err)
	}
	for _, c := range []*backend.Container{c1, c2} {
		if err := b.Delete(ctx, c, true); err != nil {
			t.Fatal(err)
		}
	}
	rm, err := b.RemoveImageTemplates(ctx, img.Digest, nil)
	if err != nil || len(rm) != 2 || !strings.Contains(rm[0], "proxcage-oci-abababababababab-abababababababab.tar on pve2") {
		t.Fatalf("image templates: %v %v", rm, err)
	}
	rm, err = b.PruneTemplates(ctx, nil)
	if err != nil || len(rm) != 2 || !strings.HasSuffix(rm[0], " on pve1") {
		t.Fatalf("prune: %v %v", rm, err)
	}
	if ts, _ := b.Templates(ctx, nil); len(ts) != 0 {
		t.Fatalf("templates left on PVE: %+v", ts)
	}
	if left, _ := os.ReadDir(f.cfg.TemplateCache); len(left) != 0 {
		t.Fatalf("template cache left: %v", left)
	}
}
