package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) killCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "Send a signal (default TERM) to the container's init",
		Example: `  proxcage kill demo            # SIGTERM
  proxcage kill demo KILL
  proxcage kill demo 9`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := idArg(cmd, args, "signal"); err != nil {
				return err
			}
			if len(args) > 2 {
				return errdefs.New(errdefs.ErrInvalidArgument, "kill: too many arguments (usage: %s)", cmd.UseLine())
			}
			return nil
		},
		ValidArgsFunction: a.completeKill,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, sigArg := args[0], "TERM"
			if len(args) == 2 {
				sigArg = args[1]
			}
			sig, err := ParseSignal(sigArg)
			if err != nil {
				return errdefs.Context(err, "kill", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			return errdefs.Context(rt.Kill(cmd.Context(), id, sig, all), "kill", id)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to all processes of the container")
	return cmd
}
