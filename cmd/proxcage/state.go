package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) stateCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "state <container-id>",
		Short:   "Print a container's OCI state as JSON",
		Example: "  proxcage state demo | jq .status",
		Args:    exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			st, err := rt.State(cmd.Context(), args[0])
			if err != nil {
				return errdefs.Context(err, "state", args[0])
			}
			data, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(append(data, '\n'))
			return err
		},
		ValidArgsFunction: a.completeID,
	}
}
