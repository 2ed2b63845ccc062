package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) createCommand() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] {<container-id> | --image REF [<container-id>] [-- CMD...]}",
		Short: "Create a container; its program waits until `start`",
		Example: `  proxcage create --bundle ./bundle demo
  proxcage start demo
  proxcage create --image docker.io/library/nginx:1.27 web   # from an image (pulled if missing)
  proxcage create --image alpine:3.22 job -- sh -c 'date'`,
		Args: f.img.args(),
		// A new id, and a command for inside the container: nothing to offer.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, cmdArgs := f.img.idAndCommand(cmd, args)
			opts, err := f.opts(a, true)
			if err != nil {
				return errdefs.Context(err, "create", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			if f.img.ref == "" {
				req, err := f.bundleRequest()
				if err != nil {
					return errdefs.Context(err, "create", id)
				}
				return errdefs.Context(rt.Create(cmd.Context(), id, req, opts), "create", id)
			}
			if f.img.rm {
				return errdefs.New(errdefs.ErrInvalidArgument, "create: --rm applies to run only")
			}
			req, err := f.imageRequest(a, cmdArgs)
			if err != nil {
				return errdefs.Context(err, "create", id)
			}
			if err := rt.CreateFromImage(cmd.Context(), id, req, opts); err != nil {
				return errdefs.Context(err, "create", id)
			}
			if f.img.generated {
				a.println(id)
			}
			return nil
		},
	}
	f.register(cmd)
	_ = cmd.RegisterFlagCompletionFunc("image", a.completeImages)
	return cmd
}
