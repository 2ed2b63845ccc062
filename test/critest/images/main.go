// Command images builds local look-alikes of the images Kubernetes' critest
// (sigs.k8s.io/cri-tools) pulls and serves them from an in-process registry
// (go-containerregistry's pkg/registry) on 127.0.0.1, for
// test/clients/critest.sh: containerd's hosts.toml sends registry.k8s.io,
// k8s.gcr.io and gcr.io there, and nowhere else (no internet needed).
//
//	images serve -addr 127.0.0.1:5214 -root DEBS -pause PAUSE -nnp NNP -ready FILE
//	images junit JUNIT.xml OUTDIR
//
// serve pushes every image to itself, prints one "pushed REPO:TAG DIGEST"
// line per tag, creates FILE, then serves until SIGTERM/SIGINT. DEBS is
// where Debian's busybox (the dynamic one: its ash execs /bin/ls as the
// busybox image's does, where busybox-static runs applets in-process and
// so defeats the MaskedPaths test), nginx and nginx-common are unpacked
// (bin/busybox, usr/sbin/nginx, etc/nginx/mime.types); PAUSE and NNP are
// the static binaries built from test/critest/src/*.c. Shared libraries
// come from the host at the paths ldd names. Every layer is built
// deterministically (mtime 0, uid/gid 0), so digests are stable across
// runs. The images are OCI (manifest, config, gzip layers).
//
// junit counts a ginkgo JUnit report: it prints "PASSED FAILED SKIPPED"
// and writes OUTDIR/results.tsv (STATUS TAB NAME per spec, STATUS one of
// passed, failed, skipped), OUTDIR/failed.txt (name, then the message
// indented) and OUTDIR/skipped.txt (name TAB reason).
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var epoch = time.Unix(0, 0).UTC()

// layer writes one deterministic tar: parents first, each path once.
type layer struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	seen map[string]bool
}

func newLayer() *layer {
	l := &layer{seen: map[string]bool{}}
	l.tw = tar.NewWriter(&l.buf)
	return l
}

func (l *layer) hdr(name string, typ byte, mode int64) *tar.Header {
	return &tar.Header{Name: strings.TrimPrefix(name, "/"), Typeflag: typ, Mode: mode,
		ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatGNU}
}

func (l *layer) write(h *tar.Header, data []byte) {
	if err := l.tw.WriteHeader(h); err != nil {
		log.Fatalf("tar %s: %v", h.Name, err)
	}
	if len(data) > 0 {
		if _, err := l.tw.Write(data); err != nil {
			log.Fatalf("tar %s: %v", h.Name, err)
		}
	}
}

func (l *layer) parents(name string) {
	dir := path.Dir("/" + strings.Trim(name, "/"))
	if dir != "/" {
		l.dir(dir, 0o755)
	}
}

func (l *layer) dir(name string, mode int64) {
	n := strings.Trim(name, "/")
	if l.seen[n] {
		return
	}
	l.parents(n)
	l.seen[n] = true
	l.write(l.hdr(n+"/", tar.TypeDir, mode), nil)
}

func (l *layer) file(name string, data []byte, mode int64) {
	n := strings.Trim(name, "/")
	l.parents(n)
	l.seen[n] = true
	h := l.hdr(n, tar.TypeReg, mode)
	h.Size = int64(len(data))
	l.write(h, data)
}

// host copies a host file into the layer (mode -1: the host file's mode).
func (l *layer) host(name, src string, mode int64) {
	data, err := os.ReadFile(src)
	if err != nil {
		log.Fatal(err)
	}
	if mode < 0 {
		st, err := os.Stat(src)
		if err != nil {
			log.Fatal(err)
		}
		mode = int64(st.Mode().Perm())
	}
	l.file(name, data, mode)
}

func (l *layer) hardlink(name, target string) {
	n := strings.Trim(name, "/")
	l.parents(n)
	l.seen[n] = true
	h := l.hdr(n, tar.TypeLink, 0o755)
	h.Linkname = strings.TrimPrefix(target, "/")
	l.write(h, nil)
}

// binaryWithLibs adds a host binary plus the shared libraries ldd lists, at
// ldd's paths (the library file itself, symlinks resolved).
func (l *layer) binaryWithLibs(name, src string) {
	l.host(name, src, 0o755)
	out, _ := exec.Command("ldd", src).Output() // "not a dynamic executable": none
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		var p string
		if _, after, ok := strings.Cut(line, "=>"); ok {
			p = strings.TrimSpace(strings.Split(after, "(")[0])
		} else if strings.HasPrefix(line, "/") {
			p = strings.TrimSpace(strings.Split(line, "(")[0])
		}
		if !strings.HasPrefix(p, "/") || l.seen[strings.Trim(p, "/")] {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			log.Fatal(err)
		}
		l.host(p, real, 0o755)
	}
}

func (l *layer) v1() v1.Layer {
	if err := l.tw.Close(); err != nil {
		log.Fatal(err)
	}
	data := l.buf.Bytes()
	ly, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		log.Fatal(err)
	}
	return ly
}

const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`

const nginxConf = `user www-data;
worker_processes 1;
pid /var/run/nginx.pid;
error_log stderr notice;
events { worker_connections 128; }
http {
    include /etc/nginx/mime.types;
    access_log /dev/stdout;
    server {
        listen %d;
        server_name localhost;
        location / { root /usr/share/nginx/html; index index.html; }
    }
}
`

// busyboxLayer: the busybox image's layout, every applet a hard link to
// /bin/busybox (a masked /bin/ls must not mask /bin/busybox), plus pgrep
// (critest's exec timeout spec) and ipcs (HostIpc) from the host.
func busyboxLayer(root string) v1.Layer {
	l := newLayer()
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "sys", "usr/bin", "usr/sbin",
		"usr/local/bin", "var/spool/mail", "var/www", "run"} {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	bb := filepath.Join(root, "bin/busybox")
	l.binaryWithLibs("/bin/busybox", bb)
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		log.Fatalf("%s --list: %v", bb, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	for i, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") || (i > 0 && applets[i-1] == a) {
			continue
		}
		l.hardlink("/bin/"+a, "/bin/busybox")
	}
	l.binaryWithLibs("/bin/pgrep", "/usr/bin/pgrep")
	l.binaryWithLibs("/bin/ipcs", "/usr/bin/ipcs")
	l.file("/etc/passwd", []byte(passwd), 0o644)
	l.file("/etc/group", []byte(group), 0o644)
	l.file("/etc/shadow", []byte("root:*:10933:0:99999:7:::\n"), 0o600)
	return l.v1()
}

func nginxLayer(root string, port int) v1.Layer {
	l := newLayer()
	l.binaryWithLibs("/usr/sbin/nginx", filepath.Join(root, "usr/sbin/nginx"))
	l.host("/etc/nginx/mime.types", filepath.Join(root, "etc/nginx/mime.types"), 0o644)
	l.file("/etc/nginx/nginx.conf", fmt.Appendf(nil, nginxConf, port), 0o644)
	l.file("/usr/share/nginx/html/index.html", []byte("<html><body><h1>Welcome to nginx!</h1></body></html>\n"), 0o644)
	for _, d := range []string{"var/log/nginx", "var/lib/nginx", "var/run", "var/lock"} {
		l.dir(d, 0o755)
	}
	return l.v1()
}

func oneFile(p string) v1.Layer {
	l := newLayer()
	l.file(p, nil, 0o644)
	return l.v1()
}

// image: an OCI image of layers with cfg over PATH; label, when set, makes
// an otherwise identical image a distinct one.
func image(layers []v1.Layer, cfg v1.Config, label string) v1.Image {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, ly := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: ly, MediaType: types.OCILayer,
			History: v1.History{Created: created, CreatedBy: "proxcage test/critest/images"}})
		if err != nil {
			log.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", created
	cfg.Env = append([]string{pathEnv}, cfg.Env...)
	if label != "" {
		cfg.Labels = map[string]string{"critest.local/image": label}
	}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		log.Fatal(err)
	}
	return img
}

type tagged struct {
	repo, tag string
	img       v1.Image
}

func build(root, pause, nnp string) []tagged {
	bb := busyboxLayer(root)
	pl := newLayer()
	pl.host("/pause", pause, 0o755)
	pauseL := pl.v1()
	const e2e = "e2e-test-images/"       // registry.k8s.io/e2e-test-images/...
	const cri = "k8s-staging-cri-tools/" // gcr.io/k8s-staging-cri-tools/...
	sh := v1.Config{Cmd: []string{"sh"}}
	var out []tagged
	add := func(repo string, img v1.Image, tags ...string) {
		for _, t := range tags {
			out = append(out, tagged{repo, t, img})
		}
	}
	// containerd's sandbox_image; a distinct ID from pause:3.9, which the image specs delete
	add("pause", image([]v1.Layer{pauseL}, v1.Config{Entrypoint: []string{"/pause"}}, "sandbox"), "3.6")
	add("pause", image([]v1.Layer{pauseL}, v1.Config{Entrypoint: []string{"/pause"}}, ""), "3.9")
	add(e2e+"busybox", image([]v1.Layer{bb}, sh, ""), "1.29-2")
	nl := newLayer()
	nl.host("/usr/local/bin/nnp", nnp, 0o4755)
	add(e2e+"nonewprivs", image([]v1.Layer{bb, nl.v1()}, v1.Config{Entrypoint: []string{"/usr/local/bin/nnp"}}, ""), "1.3")
	nginxCmd := []string{"nginx", "-g", "daemon off;"}
	add(e2e+"nginx", image([]v1.Layer{bb, nginxLayer(root, 80)},
		v1.Config{Cmd: nginxCmd, ExposedPorts: map[string]struct{}{"80/tcp": {}}}, ""), "1.14-2")
	add(cri+"hostnet-nginx-amd64", image([]v1.Layer{bb, nginxLayer(root, 12003)},
		v1.Config{Cmd: nginxCmd, ExposedPorts: map[string]struct{}{"12003/tcp": {}}}, ""), "latest")
	// httpd:2.4.39-4 look-alike: busybox httpd on :80; its first log line names "httpd" as Apache's does
	hl := newLayer()
	hl.file("/usr/local/apache2/htdocs/index.html", []byte("<html><body><h1>It works!</h1></body></html>\n"), 0o644)
	hl.file("/usr/local/bin/httpd-foreground", []byte("#!/bin/sh\n"+
		"echo 'httpd: busybox httpd standing in for httpd:2.4.39-4, listening on :80'\n"+
		"exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs\n"), 0o755)
	add(e2e+"httpd", image([]v1.Layer{bb, hl.v1()},
		v1.Config{Cmd: []string{"httpd-foreground"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}}, ""), "2.4.39-4")
	// images/image-test: FROM busybox, ADD $TEST $TEST
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test-image-digest"} {
		add(cri+n, image([]v1.Layer{bb, oneFile("/" + n)}, sh, ""), "latest")
	}
	add(cri+"test-image-tag", image([]v1.Layer{bb, oneFile("/test-image-tag")}, sh, ""), "test", "all")
	add(cri+"test-image-tags", image([]v1.Layer{bb, oneFile("/same-image")}, sh, ""), "1", "2", "3")
	// images/image-user: FROM busybox, USER $USER
	for _, u := range [][2]string{{"test-image-user-uid", "1002"}, {"test-image-user-username", "www-data"},
		{"test-image-user-uid-group", "1003:1004"}, {"test-image-user-username-group", "www-data:1004"}} {
		add(cri+u[0], image([]v1.Layer{bb}, v1.Config{Cmd: []string{"sh"}, User: u[1]}, ""), "latest")
	}
	// images/image-predefined-group: adduser -u 1000 default-user, addgroup -g 50000 group-defined-in-image
	gl := newLayer()
	gl.file("/etc/passwd", []byte(passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"), 0o644)
	gl.file("/etc/group", []byte(group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"), 0o644)
	gl.file("/etc/shadow", []byte("root:*:10933:0:99999:7:::\ndefault-user:!:20000:0:99999:7:::\n"), 0o600)
	gl.dir("/home/default-user", 0o755)
	add(cri+"test-image-predefined-group", image([]v1.Layer{bb, gl.v1()}, v1.Config{Cmd: []string{"sh"}, User: "1000"}, ""), "latest")
	return out
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5214", "listen address (127.0.0.1 only)")
	root := fs.String("root", "", "unpacked Debian busybox, nginx, nginx-common")
	pause := fs.String("pause", "", "static pause binary")
	nnp := fs.String("nnp", "", "static nnp binary")
	ready := fs.String("ready", "", "file created once every image is pushed")
	_ = fs.Parse(args)
	if *root == "" || *pause == "" || *nnp == "" {
		log.Fatal("serve: -root, -pause and -nnp are required")
	}
	imgs := build(*root, *pause, *nnp)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	host := ln.Addr().String()
	for _, t := range imgs {
		ref, err := name.ParseReference(host+"/"+t.repo+":"+t.tag, name.Insecure)
		if err != nil {
			log.Fatal(err)
		}
		if err := remote.Write(ref, t.img); err != nil {
			log.Fatalf("push %s: %v", ref, err)
		}
		d, err := t.img.Digest()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("pushed %s:%s %s\n", t.repo, t.tag, d)
	}
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte(host+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = srv.Close()
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("critest images: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: images serve FLAGS | images junit JUNIT.xml OUTDIR")
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "junit":
		if len(os.Args) != 4 {
			log.Fatal("usage: images junit JUNIT.xml OUTDIR")
		}
		junit(os.Args[2], os.Args[3])
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}
