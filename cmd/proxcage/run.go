package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) runCommand() *cobra.Command {
	var (
		f                      createFlags
		detach, keep, noReaper bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] {<container-id> | --image REF [<container-id>] [-- CMD...]}",
		Short: "Create and start a container; without --detach wait for it and remove it",
		Example: `  proxcage run -b ./bundle demo          # foreground, exits with the container's status
  proxcage run -d -b ./bundle web        # detached
  proxcage run --rm --image docker.io/library/busybox:1.36 -- echo hello
  proxcage run -d --image docker.io/library/nginx:1.27 -e NGINX_PORT=8080 web`,
		Args: f.img.args(),
		// A new id, and a command for inside the container: nothing to offer.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, cmdArgs := f.img.idAndCommand(cmd, args)
			opts, err := f.opts(a, detach)
			if err != nil {
				return errdefs.Context(err, "run", id)
			}
			if keep {
				return errdefs.New(errdefs.ErrInvalidArgument, "run %s: --keep is not supported", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			var status int
			if f.img.ref == "" {
				req, rerr := f.bundleRequest()
				if rerr != nil {
					return errdefs.Context(rerr, "run", id)
				}
				status, err = rt.Run(cmd.Context(), id, req, opts)
			} else {
				if f.img.rm && detach {
					// Nothing watches a detached container for its end.
					return errdefs.New(errdefs.ErrInvalidArgument, "run: --rm with --detach is not supported; `proxcage delete` it when done")
				}
				if f.img.generated && detach {
					defer a.println(id)
				}
				req, rerr := f.imageRequest(a, cmdArgs)
				if rerr != nil {
					return errdefs.Context(rerr, "run", id)
				}
				status, err = rt.RunFromImage(cmd.Context(), id, req, opts)
			}
			if err != nil {
				return errdefs.Context(err, "run", id)
			}
			if status != 0 {
				return exitError{status}
			}
			return nil
		},
	}
	f.register(cmd)
	_ = cmd.RegisterFlagCompletionFunc("image", a.completeImages)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the container after it exits (runc's; refused: not supported)")
	cmd.Flags().BoolVar(&noReaper, "no-subreaper", false, "ignored, accepted for runc compatibility")
	return cmd
}
