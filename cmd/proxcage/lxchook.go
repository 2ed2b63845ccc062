package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/backend/lxc"
)

// lxcHookCommand is what an lxc container's LXC hooks run: the OCI hooks
// of one kind, with the state on stdin (internal/backend/lxc/hooks.go).
func lxcHookCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "lxc-hook <state-dir> <createRuntime|createContainer>",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return lxc.RunHooks(cmd.Context(), args[0], args[1])
		},
	}
}
