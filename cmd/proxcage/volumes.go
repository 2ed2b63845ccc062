package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) volumesCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "volumes",
		Short: "List the data volumes of image containers on this host (native, lxc backends)",
		Long: `List the data volumes of image containers on this host (native, lxc backends).

A volume is made by create/run --image -v NAME:/PATH (or for each VOLUME of
the image, named ID-N) and outlives its container: delete keeps it, and
-v NAME:/PATH mounts it again. On pve a volume is a mount point volume of
the CT (pct config VMID shows it), not listed here.`,
		Example: `  proxcage volumes
  proxcage volumes --format json
  proxcage volumes rm web-data`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "volumes: --format %q: want table or json", format)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			list, err := rt.Volumes().List()
			if err != nil {
				return errdefs.Context(err, "volumes", "")
			}
			if format == "json" {
				if list == nil {
					_, err := fmt.Fprintln(a.stdout, "[]")
					return err
				}
				return json.NewEncoder(a.stdout).Encode(list)
			}
			w := tabwriter.NewWriter(a.stdout, 8, 1, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tUSERS\tANONYMOUS\tDIR")
			for _, v := range list {
				users := strings.Join(v.Users, ",")
				if users == "" {
					users = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", v.Name, users, v.Anonymous, v.Dir)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	cmd.AddCommand(&cobra.Command{
		Use:     "rm NAME...",
		Short:   "Remove volumes no container uses",
		Example: "  proxcage volumes rm web-data",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := rt.Volumes().Remove(name); err != nil {
					return errdefs.Context(err, "volumes rm", name)
				}
				fmt.Fprintln(a.stdout, name)
			}
			return nil
		},
	})
	return cmd
}
