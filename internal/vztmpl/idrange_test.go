package vztmpl

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestFirstOwnerOutside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns files to ids >= 65536")
	}
	root := t.TempDir()
	for _, d := range []string{"a", "b/c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/ok", "b/c/gid", "b/c/uid"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("nowhere", filepath.Join(root, "a/link")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if o, found, err := FirstOwnerOutside(ctx, root, 65536); err != nil || found {
		t.Fatalf("all ids below 65536: %+v %v %v", o, found, err)
	}
	if err := os.Lchown(filepath.Join(root, "a/link"), 65535, 65535); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := FirstOwnerOutside(ctx, root, 65536); found {
		t.Fatal("65535 is inside the map")
	}
	if err := os.Chown(filepath.Join(root, "b/c/uid"), 70000, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "b/c/gid"), 0, 65536); err != nil {
		t.Fatal(err)
	}
	// The first in walk order, the link's own owner (not followed).
	o, found, err := FirstOwnerOutside(ctx, root, 65536)
	if err != nil || !found || o != (Owner{Path: "/b/c/gid", UID: 0, GID: 65536}) {
		t.Fatalf("got %+v %v %v, want /b/c/gid 0:65536", o, found, err)
	}
	if err := os.Lchown(filepath.Join(root, "a/link"), 100000, 0); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := FirstOwnerOutside(ctx, root, 65536); o.Path != "/a/link" {
		t.Fatalf("a symlink's own owner counts: %+v", o)
	}
	if err := os.Chown(root, 65536, 0); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := FirstOwnerOutside(ctx, root, 65536); o.Path != "/" {
		t.Fatalf("the rootfs directory itself: %+v", o)
	}
}
