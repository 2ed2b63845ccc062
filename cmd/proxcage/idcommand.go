package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/runtime"
)

// idCommand builds a command that takes only a container id and calls one
// runtime method (start, pause, resume).
func (a *app) idCommand(name, short string, op func(*runtime.Runtime, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:     name + " <container-id>",
		Short:   short,
		Example: "  proxcage " + name + " demo",
		Args:    exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			return errdefs.Context(op(rt, cmd.Context(), args[0]), name, args[0])
		},
		ValidArgsFunction: a.completeID,
	}
}
