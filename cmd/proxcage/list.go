package main

import (
	"encoding/json"
	"fmt"
	"strings"
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
		Long: `List containers: the table's IMAGE column is the image a container was
made from, as NAME@sha256:<12 hex> of the manifest it runs (- for a
container made from a bundle); --format json has the full name and
digest as "image" and "imageDigest".`,
		Example: `  proxcage list
  proxcage list -q
  proxcage list --format json
  proxcage list --format json | jq -r '.[] | select(.image) | .id + " " + .imageDigest'`,
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
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\tBACKEND\tNODE\tIMAGE\n")
			for _, s := range states {
				node := s.Node
				if node == "" {
					node = "-" // this host
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
					s.Created.Format(time.RFC3339Nano), s.Owner, s.Backend, node, imageColumn(s.Image, s.ImageDigest))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return cmd
}

// imageColumn is list's IMAGE: the name the container was made from with
// the manifest digest it runs, shortened (a pinned name's own digest gives
// way to it: an index digest there would name the same image).
func imageColumn(name, digest string) string {
	if name == "" {
		return "-"
	}
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	return name + "@" + shortSHA(digest)
}
