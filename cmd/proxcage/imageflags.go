package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/runtime"
	"github.com/proxcage/proxcage/internal/volume"
)

// imageFlags are create's and run's image options. The runc grammar stays
// as it is; `--image REF` adds podman's: the id becomes optional and a
// command may follow `--`.
type imageFlags struct {
	ref       string
	env       []string
	workdir   string
	user      string
	tty       bool
	rm        bool
	platform  string
	creds     string
	quiet     bool
	volumes   []string
	parsed    []volume.Mount
	generated bool // the id was made up: print it
}

func (f *imageFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.ref, "image", "", "create from an image instead of a bundle (docker.io/..., oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE); pulled if missing")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "with --image: set an environment variable KEY=VALUE (repeatable)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "with --image: working directory")
	fl.StringVarP(&f.user, "user", "u", "", "with --image: user[:group], names from the image's /etc/passwd and /etc/group")
	fl.BoolVarP(&f.tty, "tty", "t", false, "with --image: give the process a terminal")
	fl.BoolVar(&f.rm, "rm", false, "with --image: remove the container when it exits (a foreground run always does)")
	fl.StringVar(&f.platform, "platform", "", "with --image: os/arch[/variant] to pull (default: this host's)")
	fl.StringVar(&f.creds, "creds", "", "with --image: USER:PASSWORD for the registry")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "with --image: no pull progress")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "with --image: mount the volume NAME at PATH, NAME:/PATH[:ro] (made, with the image's files there, if missing; repeatable)")
}

// args checks positional arguments: exactly an id without --image; with
// it, an optional id and a command after --.
func (f *imageFlags) args() cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if f.ref == "" {
			for _, flag := range []string{"env", "workdir", "user", "tty", "rm", "platform", "creds", "quiet", "volume"} {
				if cmd.Flags().Changed(flag) {
					return errdefs.New(errdefs.ErrInvalidArgument, "--%s needs --image", flag)
				}
			}
			return exactID(cmd, args)
		}
		ids := args
		if dash := cmd.ArgsLenAtDash(); dash >= 0 {
			ids = args[:dash]
		} else if len(args) > 1 {
			return errdefs.New(errdefs.ErrInvalidArgument, "put the command after --: %s --image %s [ID] -- %s", cmd.Name(), f.ref, strings.Join(args[1:], " "))
		}
		if len(ids) > 1 {
			return errdefs.New(errdefs.ErrInvalidArgument, "%s --image takes at most one container id, got %q", cmd.Name(), strings.Join(ids, " "))
		}
		f.parsed = f.parsed[:0]
		for _, v := range f.volumes {
			m, err := volume.Parse(v)
			if err != nil {
				return err
			}
			f.parsed = append(f.parsed, m)
		}
		return nil
	}
}

// idAndCommand splits the arguments; a missing id is generated.
func (f *imageFlags) idAndCommand(cmd *cobra.Command, args []string) (string, []string) {
	ids, command := args, []string(nil)
	if dash := cmd.ArgsLenAtDash(); dash >= 0 && f.ref != "" {
		ids, command = args[:dash], args[dash:]
	}
	if len(ids) > 0 {
		return ids[0], command
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	f.generated = true
	return "proxcage-" + hex.EncodeToString(b), command
}

func (f *imageFlags) request(a *app, command []string) runtime.ImageRequest {
	return runtime.ImageRequest{
		Ref:  f.ref,
		Pull: a.pullOptions(f.platform, f.creds, f.quiet),
		Overrides: imagespec.Overrides{
			Args: command, Env: f.env, Workdir: f.workdir, User: f.user, Tty: f.tty,
		},
		Volumes: f.parsed,
	}
}

// pullOptions: bars on stderr when it is a terminal (never for a shim,
// whose stderr is a pipe or file), else JSON/text log lines.
func (a *app) pullOptions(platform, creds string, quiet bool) image.PullOptions {
	if creds == "" {
		creds = os.Getenv("PROXCAGE_REGISTRY_CREDS")
	}
	return image.PullOptions{Platform: platform, Creds: creds, Progress: a.stderr, Quiet: quiet}
}
