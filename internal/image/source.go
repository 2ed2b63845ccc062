package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// refSyntax is quoted by every reference error.
const refSyntax = "[docker://]NAME[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]"

const authHint = "log in (podman login / docker login) or pass --creds USER:PASSWORD"

// maxManifest bounds what is read into memory for a manifest or config.
const maxManifest = 8 << 20

// srcRef is a parsed image reference.
type srcRef struct {
	transport string         // docker, oci, oci-archive, docker-archive
	name      string         // normalised, as recorded in the store
	ref       name.Reference // docker
	path      string         // absolute; file transports
	tag       string         // oci TAG, docker-archive REF
}

func (r *srcRef) digest() (v1.Hash, bool) {
	d, ok := r.ref.(name.Digest)
	if !ok {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(d.DigestStr())
	return h, err == nil
}

// unsupportedTransports are skopeo's other transports: named so that their
// references fail clearly instead of parsing as odd registry names.
var unsupportedTransports = []string{"containers-storage", "dir", "docker-daemon", "ostree", "sif", "tarball", "atomic"}

// CheckReference reports whether ref is a reference proxcage can pull
// (its syntax only: nothing is fetched).
func CheckReference(ref string) error {
	_, err := parseRef(ref)
	return err
}

// parseRef parses and normalises ref.
func parseRef(ref string) (*srcRef, error) {
	bad := func(format string, args ...any) error {
		return &errdefs.Error{Cat: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf(format, args...),
			Hint: "use " + refSyntax}
	}
	for _, t := range []string{"oci", "oci-archive", "docker-archive"} {
		rest, ok := strings.CutPrefix(ref, t+":")
		if !ok {
			continue
		}
		// Like skopeo, the path ends at the first colon.
		p, tag, _ := strings.Cut(rest, ":")
		if p == "" {
			return nil, bad("image reference %q has no path", ref)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, bad("image reference %q: %v", ref, err)
		}
		n := t + ":" + abs
		if tag != "" {
			n += ":" + tag
		}
		r := &srcRef{transport: t, name: n, path: abs, tag: tag}
		if t == "docker-archive" && tag != "" {
			if _, err := name.NewTag(tag); err != nil {
				return nil, bad("image reference %q: bad REF %q", ref, tag)
			}
		}
		return r, nil
	}
	if !strings.HasPrefix(ref, "docker://") {
		if err := localPath(ref); err != nil {
			return nil, err
		}
	}
	rest := strings.TrimPrefix(ref, "docker://")
	if t, _, ok := strings.Cut(rest, "://"); ok {
		return nil, bad("unsupported transport %q in %q", t, ref)
	}
	for _, t := range unsupportedTransports {
		if strings.HasPrefix(rest, t+":") {
			return nil, bad("unsupported transport %q in %q", t, ref)
		}
	}
	r, err := name.ParseReference(rest)
	if err != nil {
		return nil, bad("invalid image reference %q", ref)
	}
	return &srcRef{transport: "docker", name: registryName(r), ref: r}, nil
}

// localPath refuses a reference without a transport that names a local
// path: one that starts with /, ./ or ../, or a file or directory here that
// holds an image. It would otherwise become a registry name
// (docker.io//tmp/x:latest) and fail with a DNS error. The hint names the
// prefix for what is there; docker:// forces a registry name.
func localPath(ref string) error {
	path := ref
	if _, err := os.Stat(path); err != nil {
		// A TAG after the path, as oci:DIR:TAG takes it.
		if p, _, ok := strings.Cut(ref, ":"); ok {
			path = p
		}
	}
	explicit := path == "." || path == ".." || strings.HasPrefix(path, "/") || strings.HasPrefix(path, "./") || strings.HasPrefix(path, "../")
	transport, what := localKind(path)
	if !explicit && transport == "" {
		return nil
	}
	e := &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
		Msg: fmt.Sprintf("image reference %q is a local path (%s), and has no transport prefix", ref, what)}
	switch transport {
	case "oci", "oci-archive", "docker-archive":
		e.Hint = fmt.Sprintf("write %s:%s", transport, ref)
		if !explicit {
			e.Hint += " (or docker://" + ref + " for a registry image of that name)"
		}
	default:
		e.Hint = "an image on disk is read with oci:DIR (an OCI layout directory), oci-archive:FILE (its tar) or docker-archive:FILE (`docker save` output)"
	}
	return e
}

// localKind says which transport reads what is at path ("" for none, or
// nothing there), and what it is, by looking inside: an OCI layout has
// index.json (or oci-layout), `docker save` output has manifest.json.
func localKind(path string) (transport, what string) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "it does not exist"
	case err != nil:
		return "", flat(err).Error()
	case fi.IsDir():
		has := func(n string) bool { _, err := os.Stat(filepath.Join(path, n)); return err == nil }
		switch {
		case has("index.json") || has("oci-layout"):
			return "oci", "an OCI image layout directory"
		case has("manifest.json"):
			return "", "an unpacked `docker save` directory: tar it (tar -C DIR -cf img.tar .) and use docker-archive:img.tar"
		case has("config.json") && has("rootfs"):
			return "", "an OCI bundle: run it with --bundle, not --image"
		}
		return "", "a directory with no image layout (no index.json)"
	}
	names, err := tarNames(path)
	if err != nil {
		return "", err.Error()
	}
	switch {
	case names["index.json"] || names["oci-layout"]:
		return "oci-archive", "an OCI archive (a tar with index.json)"
	case names["manifest.json"]:
		return "docker-archive", "a docker archive (`docker save` output, a tar with manifest.json)"
	}
	return "", "a tar with neither index.json (OCI) nor manifest.json (docker save)"
}

// tarNames reads the top-level file names of a tar (headers only: tar
// skips the contents by seeking).
func tarNames(file string) (map[string]bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, flat(err)
	}
	defer f.Close()
	var magic [4]byte
	if n, _ := io.ReadFull(f, magic[:]); n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return nil, errors.New("a gzip-compressed file: gunzip it first")
	} else if n == 4 && magic == [4]byte{0x28, 0xb5, 0x2f, 0xfd} {
		return nil, errors.New("a zstd-compressed file: unzstd it first")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, flat(err)
	}
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for i := 0; i < 100000; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(names) == 0 {
				return nil, errors.New("a file that is not a tar archive")
			}
			break
		}
		if n := path.Clean(strings.TrimPrefix(hdr.Name, "./")); !strings.Contains(n, "/") {
			names[n] = true
		}
	}
	return names, nil
}

// registryName spells r like docker and podman do: docker.io, not
// index.docker.io, and always with the tag or digest.
func registryName(r name.Reference) string {
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	n := reg + "/" + r.Context().RepositoryStr()
	switch r := r.(type) {
	case name.Digest:
		return n + "@" + r.DigestStr()
	case name.Tag:
		return n + ":" + r.TagStr()
	}
	return n
}

// source is where an image is pulled from.
type source interface {
	// resolve returns the image manifest (raw bytes, digest verified),
	// choosing plat from an index.
	resolve(ctx context.Context, plat v1.Platform) (raw []byte, digest v1.Hash, err error)
	// blob opens a config or layer blob; the store verifies it.
	blob(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
	close()
}

func (s *Store) openSource(ctx context.Context, r *srcRef, opts PullOptions) (source, error) {
	switch r.transport {
	case "docker":
		auth, err := s.authenticator(ctx, r.ref.Context(), opts.Creds)
		if err != nil {
			return nil, err
		}
		return &registrySource{ref: r.ref, auth: auth, name: r.name}, nil
	case "oci":
		src, err := openLayout(r.path, r.tag, r.name, nil)
		return src, wrongKind(err, "oci", r.path)
	case "oci-archive":
		dir, err := s.extractLayout(r.path)
		if err != nil {
			return nil, err
		}
		return openLayout(dir, r.tag, r.name, func() { _ = removeAllForce(dir) })
	case "docker-archive":
		src, err := openDockerArchive(r.path, r.tag)
		return src, wrongKind(err, "docker-archive", r.path)
	}
	return nil, errdefs.New(errdefs.ErrInvalidArgument, "unsupported transport %q", r.transport)
}

// wrongKind adds to a failure to read path with transport what is there
// instead, and the transport that reads it.
func wrongKind(err error, transport, path string) error {
	if err == nil || errdefs.Category(err) == errdefs.ErrNotFound && !exists(path) {
		return err
	}
	t, what := localKind(path)
	if t == transport || t == "" && strings.Contains(what, "does not exist") {
		return err
	}
	hint := fmt.Sprintf("%s is %s", path, what)
	if t != "" {
		hint += fmt.Sprintf(": use %s:%s", t, path)
	}
	return errdefs.WithHint(err, hint)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ---- manifests and indexes (shared) ----

var acceptedManifests = []types.MediaType{
	types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList,
}

func isIndex(mt types.MediaType, raw []byte) bool {
	switch mt {
	case types.OCIImageIndex, types.DockerManifestList:
		return true
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return false
	}
	// Media type missing (some OCI layouts): look at the content.
	var probe struct {
		MediaType types.MediaType  `json:"mediaType"`
		Manifests *json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(raw, &probe)
	return probe.MediaType.IsIndex() || probe.Manifests != nil
}

func sha256Of(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// descend follows indexes from the manifest raw down to the image manifest
// for plat, fetching children with get (which verifies their digests).
func descend(ctx context.Context, raw []byte, mt types.MediaType, plat v1.Platform,
	get func(ctx context.Context, d v1.Descriptor) ([]byte, error)) ([]byte, v1.Hash, error) {
	for depth := 0; ; depth++ {
		if !isIndex(mt, raw) {
			if mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed {
				return nil, v1.Hash{}, errdefs.New(errdefs.ErrInvalidArgument,
					"the image uses the obsolete Docker schema 1 manifest, which is not supported")
			}
			return raw, sha256Of(raw), nil
		}
		if depth > 3 {
			return nil, v1.Hash{}, errdefs.New(errdefs.ErrInvalidArgument, "image indexes nest too deeply")
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, v1.Hash{}, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "bad image index")
		}
		d, err := pickPlatform(idx.Manifests, plat)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		if raw, err = get(ctx, d); err != nil {
			return nil, v1.Hash{}, err
		}
		mt = d.MediaType
	}
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pickPlatform chooses the manifest for want. An empty wanted variant
// matches any, as docker does for arm64 ("v8").
func pickPlatform(ms []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var avail []string
	for _, d := range ms {
		if d.Platform == nil || d.Platform.OS == "unknown" { // attestations
			continue
		}
		p := *d.Platform
		avail = append(avail, platformString(p))
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || p.Variant == want.Variant) {
			return d, nil
		}
	}
	if len(ms) == 1 && len(avail) == 0 {
		return ms[0], nil // no platform recorded: the only image
	}
	list := strings.Join(avail, ", ")
	if list == "" {
		list = "none recorded"
	}
	return v1.Descriptor{}, &errdefs.Error{Cat: errdefs.ErrNotFound,
		Msg:  fmt.Sprintf("no image for platform %s (available: %s)", platformString(want), list),
		Hint: "pass a platform the image provides"}
}

func readLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "%s is larger than %d bytes", what, maxManifest)
	}
	return b, nil
}

// ---- registry ----

type registrySource struct {
	ref    name.Reference
	name   string
	auth   authn.Authenticator
	client *http.Client
}

func (r *registrySource) close() {}

func (r *registrySource) connect(ctx context.Context) error {
	if r.client != nil {
		return nil
	}
	base := transport.NewRetry(http.DefaultTransport.(*http.Transport).Clone(),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	repo := r.ref.Context()
	// NewWithContext pings the registry and, for a token challenge, fetches a
	// pull token; loopback registries are tried over plain http.
	tr, err := transport.NewWithContext(ctx, repo.Registry, r.auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return registryErr(err, "connect to "+repo.RegistryStr())
	}
	r.client = &http.Client{Transport: tr}
	return nil
}

func (r *registrySource) url(kind, ident string) string {
	repo := r.ref.Context()
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), kind, ident)
}

func (r *registrySource) get(ctx context.Context, kind, ident string, accept []types.MediaType) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url(kind, ident), nil)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "request %s", ident)
	}
	var acc []string
	for _, mt := range accept {
		acc = append(acc, string(mt))
	}
	if len(acc) > 0 {
		req.Header.Set("Accept", strings.Join(acc, ", "))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, registryErr(err, "fetch "+kind[:len(kind)-1]+" "+ident)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, registryErr(err, "fetch "+kind[:len(kind)-1]+" "+ident)
	}
	return resp, nil
}

// manifest fetches a manifest by tag or digest; by digest its content must
// hash to it.
func (r *registrySource) manifest(ctx context.Context, ident string, want *v1.Hash) ([]byte, types.MediaType, error) {
	resp, err := r.get(ctx, "manifests", ident, acceptedManifests)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := readLimited(resp.Body, "manifest "+ident)
	if err != nil {
		return nil, "", registryErr(err, "fetch manifest "+ident)
	}
	if want != nil && sha256Of(raw) != *want {
		return nil, "", errdefs.New(errdefs.ErrInvalidArgument, "manifest %s does not match its digest", want)
	}
	mt := types.MediaType(strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0]))
	return raw, mt, nil
}

func (r *registrySource) resolve(ctx context.Context, plat v1.Platform) ([]byte, v1.Hash, error) {
	if err := r.connect(ctx); err != nil {
		return nil, v1.Hash{}, err
	}
	var want *v1.Hash
	if d, ok := r.ref.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		if err != nil {
			return nil, v1.Hash{}, errdefs.Wrap(errdefs.ErrInvalidArgument, flat(err), "digest %s", d.DigestStr())
		}
		want = &h
	}
	raw, mt, err := r.manifest(ctx, r.ref.Identifier(), want)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return descend(ctx, raw, mt, plat, func(ctx context.Context, d v1.Descriptor) ([]byte, error) {
		raw, _, err := r.manifest(ctx, d.Digest.String(), &d.Digest)
		return raw, err
	})
}

func (r *registrySource) blob(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	resp, err := r.get(ctx, "blobs", d.Digest.String(), nil)
	if err != nil {
		return nil, err
	}
	return &registryBody{ReadCloser: resp.Body, what: "fetch blob " + d.Digest.String()}, nil
}

// registryBody categorises errors that interrupt a blob download.
type registryBody struct {
	io.ReadCloser
	what string
}

func (b *registryBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = registryErr(err, b.what)
	}
	return n, err
}

// registryErr categorises a registry or network failure, with a one-line
// message that never includes credentials (ggcr redacts URLs; we never
// quote headers or bodies beyond the registry's error codes).
func registryErr(err error, what string) error {
	var e *errdefs.Error
	if errors.As(err, &e) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		msg := fmt.Sprintf("registry answered %d %s", te.StatusCode, http.StatusText(te.StatusCode))
		var diags []string
		cat := errdefs.ErrInternal
		for _, d := range te.Errors {
			diags = append(diags, string(d.Code)+": "+d.Message)
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				cat = errdefs.ErrNotFound
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				cat = errdefs.ErrPermissionDenied
			case transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
				cat = errdefs.ErrUnavailable
			}
		}
		if len(diags) > 0 {
			msg += " (" + strings.Join(diags, "; ") + ")"
		}
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			cat = errdefs.ErrPermissionDenied
		case te.StatusCode == http.StatusNotFound:
			cat = errdefs.ErrNotFound
		case te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500:
			cat = errdefs.ErrUnavailable
		}
		out := &errdefs.Error{Cat: cat, Msg: what, Cause: flatMsg(err, msg)}
		if cat == errdefs.ErrPermissionDenied {
			out.Msg = what + ": access denied (the repository may not exist, or needs credentials)"
			out.Hint = authHint
		}
		return out
	}
	return errdefs.Wrap(netCategory(err), flat(err), "%s", what)
}

func netCategory(err error) error {
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne), errors.As(err, &ue),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrInternal
}

// flatError keeps a cause for errors.Is/As but prints it on one line.
type flatError struct {
	msg string
	err error
}

func (f *flatError) Error() string { return f.msg }
func (f *flatError) Unwrap() error { return f.err }

func flat(err error) error { return flatMsg(err, err.Error()) }

func flatMsg(err error, msg string) error {
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return &flatError{msg: msg, err: err}
}
