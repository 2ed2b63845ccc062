package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) deleteCommand() *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "delete [flags] <container-id>",
		Short: "Remove a stopped container (any container with --force)",
		Example: `  proxcage delete demo
  proxcage delete --force demo   # SIGKILL first if it still runs
  proxcage delete --volumes web  # and its volumes (kept by default)`,
		Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			err = rt.DeleteVolumes(cmd.Context(), id, force, volumes)
			if force && errors.Is(err, errdefs.ErrNotFound) {
				// runc compatibility: `delete --force` is idempotent, and
				// containerd's shim and conmon rely on it when they race
				// with an exiting container.
				return nil
			}
			return errdefs.Context(err, "delete", id)
		},
		ValidArgsFunction: a.completeID,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it is running")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove the container's volumes that no other container uses (a kept volume is reused by -v NAME:/PATH)")
	return cmd
}
