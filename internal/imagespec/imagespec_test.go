package imagespec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/proxcage/proxcage/test/golden"
)

// rootfsWith makes a rootfs holding the given /etc files.
func rootfsWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const passwd = "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n"
const group = "root:x:0:\nnginx:x:101:\napp:x:1000:\nvideo:x:44:app\naudio:x:29:app,nginx\n"

func TestGenerateGolden(t *testing.T) {
	nginx := &v1.ConfigFile{Config: v1.Config{
		Entrypoint: []string{"/docker-entrypoint.sh"},
		Cmd:        []string{"nginx", "-g", "daemon off;"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.27.3"},
		WorkingDir: "",
		User:       "",
		StopSignal: "SIGQUIT",
		Labels:     map[string]string{"maintainer": "NGINX Docker Maintainers"},
	}}
	hostile := &v1.ConfigFile{Config: v1.Config{
		Cmd: []string{"/bin/sh"},
		Labels: map[string]string{
			"org.proxcage.backend": "pve", "org.proxcage.vmid": "777", "org.proxcage.privileged": "true",
			"org.proxcage.image.digest": "sha256:spoofed", "tier": "image", "maintainer": "someone",
		},
	}}
	app := &v1.ConfigFile{Config: v1.Config{
		Cmd: []string{"/app/run"}, Env: []string{"MODE=prod"}, WorkingDir: "/app", User: "app",
	}}
	cases := []struct {
		name string
		img  *v1.ConfigFile
		o    Overrides
	}{
		{"nginx-defaults", nginx, Overrides{Hostname: "web"}},
		{"nginx-command-override", nginx, Overrides{Args: []string{"nginx", "-t"}, Env: []string{"NGINX_VERSION=test", "EXTRA=1"}, Tty: true}},
		{"app-user-by-name", app, Overrides{}},
		{"app-user-override-numeric", app, Overrides{User: "101:29", Workdir: "/tmp"}},
		{"app-user-name-group", app, Overrides{User: "nginx:audio"}},
		{"app-entrypoint-override", app, Overrides{Entrypoint: []string{"/bin/sh", "-c"}, Args: []string{"echo hi"}}},
		{"hostile-labels-operator-annotations", hostile, Overrides{Annotations: map[string]string{"org.proxcage.net": "none", "tier": "ct"}}},
	}
	root := rootfsWith(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Generate(Image{Name: "example.com/" + c.name + ":1", Digest: "sha256:0123", Config: c.img}, root, c.o)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(s, "", "  ")
			golden.Check(t, filepath.Join("testdata", c.name+".json"), string(got)+"\n", "spec")
		})
	}
}

func TestGenerateUserAndErrors(t *testing.T) {
	root := rootfsWith(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"true"}}}
	s, err := Generate(Image{Config: cfg}, root, Overrides{User: "app"})
	if err != nil || s.Process.User.UID != 1000 || s.Process.User.GID != 1000 || len(s.Process.User.AdditionalGids) != 2 {
		t.Fatalf("user app: %+v %v", s.Process.User, err)
	}
	if _, err := Generate(Image{Config: cfg}, root, Overrides{User: "nobody-here"}); err == nil || !strings.Contains(err.Error(), "nobody-here") {
		t.Fatalf("unknown user name: %v", err)
	}
	if _, err := Generate(Image{Config: &v1.ConfigFile{}}, root, Overrides{}); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Fatalf("no command: %v", err)
	}
	if _, err := Generate(Image{Config: cfg}, root, Overrides{Workdir: "rel/dir"}); err == nil {
		t.Fatal("relative workdir accepted")
	}
	if _, err := Generate(Image{Config: cfg}, root, Overrides{Env: []string{"NOEQUALS"}}); err == nil {
		t.Fatal("env without = accepted")
	}
	// No passwd at all: numeric users still work, names do not.
	bare := t.TempDir()
	if s, err := Generate(Image{Config: cfg}, bare, Overrides{User: "5:6"}); err != nil || s.Process.User.UID != 5 || s.Process.User.GID != 6 {
		t.Fatalf("numeric user without passwd: %+v %v", s.Process.User, err)
	}
	if s.Process.Env[0] != DefaultPath {
		t.Fatalf("PATH not defaulted: %v", s.Process.Env)
	}
}

// A hostile image's /etc/passwd that is a symlink to the host's file is
// read inside the rootfs, never from the host.
func TestGenerateUserFilesResolvedInsideRootfs(t *testing.T) {
	host := t.TempDir()
	hostPasswd := filepath.Join(host, "passwd")
	os.WriteFile(hostPasswd, []byte("hostonly:x:4242:4242::/:/bin/sh\n"), 0o644)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := os.Symlink(hostPasswd, filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"true"}, User: "hostonly"}}
	if s, err := Generate(Image{Config: cfg}, root, Overrides{}); err == nil {
		t.Fatalf("resolved a user from the host's passwd through a symlink: %+v", s.Process.User)
	}
}

// An image's labels never set the keys proxcage acts on (where the
// container runs, its VMID, its rights): only the operator's annotations
// do. Before, a label org.proxcage.vmid=777 gave CT 777.
func TestImageLabelsCannotSetOperatorKeys(t *testing.T) {
	img := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"/bin/true"}, Labels: map[string]string{
		"org.proxcage.backend": "pve", "org.proxcage.vmid": "777", "org.proxcage.features": "keyctl=1",
		"org.proxcage.image.digest": "sha256:spoofed", "org.example.build": "42",
	}}}
	s, err := Generate(Image{Digest: "sha256:real", Config: img}, t.TempDir(), Overrides{
		Annotations: map[string]string{"org.proxcage.vmid": "1234", "org.proxcage.image.digest": "sha256:operator"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.example.build":         "42",          // other labels stay
		"org.proxcage.vmid":         "1234",        // the operator's
		"org.proxcage.image.digest": "sha256:real", // the store's, whoever claims it
	}
	for k, v := range want {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	for _, k := range []string{"org.proxcage.backend", "org.proxcage.features"} {
		if v, ok := s.Annotations[k]; ok {
			t.Errorf("image label %s=%q became an annotation", k, v)
		}
	}
	if got := strings.Join(IgnoredLabels(img), " "); got != "org.proxcage.backend org.proxcage.features org.proxcage.image.digest org.proxcage.vmid" {
		t.Errorf("IgnoredLabels = %q", got)
	}
}

// A config merged with the overrides (what a derived image config carries
// to PVE) runs, with no overrides, the process the overrides give: the
// two routes cannot disagree.
func TestMergeIsWhatGenerateRuns(t *testing.T) {
	root := rootfsWith(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	app := &v1.ConfigFile{Config: v1.Config{
		Entrypoint: []string{"/entry"}, Cmd: []string{"/app/run"}, Env: []string{"MODE=prod", "KEEP=1"}, WorkingDir: "/app", User: "app", StopSignal: "SIGQUIT",
	}}
	for _, o := range []Overrides{
		{},
		{Args: []string{"sh", "-c", "echo $MODE"}, Env: []string{"MODE=test", "NEW=2"}, Workdir: "/tmp/../srv", User: "nginx:audio"},
		{Entrypoint: []string{"/bin/sh"}, Tty: true, User: "101"},
	} {
		want, err := Generate(Image{Config: app}, root, o)
		if err != nil {
			t.Fatal(err)
		}
		merged, err := Merge(&app.Config, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Generate(Image{Config: &v1.ConfigFile{Config: merged}}, root, Overrides{Tty: o.Tty})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(want.Process)
		b, _ := json.Marshal(got.Process)
		if string(a) != string(b) {
			t.Errorf("overrides %+v:\n generate %s\n merged   %s", o, a, b)
		}
		if merged.StopSignal != "SIGQUIT" {
			t.Errorf("StopSignal lost: %+v", merged)
		}
	}
	// -e merges by key over the image's Env.
	merged, _ := Merge(&app.Config, Overrides{Env: []string{"MODE=test"}})
	if strings.Join(merged.Env, " ") != DefaultPath+" MODE=test KEEP=1" {
		t.Errorf("merged env %q", merged.Env)
	}
}
