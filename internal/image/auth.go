package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// authenticator returns the credentials for repo: creds ("user:password")
// when given, else the first auth file that has an entry for it.
//
// ggcr's authn.DefaultKeychain reads only the first auth file it finds and
// prefers Docker's over podman's; podman (whose syntax proxcage follows)
// reads $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json,
// then ~/.config/containers/auth.json, then Docker's config, and moves on
// when a file has no entry for the registry. So we do that.
func (s *Store) authenticator(ctx context.Context, repo name.Repository, creds string) (authn.Authenticator, error) {
	if creds != "" {
		user, pass, ok := strings.Cut(creds, ":")
		if !ok || user == "" {
			// Never echo creds: it may hold a password.
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "credentials must be USER:PASSWORD")
		}
		return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
	}
	for _, file := range authFiles() {
		af, err := readAuthFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument, Msg: "read credentials from " + file,
				Cause: flat(err), Hint: "fix or remove that file"}
		}
		cfg, found, err := af.lookup(ctx, repo)
		if err != nil {
			// A missing or failing credential helper should not stop pulls
			// of public images.
			s.log.Warn("credential helper failed", "file", file, "registry", repo.RegistryStr(), "err", err.Error())
			continue
		}
		if found {
			s.log.Debug("using registry credentials", "file", file, "registry", repo.RegistryStr())
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

func authFiles() []string {
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	home, _ := os.UserHomeDir()
	cfgHome := os.Getenv("XDG_CONFIG_HOME")
	if cfgHome == "" && home != "" {
		cfgHome = filepath.Join(home, ".config")
	}
	if cfgHome != "" {
		files = append(files, filepath.Join(cfgHome, "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home != "" {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// authFile is the common part of Docker's config.json and podman's
// auth.json.
type authFile struct {
	Auths       map[string]authEntry `json:"auths"`
	CredHelpers map[string]string    `json:"credHelpers"`
	CredsStore  string               `json:"credsStore"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

func readAuthFile(file string) (*authFile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var af authFile
	if err := json.Unmarshal(b, &af); err != nil {
		return nil, err
	}
	return &af, nil
}

const dockerHubKey = "https://index.docker.io/v1/"

// authKey reduces a key of "auths" to podman's form: registry[/repo],
// with Docker's URL-style keys ("https://host/v1/") cut to the host.
func authKey(k string) string {
	if _, rest, ok := strings.Cut(k, "://"); ok {
		k, _, _ = strings.Cut(rest, "/")
	}
	k = strings.TrimSuffix(k, "/")
	if k == "index.docker.io" || k == "registry-1.docker.io" {
		k = "docker.io"
	}
	if reg, repo, ok := strings.Cut(k, "/"); ok && (reg == "index.docker.io" || reg == "registry-1.docker.io") {
		k = "docker.io/" + repo
	}
	return k
}

// lookup finds the entry for repo, most specific first (podman allows
// registry/namespace keys), then a credential helper for the registry.
func (af *authFile) lookup(ctx context.Context, repo name.Repository) (authn.AuthConfig, bool, error) {
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	entries := map[string]authEntry{}
	for k, e := range af.Auths {
		entries[authKey(k)] = e
	}
	p := reg + "/" + repo.RepositoryStr()
	for {
		if e, ok := entries[p]; ok {
			if cfg, ok := e.config(); ok {
				return cfg, true, nil
			}
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	helper := af.CredsStore
	for k, h := range af.CredHelpers {
		if authKey(k) == reg {
			helper = h
		}
	}
	if helper == "" {
		return authn.AuthConfig{}, false, nil
	}
	server := reg
	if reg == "docker.io" {
		server = dockerHubKey
	}
	return credHelper(ctx, helper, server)
}

func (e authEntry) config() (authn.AuthConfig, bool) {
	cfg := authn.AuthConfig{Username: e.Username, Password: e.Password,
		IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
			if u, p, ok := strings.Cut(string(b), ":"); ok {
				cfg.Username, cfg.Password = u, p
			}
		}
	}
	return cfg, cfg != (authn.AuthConfig{})
}

// credHelper runs docker-credential-NAME get, Docker's helper protocol.
func credHelper(ctx context.Context, helper, server string) (authn.AuthConfig, bool, error) {
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(server)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		// The helper says "credentials not found" on stdout for no entry.
		if strings.Contains(strings.ToLower(out.String()), "credentials not found") {
			return authn.AuthConfig{}, false, nil
		}
		return authn.AuthConfig{}, false, errors.New("docker-credential-" + helper + ": " + err.Error())
	}
	var resp struct{ Username, Secret string }
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		return authn.AuthConfig{}, false, errors.New("docker-credential-" + helper + ": unreadable answer")
	}
	if resp.Username == "<token>" {
		return authn.AuthConfig{IdentityToken: resp.Secret}, true, nil
	}
	return authn.AuthConfig{Username: resp.Username, Password: resp.Secret}, resp.Secret != "", nil
}
