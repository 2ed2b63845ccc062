package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/image"
)

func (a *app) imagesCommand() *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [flags]",
		Short: "List the images in the local store",
		Example: `  proxcage images
  proxcage images prune`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "images: --format %q: want table or json", format)
			}
			st, err := a.imageStore("images")
			if err != nil {
				return err
			}
			list, err := st.List()
			if err != nil {
				return errdefs.Context(err, "images", "")
			}
			switch {
			case quiet:
				for _, l := range list {
					a.println(l.Digest.String())
				}
				return nil
			case format == "json":
				if list == nil {
					list = []image.Listed{}
				}
				return json.NewEncoder(a.stdout).Encode(list)
			}
			w := tabwriter.NewWriter(a.stdout, 8, 1, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tDIGEST\tSIZE\tCREATED\tUNPACKED\tCONTAINERS")
			for _, l := range list {
				names := strings.Join(l.Names, ",")
				if names == "" {
					names = "<none>"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%d\n", names, shortDigest(l.Digest.String()), humanSize(l.Size),
					l.Created.Format(time.RFC3339), l.Unpacked, l.Users)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the digests")
	cmd.AddCommand(&cobra.Command{
		Use:   "prune",
		Short: "Remove unnamed images no container uses, and unreferenced blobs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			removed, err := rt.PruneImages(cmd.Context())
			for _, r := range removed {
				a.println(r)
			}
			return errdefs.Context(err, "images prune", "")
		},
	})
	return cmd
}

// imageStore opens the image store under the configured data dir; op
// prefixes its errors.
func (a *app) imageStore(op string) (*image.Store, error) {
	rt, err := a.runtime()
	if err != nil {
		return nil, err
	}
	st, err := rt.ImageStore()
	return st, errdefs.Context(err, op, "")
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// shortSHA is a digest as sha256:<12 hex>, for tables that show whole
// references (list, upgrade --check).
func shortSHA(d string) string {
	if d == "" {
		return "-"
	}
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return shortDigest(d)
	}
	return alg + ":" + shortDigest(hex)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
