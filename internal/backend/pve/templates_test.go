package pve

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxcage/proxcage/internal/vztmpl"
)

// listDir and pruneDir see proxcage's templates (rootfs templates and OCI
// archives) and the temp files of dead writers, and nothing else.
func TestListAndPruneDir(t *testing.T) {
	dir := t.TempDir()
	keepName := vztmpl.FileName("sha256:" + strings.Repeat("a", 64))
	dropName := vztmpl.FileName("sha256:" + strings.Repeat("b", 64))
	archive := OCITemplateName("sha256:"+strings.Repeat("c", 64), "sha256:"+strings.Repeat("e", 64))
	files := map[string]string{
		keepName: "keep me",
		dropName: "drop me!",
		archive:  "an OCI archive",
		"debian-12-standard_12.7-1_amd64.tar.zst": "not ours",
		"proxcage-notes.txt":                      "not a template name",
		"proxcage-0123456789ABCDEF_amd64.tar.zst": "upper-case hex: not ours",
		".proxcage-tmp-old":                       "stale temp of Ensure",
		".proxcage-tmp-new":                       "live temp",
		"." + archive + ".tmp-123":                "stale temp of writeOnce",
		".other.tar.tmp-1":                        "not ours",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A directory with a template name is not a template.
	if err := os.Mkdir(filepath.Join(dir, vztmpl.FileName("sha256:"+strings.Repeat("d", 64))), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := time.Now().Add(-2 * time.Hour)
	for _, n := range []string{".proxcage-tmp-old", "." + archive + ".tmp-123", ".other.tar.tmp-1"} {
		if err := os.Chtimes(filepath.Join(dir, n), stale, stale); err != nil {
			t.Fatal(err)
		}
	}

	list, err := listDir(dir, "local")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name+" "+l.Volid)
	}
	want := []string{keepName + " local:vztmpl/" + keepName, dropName + " local:vztmpl/" + dropName, archive + " local:vztmpl/" + archive}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("listDir = %q, want %q", names, want)
	}
	if list[0].Size != int64(len(files[keepName])) || list[2].Size != int64(len(files[archive])) {
		t.Errorf("listDir sizes wrong: %+v", list)
	}

	removed, err := pruneDir(dir, func(n string) bool { return n != keepName })
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{dropName: true, archive: true, ".proxcage-tmp-old": true, "." + archive + ".tmp-123": true}
	if len(removed) != len(gone) {
		t.Errorf("pruneDir removed %q", removed)
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if g := errors.Is(err, os.ErrNotExist); g != gone[name] {
			t.Errorf("%s: gone=%v, want %v (%v)", name, g, gone[name], err)
		}
	}
	// nil drops no template, only dead temp files.
	if removed, err := pruneDir(dir, nil); err != nil || len(removed) != 0 {
		t.Errorf("pruneDir(nil) = %q, %v", removed, err)
	}
	if _, err := listDir(filepath.Join(dir, "missing"), "local"); err == nil {
		t.Error("listDir of a missing dir: no error")
	}
}

// An image has one OCI archive per set of overrides: rmi selects all of
// them (and an older proxcage's one-digest name), but those in use and
// other images'. Before, only the one name made from the image digest
// was removed.
func TestImageTemplatesSelectsEveryArchiveOfTheImage(t *testing.T) {
	img := "sha256:" + strings.Repeat("1", 64)
	plain := OCITemplateName(img, "")
	derived := OCITemplateName(img, "sha256:"+strings.Repeat("2", 64))
	used := OCITemplateName(img, "sha256:"+strings.Repeat("3", 64))
	other := OCITemplateName("sha256:"+strings.Repeat("4", 64), img)
	old := "proxcage-oci-1111111111111111.tar"
	if plain != "proxcage-oci-1111111111111111-1111111111111111.tar" {
		t.Fatalf("OCITemplateName without an archive digest: %s", plain)
	}
	drop := imageTemplates(img, map[string]bool{used: true})
	for name, want := range map[string]bool{plain: true, derived: true, old: true, used: false, other: false,
		vztmpl.FileName(img): false} {
		if drop(name) != want {
			t.Errorf("%s: selected %v, want %v", name, !want, want)
		}
		if name != vztmpl.FileName(img) && !isTemplateName(name) {
			t.Errorf("%s is not a template name", name)
		}
	}
	if got := templateKind(derived); got != "OCI image 1111111111111111..., archive 2222222222222222..." {
		t.Errorf("templateKind = %q", got)
	}
}
