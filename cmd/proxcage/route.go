package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/route"
	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) routeCommand() *cobra.Command {
	var bundle, ref string
	var annotations []string
	cmd := &cobra.Command{
		Use:   "route [flags] <container-id>",
		Short: "Print which backend a new container would run on, and which rule chose it",
		Example: `  proxcage route --bundle ./bundle pve-web
  proxcage --config ./config.toml route -b ./bundle demo
  proxcage route --image docker.io/library/nginx:1.27 --annotation org.proxcage.backend=pve web`,
		Args: exactID,
		// The id of a container to be: nothing to offer.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := identifiers.Validate(id); err != nil {
				return errdefs.Context(err, "route", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			ann, err := parseAnnotations(annotations)
			if err != nil {
				return errdefs.Context(err, "route", id)
			}
			var d route.Decision
			if ref != "" {
				if cmd.Flags().Changed("bundle") {
					return errdefs.New(errdefs.ErrInvalidArgument, "route: --bundle and --image exclude each other")
				}
				// The image is not pulled: its labels never route.
				d, err = rt.RouteImage(id, ref, ann)
			} else {
				d, err = rt.Route(id, runtime.BundleRequest{Dir: bundle, Annotations: ann})
			}
			if err != nil {
				return errdefs.Context(err, "route", id)
			}
			_, err = fmt.Fprintf(a.stdout, "backend: %s\nreason: %s\n", d.Backend, d.Reason)
			return err
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	_ = cmd.MarkFlagDirname("bundle")
	cmd.Flags().StringVar(&ref, "image", "", "route a container of this image instead (only --annotation and the config decide; the image is not pulled)")
	_ = cmd.RegisterFlagCompletionFunc("image", a.completeImages)
	registerAnnotations(cmd, &annotations)
	return cmd
}
