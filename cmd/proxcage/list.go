package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) listCommand() *cobra.Command {
	var (
		format string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Example: `  proxcage list
  proxcage list -q
  proxcage list --format json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "list: --format %q: want table or json", format)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			states, err := rt.List(cmd.Context())
			if err != nil {
				return errdefs.Context(err, "list", "")
			}
			switch {
			case quiet:
				for _, s := range states {
					fmt.Fprintln(a.stdout, s.ID)
				}
				return nil
			case format == "json":
				if states == nil {
					_, err := fmt.Fprintln(a.stdout, "[]")
					return err
				}
				return json.NewEncoder(a.stdout).Encode(states)
			}
			w := tabwriter.NewWriter(a.stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\tBACKEND\tNODE\n")
			for _, s := range states {
				node := s.Node
				if node == "" {
					node = "-" // this host
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
					s.Created.Format(time.RFC3339Nano), s.Owner, s.Backend, node)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return cmd
}
