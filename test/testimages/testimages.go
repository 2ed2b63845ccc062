// Package testimages builds the OCI images proxcage's image tests use and
// serves them from an in-process registry (go-containerregistry's
// pkg/registry) on 127.0.0.1, offline:
//
//   - test/busybox:1   two layers over the host's static busybox: passwd
//     and group, a whiteout, an opaque directory, a write through the
//     absolute symlink var/run -> /run (in its own layer), a hardlink,
//     setuid and owned files;
//   - test/hostile:1   a layer whose entry "../escape" leaves the rootfs;
//
// These are Docker v2 images (manifest, config and layers in Docker media
// types), as Docker Hub serves most; OCI makes the same image in OCI
// media types (test/busybox-oci:1 in the pve tests).
//   - test/debian:1    (only with a rootfs dir) a Debian rootfs split into
//     three layers, for benchmarks.
//
// `go run ./test/testimages/cmd/testregistry` serves them by hand.
package testimages

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one tar entry of a test layer.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink
	Mode     int64
	UID, GID int
	Link     string
	Data     []byte
}

// epoch is every entry's mtime: the images are reproducible.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Layer makes an uncompressed-tar layer (served gzip-compressed).
func Layer(entries []Entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			Linkname: e.Link, ModTime: epoch, Format: tar.FormatPAX}
		switch h.Typeflag {
		case 0:
			h.Typeflag = tar.TypeReg
			fallthrough
		case tar.TypeReg:
			h.Size = int64(len(e.Data))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		case tar.TypeDir:
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case tar.TypeSymlink, tar.TypeLink:
			if h.Mode == 0 {
				h.Mode = 0o777
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// Image stacks layers under a config.
func Image(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	return mutate.ConfigFile(img, cf)
}

// BusyboxApplets get a symlink to /bin/busybox in test/busybox.
var BusyboxApplets = []string{"sh", "echo", "cat", "ls", "id", "sleep", "true", "false", "hostname", "env", "pwd", "test", "find", "stat", "readlink"}

// Busybox is test/busybox:1 (see the package doc); busybox is the path of
// a static busybox binary.
func Busybox(busybox string) (v1.Image, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read %s (apt-get install busybox-static): %w", busybox, err)
	}
	l1 := []Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Mode: 0o755, Data: bin},
		{Name: "bin/busybox-hardlink", Type: tar.TypeLink, Link: "bin/busybox"},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")},
		{Name: "etc/group", Data: []byte("root:x:0:\napp:x:1000:\nvideo:x:44:app\n")},
		{Name: "etc/motd", Data: []byte("from layer 1\n")},
		{Name: "run/", Type: tar.TypeDir},
		{Name: "var/", Type: tar.TypeDir},
		{Name: "var/run", Type: tar.TypeSymlink, Link: "/run"},
		// Written through the absolute symlink above, in the same layer:
		// it lands in run/, for every unpacker. (Through a symlink of a
		// lower layer, stores differ: containerd and umoci follow it, as
		// proxcage does; containers/storage, extracting each layer on its
		// own, makes var/run a directory.)
		{Name: "var/run/through-symlink", Data: []byte("written through var/run -> /run\n")},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "proc/", Type: tar.TypeDir},
		{Name: "sys/", Type: tar.TypeDir},
		{Name: "dev/", Type: tar.TypeDir},
		{Name: "root/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/share/", Type: tar.TypeDir},
		{Name: "usr/share/doc/", Type: tar.TypeDir},
		{Name: "usr/share/doc/gone.txt", Data: []byte("whited out by layer 2\n")},
		{Name: "usr/share/doc/kept.txt", Data: []byte("kept\n")},
		{Name: "opt/", Type: tar.TypeDir},
		{Name: "opt/old/", Type: tar.TypeDir},
		{Name: "opt/old/a.txt", Data: []byte("hidden by the opaque dir of layer 2\n")},
	}
	for _, a := range BusyboxApplets {
		l1 = append(l1, Entry{Name: "bin/" + a, Type: tar.TypeSymlink, Link: "busybox"})
	}
	// busybox's init, so the image can also run as a system container.
	l1 = append(l1, Entry{Name: "sbin/", Type: tar.TypeDir}, Entry{Name: "sbin/init", Type: tar.TypeSymlink, Link: "/bin/busybox"})
	l2 := []Entry{
		{Name: "etc/motd", Data: []byte("from layer 2\n")},
		{Name: "usr/share/doc/.wh.gone.txt"},
		{Name: "opt/old/", Type: tar.TypeDir},
		{Name: "opt/old/.wh..wh..opq"},
		{Name: "opt/old/b.txt", Data: []byte("layer 2\n")},
		{Name: "home/", Type: tar.TypeDir},
		{Name: "home/app/", Type: tar.TypeDir, UID: 1000, GID: 1000},
		{Name: "home/app/.profile", Data: []byte("export APP=1\n"), UID: 1000, GID: 1000, Mode: 0o600},
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/setuid-tool", Data: []byte("#!/bin/sh\nid -u\n"), Mode: 0o4755},
	}
	var layers []v1.Layer
	for _, es := range [][]Entry{l1, l2} {
		l, err := Layer(es)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return Image(v1.Config{
		Cmd:        []string{"/bin/sh", "-c", "echo hello-from-image; cat /etc/motd"},
		Env:        []string{"PATH=/bin", "GREETING=hello"},
		WorkingDir: "/app",
		Labels:     map[string]string{"org.example.test": "yes"},
		StopSignal: "SIGQUIT",
	}, layers...)
}

// WithLabels is img with labels added to its config (test/labelled:1 is
// test/busybox:1 with labels under org.proxcage., which must never act).
func WithLabels(img v1.Image, labels map[string]string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range labels {
		cf.Config.Labels[k] = v
	}
	return mutate.ConfigFile(img, cf)
}

// OCI is img in OCI media types: the same config and layer contents
// (diff ids), an OCI manifest, config and tar+gzip layers.
func OCI(img v1.Image) (v1.Image, error) {
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		ol, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		if out, err = mutate.AppendLayers(out, ol); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return mutate.ConfigFile(out, cf)
}

// Hostile is test/hostile:1: its second entry leaves the rootfs.
func Hostile() (v1.Image, error) {
	l, err := Layer([]Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "../escape", Data: []byte("must never be written\n")},
	})
	if err != nil {
		return nil, err
	}
	return Image(v1.Config{Cmd: []string{"/bin/true"}}, l)
}

// FromRootfs splits a rootfs directory into three layers (usr/; etc/ and
// var/; the rest), for a realistic multi-layer image.
func FromRootfs(dir string) (v1.Image, error) {
	groups := make([][]string, 3)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		i := 2
		switch top, _, _ := strings.Cut(rel, "/"); top {
		case "usr":
			i = 0
		case "etc", "var":
			i = 1
		}
		groups[i] = append(groups[i], rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var layers []v1.Layer
	for _, g := range groups {
		sort.Strings(g)
		paths := g
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeTree(pw, dir, paths)) }()
			return pr, nil
		})
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return Image(v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}, layers...)
}

func writeTree(w io.Writer, dir string, paths []string) error {
	tw := tar.NewWriter(w)
	for _, rel := range paths {
		p := filepath.Join(dir, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			continue // sockets and the like
		}
		h.Name, h.Uname, h.Gname, h.Format = rel, "", "", tar.FormatPAX
		// Reading the files moves their atimes: leave times that change
		// out, so every read of the layer gives the same bytes.
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// Registry is a served registry.
type Registry struct {
	Host string // 127.0.0.1:PORT
	srv  *http.Server
}

// Serve starts a registry on 127.0.0.1 (port 0: any) wrapped by wrap (nil:
// none; tests wrap it for auth or faults) and pushes images into it,
// repository:tag -> image. The push goes to the bare registry: the wrapper
// is put in front only afterwards, so auth or faults do not hit the setup.
func Serve(port int, wrap func(http.Handler) http.Handler, images map[string]v1.Image) (*Registry, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	bare := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var current atomic.Pointer[http.Handler]
	current.Store(&bare)
	r := &Registry{Host: ln.Addr().String(), srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		(*current.Load()).ServeHTTP(w, req)
	})}}
	go func() { _ = r.srv.Serve(ln) }() // ErrServerClosed at Close
	for ref, img := range images {
		tag, err := name.NewTag(r.Host + "/" + ref)
		if err != nil {
			r.Close()
			return nil, err
		}
		if err := remote.Write(tag, img); err != nil {
			r.Close()
			return nil, fmt.Errorf("push %s: %w", ref, err)
		}
	}
	if wrap != nil {
		wrapped := wrap(bare)
		current.Store(&wrapped)
	}
	return r, nil
}

// Push tags img as ref (repository:tag) in the running registry, as a
// publisher pushing a new version of a tag: what was there before stays
// reachable by digest. It goes through the wrapper Serve was given.
func (r *Registry) Push(ref string, img v1.Image) error {
	tag, err := name.NewTag(r.Host + "/" + ref)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// App is base (test/busybox:1) as version VERSION of an application:
// a layer with /opt/app/version (VERSION) and /srv/data/seed, a VOLUME
// at /srv/data, APP_VERSION in Env, and a command that runs until
// stopped. Two versions differ in those files and the digest only, the
// pair an upgrade goes between.
func App(base v1.Image, version string) (v1.Image, error) {
	l, err := Layer([]Entry{
		{Name: "opt/app/", Type: tar.TypeDir},
		{Name: "opt/app/version", Data: []byte(version + "\n")},
		{Name: "srv/", Type: tar.TypeDir},
		{Name: "srv/data/", Type: tar.TypeDir, UID: 1000, GID: 1000, Mode: 0o750},
		{Name: "srv/data/seed", Data: []byte("seeded by " + version + "\n"), UID: 1000, GID: 1000},
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config.Volumes = map[string]struct{}{"/srv/data": {}}
	cf.Config.Env = append(cf.Config.Env, "APP_VERSION="+version)
	cf.Config.Cmd = []string{"/bin/sh", "-c", "cat /opt/app/version; exec sleep 100000"}
	return mutate.ConfigFile(img, cf)
}
