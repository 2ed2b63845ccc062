package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/store"
	"github.com/proxcage/proxcage/test/testimages"
)

// imageRecord puts a record of a container made from image name at digest
// in e's state root (the annotations imagespec sets; a bundle container
// when name is "").
func (e *env) imageRecord(id, name, digest string) {
	e.t.Helper()
	st, err := store.Open(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	rec := &store.Record{ID: id, Backend: "native", Bundle: "/nonexistent", Created: time.Now()}
	if name != "" {
		rec.Annotations = map[string]string{imagespec.AnnotationImageName: name, imagespec.AnnotationImageDigest: digest}
	}
	h, err := st.Reserve(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	h.Unlock()
}

// layoutImages writes an OCI layout with one image per tag and returns
// the layout and the images' digests.
func layoutImages(t *testing.T, tags ...string) (string, map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, tag := range tags {
		l, err := testimages.Layer([]testimages.Entry{{Name: "tag", Data: []byte(tag + "\n")}})
		if err != nil {
			t.Fatal(err)
		}
		img, err := testimages.Image(v1.Config{Cmd: []string{"/bin/true"}}, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests[tag] = d.String()
	}
	return dir, digests
}

type checked struct {
	ID        string `json:"id"`
	Image     string `json:"image"`
	Current   string `json:"current"`
	Available string `json:"available"`
	UpToDate  bool   `json:"upToDate"`
	Error     string `json:"error"`
}

func TestUpgradeCheck(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf("data_dir = %q\n", t.TempDir()))
	dir, d := layoutImages(t, "v1", "v2")
	stale := "sha256:" + strings.Repeat("0", 64)
	v1ref, v2ref := "oci:"+dir+":v1", "oci:"+dir+":v2"
	// Pinned: never resolved (the registry does not exist).
	pinned := "registry.invalid/app@" + stale
	e.imageRecord("a-stale", v1ref, stale)
	e.imageRecord("b-fresh", v1ref, d["v1"])
	e.imageRecord("c-other", v2ref, d["v2"])
	e.imageRecord("d-pinned", pinned, stale)
	e.imageRecord("e-bundle", "", "")

	r := e.run("upgrade", "--check", "--format", "json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("upgrade --check --format json: %+v", r)
	}
	var got []checked
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	want := []checked{
		{"a-stale", v1ref, stale, d["v1"], false, ""},
		{"b-fresh", v1ref, d["v1"], d["v1"], true, ""},
		{"c-other", v2ref, d["v2"], d["v2"], true, ""},
		{"d-pinned", pinned, stale, stale, true, ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("json report:\n%+v\nwant\n%+v", got, want)
	}
	// Every key, always.
	var raw []map[string]any
	_ = json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"id", "image", "current", "available", "upToDate", "error"} {
		if _, ok := raw[0][k]; !ok || len(raw[0]) != 6 {
			t.Errorf("json object %v: key %s missing or extra keys", raw[0], k)
		}
	}

	r = e.run("upgrade", "--check")
	if r.code != 0 {
		t.Fatalf("upgrade --check: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 || !regexp.MustCompile(`^ID +IMAGE +CURRENT +AVAILABLE +STATUS$`).MatchString(lines[0]) {
		t.Fatalf("table:\n%s", r.stdout)
	}
	short := func(s string) string { return s[:len("sha256:")+12] }
	for i, w := range []string{
		`^a-stale +` + regexp.QuoteMeta(v1ref) + ` +` + short(stale) + ` +` + short(d["v1"]) + ` +update available$`,
		`^b-fresh +` + regexp.QuoteMeta(v1ref) + ` +` + short(d["v1"]) + ` +` + short(d["v1"]) + ` +up to date$`,
		`^c-other +` + regexp.QuoteMeta(v2ref) + ` +` + short(d["v2"]) + ` +` + short(d["v2"]) + ` +up to date$`,
		`^d-pinned +registry\.invalid/app@` + short(stale) + ` +` + short(stale) + ` +` + short(stale) + ` +up to date \(pinned\)$`,
	} {
		if !regexp.MustCompile(w).MatchString(lines[i+1]) {
			t.Errorf("table row %d %q does not match %s", i+1, lines[i+1], w)
		}
	}

	// Named ones only.
	r = e.run("upgrade", "--check", "-f", "json", "c-other", "a-stale")
	got = nil
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil || len(got) != 2 || got[0].ID != "c-other" || got[1].ID != "a-stale" {
		t.Errorf("named check: %+v (%v)", r, err)
	}

	// A check that fails: reported in its row, the others still answered,
	// one stderr line, the exit code of its category (not found: 3).
	e.imageRecord("f-gone", "oci:"+dir+":v3", d["v1"])
	r = e.run("upgrade", "--check", "--format", "json")
	got = nil
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 5 {
		t.Fatalf("report with a failed check: %+v (%v)", r, err)
	}
	if f := got[4]; f.ID != "f-gone" || f.Error == "" || f.Available != "" || f.UpToDate || !strings.Contains(f.Error, "v3") {
		t.Errorf("failed row: %+v", f)
	}
	if got[1].Error != "" || !got[1].UpToDate {
		t.Errorf("a failed check spoiled another: %+v", got[1])
	}
	if r.code != 3 || !strings.Contains(oneLine(t, r), "1 of 5 containers could not be checked; f-gone") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("upgrade", "--check")
	if r.code != 3 || !regexp.MustCompile(`(?m)^f-gone +\S+ +sha256:\w{12} +- +check failed: .*v3`).MatchString(r.stdout) {
		t.Errorf("table with a failed check: %+v", r)
	}
}

func TestUpgradeCheckNone(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf("data_dir = %q\n", t.TempDir()))
	e.imageRecord("bundle", "", "")
	if r := e.run("upgrade", "--check", "--format", "json"); r.code != 0 || r.stdout != "[]\n" {
		t.Errorf("no image container, json: %+v", r)
	}
	if r := e.run("upgrade", "--check"); r.code != 0 || !regexp.MustCompile(`^ID +IMAGE +CURRENT +AVAILABLE +STATUS\n$`).MatchString(r.stdout) {
		t.Errorf("no image container, table: %+v", r)
	}
}

func TestUpgradeBadInput(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf("data_dir = %q\n", t.TempDir()))
	e.imageRecord("bundle", "", "")
	e.imageRecord("img", "oci:/nonexistent:v1", "sha256:"+strings.Repeat("0", 64))
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"upgrade"}, 2, "proxcage: upgrade: name one container (or --check for a report on many)"},
		{[]string{"upgrade", "a", "b"}, 2, "proxcage: upgrade: name one container"},
		{[]string{"upgrade", "nosuch"}, 3, `container "nosuch" does not exist`},
		{[]string{"upgrade", "--check", "--image", "x", "img"}, 2, "--image does not go with --check"},
		{[]string{"upgrade", "--format", "json", "img"}, 2, "--format goes with --check"},
		{[]string{"upgrade", "--check", "--format", "yaml"}, 2, `--format "yaml": want table or json`},
		{[]string{"upgrade", "--check", "nosuch"}, 3, `container "nosuch" does not exist`},
		{[]string{"upgrade", "--check", "img", "bundle"}, 2, `container "bundle" was not made from an image`},
		{[]string{"upgrade", "--check", ""}, 2, "cannot be empty"},
		{[]string{"upgrade", "--check", "--platform", "linux", "img"}, 2, `platform "linux": use os/arch[/variant]`},
	} {
		r := e.run(tt.args...)
		if r.code != tt.code || r.stdout != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q, want %d", tt.args, r.code, r.stdout, r.stderr, tt.code)
		}
		if line := oneLine(t, r); !strings.Contains(line, tt.want) {
			t.Errorf("%q: stderr %q lacks %q", tt.args, line, tt.want)
		}
	}
}

// TestListShowsImage: list's IMAGE column and JSON fields say which image
// (name and manifest digest) a container was made from.
func TestListShowsImage(t *testing.T) {
	e := newEnv(t)
	d := "sha256:" + strings.Repeat("ab", 32)
	e.imageRecord("img", "example.com/app:1", d)
	e.imageRecord("pin", "example.com/app@"+d, d)
	e.imageRecord("bun", "", "")
	r := e.run("list")
	if r.code != 0 {
		t.Fatalf("list: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`BACKEND +NODE +IMAGE$`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", r.stdout)
	}
	for i, want := range []string{" -", " example.com/app:1@sha256:abababababab", " example.com/app@sha256:abababababab"} {
		if !strings.HasSuffix(lines[i+1], want) {
			t.Errorf("row %q does not end in %q", lines[i+1], want)
		}
	}
	r = e.run("list", "--format", "json")
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 3 {
		t.Fatalf("list json: %+v (%v)", r, err)
	}
	if _, ok := got[0]["image"]; ok || got[0]["id"] != "bun" {
		t.Errorf("bundle container has an image field: %v", got[0])
	}
	if got[1]["image"] != "example.com/app:1" || got[1]["imageDigest"] != d {
		t.Errorf("image container: %v", got[1])
	}
	// state has them too (and the annotations always had them).
	r = e.run("state", "img")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st["image"] != "example.com/app:1" || st["imageDigest"] != d ||
		st["annotations"].(map[string]any)[imagespec.AnnotationImageDigest] != d {
		t.Errorf("state: %+v (%v)", r, err)
	}
}
