package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

// idArg checks the container-id positional argument, with runc's wording.
func idArg(cmd *cobra.Command, args []string, extra string) error {
	if len(args) == 0 || args[0] == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "%s: container id cannot be empty (usage: %s)", cmd.Name(), cmd.UseLine())
	}
	if extra == "" && len(args) > 1 {
		return errdefs.New(errdefs.ErrInvalidArgument, "%s: unexpected arguments after the container id: %s", cmd.Name(), strings.Join(args[1:], " "))
	}
	return nil
}

func exactID(cmd *cobra.Command, args []string) error { return idArg(cmd, args, "") }

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "%s takes no arguments, got %q", cmd.Name(), strings.Join(args, " "))
	}
	return nil
}
