package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) deleteCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] <container-id>",
		Short: "Remove a stopped container (any container with --force)",
		Example: `  proxcage delete demo
  proxcage delete --force demo   # SIGKILL first if it still runs`,
		Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			err = rt.Delete(cmd.Context(), id, force)
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
	return cmd
}
