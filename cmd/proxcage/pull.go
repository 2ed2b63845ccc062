package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

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
