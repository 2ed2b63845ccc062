package volume

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]Mount{
		"data:/var/lib/data": {Name: "data", Path: "/var/lib/data"},
		"db.1:/srv//db/:ro":  {Name: "db.1", Path: "/srv/db", ReadOnly: true},
		"x_y-z:/a:rw":        {Name: "x_y-z", Path: "/a"},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"data":          "want NAME:/PATH",
		"/host:/ctr":    "a host path is not a volume",
		"data:rel":      "not absolute",
		"data:/":        "cannot be mounted on /",
		"data:/a:rx":    `option "rx"`,
		"-x:/a":         "volume name",
		"a:/b:ro:extra": "want NAME:/PATH",
		"../etc:/a":     "a host path is not a volume",
	}
	for in, want := range bad {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error = %v; want one line containing %q", in, err, want)
		}
	}
}

func TestForImage(t *testing.T) {
	user := []Mount{{Name: "mine", Path: "/data"}}
	got, err := ForImage("web", user, map[string]struct{}{"/data": {}, "/var/log/": {}, "/cache": {}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Name: "mine", Path: "/data"},
		{Name: "web-0", Path: "/cache", Anonymous: true},
		{Name: "web-2", Path: "/var/log", Anonymous: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ForImage = %+v, want %+v", got, want)
	}
	if _, err := ForImage("web", []Mount{{Name: "a", Path: "/x"}, {Name: "b", Path: "/x"}}, nil); err == nil {
		t.Fatal("two volumes at one path accepted")
	}
	if _, err := ForImage("web", []Mount{{Name: "a", Path: "/x"}, {Name: "a", Path: "/y"}}, nil); err == nil {
		t.Fatal("one volume at two paths accepted")
	}
	// An upgrade carries web-0 (at /old); the new image's first VOLUME
	// gets the next free name.
	carried, err := ForImage("web", []Mount{{Name: "web-0", Path: "/old", Anonymous: true}}, map[string]struct{}{"/new": {}})
	if err != nil || len(carried) != 2 || carried[1] != (Mount{Name: "web-1", Path: "/new", Anonymous: true}) {
		t.Fatalf("carried: %+v, %v", carried, err)
	}
	ann := map[string]string{Annotation: Encode(got)}
	back, err := Decode(ann)
	if err != nil || !reflect.DeepEqual(back, got) {
		t.Fatalf("Decode(Encode) = %+v, %v", back, err)
	}
	if _, err := Decode(map[string]string{Annotation: `[{"name":"../x","path":"/a"}]`}); err == nil {
		t.Fatal("Decode accepted a bad name")
	}
}

func TestAttachSeedsDetachRemoves(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "volumes")}
	root := filepath.Join(dir, "rootfs")
	must(t, os.MkdirAll(filepath.Join(root, "srv/data/sub"), 0o750))
	must(t, os.WriteFile(filepath.Join(root, "srv/data/sub/f"), []byte("seed"), 0o640))
	must(t, os.Symlink("/etc", filepath.Join(root, "srv/data/link")))
	// A hostile image: its VOLUME path is a symlink to the host's /etc.
	must(t, os.Symlink("/etc", filepath.Join(root, "evil")))
	if os.Geteuid() == 0 {
		must(t, os.Lchown(filepath.Join(root, "srv/data/sub/f"), 1234, 5678))
	}

	got, err := s.Attach(Mount{Name: "d", Path: "/srv/data"}, "c1", root)
	if err != nil {
		t.Fatal(err)
	}
	if got != s.DataDir("d") {
		t.Fatalf("Attach dir %s, want %s", got, s.DataDir("d"))
	}
	b, err := os.ReadFile(filepath.Join(got, "sub/f"))
	if err != nil || string(b) != "seed" {
		t.Fatalf("seeded file: %q, %v", b, err)
	}
	if l, _ := os.Readlink(filepath.Join(got, "link")); l != "/etc" {
		t.Fatalf("symlink copied as %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(got, "sub")); fi == nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("dir mode not kept: %v", fi)
	}
	if os.Geteuid() == 0 {
		var st = statOwner(t, filepath.Join(got, "sub/f"))
		if st != [2]uint32{1234, 5678} {
			t.Fatalf("owner not kept: %v", st)
		}
	}
	// A second attach never reseeds: the data is the volume's.
	must(t, os.WriteFile(filepath.Join(got, "sub/f"), []byte("written"), 0o640))
	if _, err := s.Attach(Mount{Name: "d", Path: "/srv/data"}, "c2", root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(got, "sub/f")); string(b) != "written" {
		t.Fatalf("reattach reseeded: %q", b)
	}
	// The hostile one gets an empty volume, not the host's /etc.
	evil, err := s.Attach(Mount{Name: "e", Path: "/evil"}, "c1", root)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(evil); len(ents) != 0 {
		t.Fatalf("symlinked VOLUME copied %d host entries", len(ents))
	}

	if err := s.Remove("d"); err == nil || !strings.Contains(err.Error(), "used by c1, c2") {
		t.Fatalf("Remove of a used volume: %v", err)
	}
	if removed, err := s.Detach("d", "c1", true); err != nil || removed {
		t.Fatalf("Detach with a user left: removed=%v %v", removed, err)
	}
	if removed, err := s.Detach("d", "c2", false); err != nil || removed {
		t.Fatalf("Detach keep: removed=%v %v", removed, err)
	}
	// Unused now, and still only a user can remove it: a container that
	// never used it (a pve container's volume of that name) leaves it.
	if removed, err := s.Detach("d", "stranger", true); err != nil || removed {
		t.Fatalf("Detach by a non-user: removed=%v %v", removed, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Name != "d" || len(list[0].Users) != 0 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if err := s.Remove("d"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.DataDir("d")); !os.IsNotExist(err) {
		t.Fatalf("removed volume still there: %v", err)
	}
	if err := s.Remove("d"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Remove of a missing volume: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func statOwner(t *testing.T, p string) [2]uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return [2]uint32{st.Uid, st.Gid}
}
