package main

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) templatesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "List the CT templates proxcage made from bundles and images (pve backend)",
		Example: `  proxcage templates
  proxcage templates prune`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			all, err := rt.Templates(cmd.Context())
			if err != nil {
				return errdefs.Context(err, "templates", "")
			}
			names := make([]string, 0, len(all))
			for n := range all {
				names = append(names, n)
			}
			sort.Strings(names)
			w := tabwriter.NewWriter(a.stdout, 8, 1, 3, ' ', 0)
			fmt.Fprintln(w, "BACKEND\tTEMPLATE\tSIZE\tIN USE\tFROM")
			for _, n := range names {
				for _, t := range all[n] {
					fmt.Fprintf(w, "%s\t%s\t%d\t%v\t%s\n", n, t.Name, t.Size, t.InUse, t.Detail)
				}
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "prune",
		Short:   "Remove templates no container was made from (and temp files of dead writers)",
		Example: "  proxcage templates prune",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			removed, err := rt.PruneTemplates(cmd.Context())
			for _, r := range removed {
				fmt.Fprintln(a.stdout, "removed", r)
			}
			return errdefs.Context(err, "templates prune", "")
		},
	})
	return cmd
}
