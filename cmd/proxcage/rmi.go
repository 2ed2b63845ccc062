package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

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
