package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/backend/pve"
)

// keeperCommand is a pve container's keeper, which `create` leaves behind
// for an engine to wait on (internal/backend/pve/keeper.go): it exits
// with the CT's process's exit status.
func keeperCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "keeper <dir>",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := pve.RunKeeper(cmd.Context(), args[0], pve.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
			if err != nil {
				return err
			}
			return exitError{code}
		},
	}
}
