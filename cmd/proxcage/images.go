package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/imagespec"
	"github.com/proxcage/proxcage/internal/runtime"
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
}

// args checks positional arguments: exactly an id without --image; with
// it, an optional id and a command after --.
func (f *imageFlags) args() cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if f.ref == "" {
			for _, flag := range []string{"env", "workdir", "user", "tty", "rm", "platform", "creds", "quiet"} {
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

func (a *app) println(s string) { fmt.Fprintln(a.stdout, s) }

// imageStore opens the image store under the configured data dir; op
// prefixes its errors.
func (a *app) imageStore(op string) (*image.Store, error) {
	rt, err := a.runtime()
	if err != nil {
		return nil, err
	}
	st, err := rt.ImageStore()
	return st, errdefs.Context(err, op, "")
}

func (a *app) pullCommand() *cobra.Command {
	var platform, creds string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [flags] <image>",
		Short: "Fetch an image into the local store",
		Example: `  proxcage pull docker.io/library/busybox:1.36
  proxcage pull --platform linux/arm64 alpine
  proxcage pull oci-archive:./image.tar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			img, err := rt.Pull(cmd.Context(), args[0], a.pullOptions(platform, creds, quiet))
			if err != nil {
				return errdefs.Context(err, "pull", args[0])
			}
			a.println(img.Digest.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] (default: this host's)")
	cmd.Flags().StringVar(&creds, "creds", "", "USER:PASSWORD for the registry (or $PROXCAGE_REGISTRY_CREDS)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bars")
	return cmd
}

func (a *app) imagesCommand() *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [flags]",
		Short: "List the images in the local store",
		Example: `  proxcage images
  proxcage images prune`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "images: --format %q: want table or json", format)
			}
			st, err := a.imageStore("images")
			if err != nil {
				return err
			}
			list, err := st.List()
			if err != nil {
				return errdefs.Context(err, "images", "")
			}
			switch {
			case quiet:
				for _, l := range list {
					a.println(l.Digest.String())
				}
				return nil
			case format == "json":
				if list == nil {
					list = []image.Listed{}
				}
				return json.NewEncoder(a.stdout).Encode(list)
			}
			w := tabwriter.NewWriter(a.stdout, 8, 1, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tDIGEST\tSIZE\tCREATED\tUNPACKED\tCONTAINERS")
			for _, l := range list {
				names := strings.Join(l.Names, ",")
				if names == "" {
					names = "<none>"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%d\n", names, shortDigest(l.Digest.String()), humanSize(l.Size),
					l.Created.Format(time.RFC3339), l.Unpacked, l.Users)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the digests")
	cmd.AddCommand(&cobra.Command{
		Use:   "prune",
		Short: "Remove unnamed images no container uses, and unreferenced blobs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			removed, err := rt.PruneImages(cmd.Context())
			for _, r := range removed {
				a.println(r)
			}
			return errdefs.Context(err, "images prune", "")
		},
	})
	return cmd
}

func (a *app) rmiCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rmi [flags] <image>...",
		Short:   "Remove images from the local store",
		Example: "  proxcage rmi docker.io/library/busybox:1.36",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			for _, ref := range args {
				removed, err := rt.RemoveImage(cmd.Context(), ref, force)
				if err != nil {
					return errdefs.Context(err, "rmi", ref)
				}
				for _, r := range removed {
					a.println(r)
				}
			}
			return nil
		},
		ValidArgsFunction: a.completeImages,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even if containers use it")
	return cmd
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
