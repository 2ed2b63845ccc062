package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) psCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "List the processes of a container",
		Example: `  proxcage ps demo
  proxcage ps --format json demo
  proxcage ps demo -o pid,comm`,
		Args: func(cmd *cobra.Command, args []string) error { return idArg(cmd, args, "ps options") },
		// After the id come ps(1)'s own options.
		ValidArgsFunction: a.completeID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "ps %s: --format %q: want table or json", id, format)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			pids, err := rt.Pids(cmd.Context(), id)
			if err != nil {
				return errdefs.Context(err, "ps", id)
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(a.stdout).Encode(pids)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.CommandContext(cmd.Context(), "ps", psArgs...).Output()
			if err != nil {
				return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "ps %s: run ps %s", id, strings.Join(psArgs, " "))
			}
			return filterPs(a, out, pids)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	return cmd
}

// filterPs keeps ps's header and the lines whose PID column is one of pids.
func filterPs(a *app, out []byte, pids []int) error {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "ps output has no PID column")
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	w := bufio.NewWriter(a.stdout)
	fmt.Fprintln(w, lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && want[f[col]] {
			fmt.Fprintln(w, l)
		}
	}
	return w.Flush()
}
