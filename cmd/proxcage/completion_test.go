package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/store"
	"github.com/proxcage/proxcage/test/testimages"
)

// complete runs cobra's `__complete ARGS...`, what the shell scripts call
// on TAB, against e's state root and config. It returns the candidates
// (without their descriptions) and the directive line.
func (e *env) complete(args ...string) ([]string, string) {
	e.t.Helper()
	r := runRaw(append([]string{"__complete", "--root", e.root, "--config", e.config}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("__complete %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	var out []string
	for _, l := range lines[:len(lines)-1] {
		c, _, _ := strings.Cut(l, "\t")
		out = append(out, c)
	}
	return out, lines[len(lines)-1]
}

// record puts a container record in e's state root, as create would.
func (e *env) record(id, backend string) {
	e.t.Helper()
	st, err := store.Open(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	h, err := st.Reserve(&store.Record{ID: id, Backend: backend, Bundle: "/nonexistent", Created: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	h.Unlock()
}

const noFileDirective = ":4" // cobra.ShellCompDirectiveNoFileComp

func TestCompleteContainerIDs(t *testing.T) {
	e := newEnv(t)
	e.record("web", "native")
	e.record("db", "pve")
	for _, c := range []string{"start", "state", "kill", "delete", "exec", "ps", "pause", "resume", "update", "upgrade"} {
		got, dir := e.complete(c, "")
		if !slices.Equal(got, []string{"db", "web"}) || dir != noFileDirective {
			t.Errorf("%s <TAB>: %q %s, want [db web] (as list -q) %s", c, got, dir, noFileDirective)
		}
		if got, _ := e.complete(c, "w"); !slices.Equal(got, []string{"web"}) {
			t.Errorf("%s w<TAB>: %q, want [web]", c, got)
		}
	}
	// After the id: nothing (kill's signal aside), and no files.
	for _, args := range [][]string{{"state", "web", ""}, {"exec", "web", ""}, {"delete", "--force", "web", ""}} {
		if got, dir := e.complete(args...); len(got) != 0 || dir != noFileDirective {
			t.Errorf("%q: %q %s, want nothing", args, got, dir)
		}
	}
	// upgrade takes several: one already given is not offered again.
	if got, dir := e.complete("upgrade", "--check", "web", ""); !slices.Equal(got, []string{"db"}) || dir != noFileDirective {
		t.Errorf("upgrade --check web <TAB>: %q %s, want [db]", got, dir)
	}
	// A new id (create, run, route) is the user's to choose.
	for _, c := range []string{"create", "run", "route"} {
		if got, dir := e.complete(c, ""); len(got) != 0 || dir != noFileDirective {
			t.Errorf("%s <TAB>: %q %s, want nothing", c, got, dir)
		}
	}
	if out := e.run("list", "-q"); out.stdout != "db\nweb\n" {
		t.Errorf("list -q = %q", out.stdout)
	}
}

// TestCompleteDoesNotCreate: a TAB with a state root that does not exist
// offers nothing and creates nothing.
func TestCompleteDoesNotCreate(t *testing.T) {
	e := newEnv(t)
	if got, _ := e.complete("start", ""); len(got) != 0 {
		t.Errorf("start <TAB> on an empty root: %q", got)
	}
	if _, err := os.Stat(e.root); !os.IsNotExist(err) {
		t.Errorf("completion created the state root %s (%v)", e.root, err)
	}
}

func TestCompleteSignals(t *testing.T) {
	e := newEnv(t)
	e.record("web", "native")
	got, dir := e.complete("kill", "web", "")
	for _, s := range []string{"HUP", "INT", "KILL", "TERM", "USR1", "WINCH"} {
		if !slices.Contains(got, s) {
			t.Errorf("kill web <TAB>: no %s in %q", s, got)
		}
	}
	if slices.Contains(got, "web") || dir != noFileDirective {
		t.Errorf("kill web <TAB>: %q %s", got, dir)
	}
	for prefix, want := range map[string][]string{"KI": {"KILL"}, "SIGK": {"SIGKILL"}, "te": {"term"}} {
		if got, _ := e.complete("kill", "web", prefix); !slices.Equal(got, want) {
			t.Errorf("kill web %s<TAB>: %q, want %q", prefix, got, want)
		}
	}
	// Each offered name is one `kill` takes.
	for _, s := range got {
		if _, err := ParseSignal(s); err != nil {
			t.Errorf("offered %s, which kill refuses: %v", s, err)
		}
	}
}

func TestCompleteImages(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	e.writeConfig(fmt.Sprintf("data_dir = %q\n", data))
	if got, _ := e.complete("rmi", ""); len(got) != 0 {
		t.Errorf("rmi <TAB> without images: %q", got)
	}
	if _, err := os.Stat(filepath.Join(data, "images")); !os.IsNotExist(err) {
		t.Errorf("completion created the image store (%v)", err)
	}

	layer, err := testimages.Layer([]testimages.Entry{{Name: "hello", Data: []byte("hi\n")}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for i, tag := range []string{"v1", "v2"} {
		img, err := testimages.Image(v1.Config{Cmd: []string{"/hello", tag}}, layer)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
		if r := e.run("pull", "-q", "oci:"+dir+":"+tag); r.code != 0 {
			t.Fatalf("pull %d: %+v", i, r)
		}
	}
	r := e.run("images", "--format", "json")
	var listed []struct{ Names []string }
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatalf("images --format json: %v (%q)", err, r.stdout)
	}
	var names []string
	for _, l := range listed {
		names = append(names, l.Names...)
	}
	if len(names) != 2 {
		t.Fatalf("images lists %q, want two names", names)
	}
	for _, args := range [][]string{{"rmi", ""}, {"create", "--image", ""}, {"run", "--image", ""}, {"run", "--image", "oci:"}} {
		if got, dir := e.complete(args...); !slices.Equal(got, names) || dir != noFileDirective {
			t.Errorf("%q: %q %s, want %q (as images lists them)", args, got, dir, names)
		}
	}
	// rmi takes several: one already given is not offered again.
	if got, _ := e.complete("rmi", names[0], ""); !slices.Equal(got, names[1:]) {
		t.Errorf("rmi %s <TAB>: %q, want %q", names[0], got, names[1:])
	}
}

func TestCompleteFlagValues(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"list", "--format", ""}, []string{"table", "json"}},
		{[]string{"ps", "--format", ""}, []string{"table", "json"}},
		{[]string{"images", "--format", ""}, []string{"table", "json"}},
		{[]string{"upgrade", "--format", ""}, []string{"table", "json"}},
		{[]string{"--log-format", ""}, []string{"text", "json"}},
		{[]string{"--rootless", ""}, []string{"true", "false", "auto"}},
	} {
		if got, _ := e.complete(tt.args...); !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestCompleteAnnotation: an --annotation flag completes the keys
// proxcage reads, then backend names for org.proxcage.backend.
func TestCompleteAnnotation(t *testing.T) {
	root := &cobra.Command{Use: "proxcage"}
	create := &cobra.Command{Use: "create", Run: func(*cobra.Command, []string) {}}
	create.Flags().StringArray("annotation", nil, "KEY=VALUE")
	root.AddCommand(create)
	registerAnnotationCompletion(root)
	complete := func(value string) []string {
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"__complete", "create", "--annotation", value})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		var got []string
		for _, l := range lines[:len(lines)-1] {
			c, _, _ := strings.Cut(l, "\t")
			got = append(got, c)
		}
		return got
	}
	if got := complete("org.proxcage.backend="); !slices.Equal(got, []string{"org.proxcage.backend=native", "org.proxcage.backend=pve", "org.proxcage.backend=lxc"}) {
		t.Errorf("org.proxcage.backend=<TAB>: %q", got)
	}
	if got := complete("org.proxcage.backend=p"); !slices.Equal(got, []string{"org.proxcage.backend=pve"}) {
		t.Errorf("org.proxcage.backend=p<TAB>: %q", got)
	}
	got := complete("org.proxcage.")
	for _, k := range []string{"org.proxcage.backend=", "org.proxcage.vmid=", "org.proxcage.net0="} {
		if !slices.Contains(got, k) {
			t.Errorf("org.proxcage.<TAB>: no %s in %q", k, got)
		}
	}
	if slices.Contains(got, "org.proxcage.pve.vmid=") {
		t.Errorf("org.proxcage.<TAB> offers a key proxcage sets, not reads: %q", got)
	}
}
