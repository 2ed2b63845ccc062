package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "doctor",
		Short:   "Check this host for every backend the config uses",
		Example: "  proxcage doctor",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			checks := rt.Doctor(cmd.Context())
			failed := 0
			w := tabwriter.NewWriter(a.stdout, 4, 1, 2, ' ', 0)
			for _, c := range checks {
				mark := "ok"
				switch {
				case !c.OK && c.Warn:
					mark = "warn"
				case !c.OK:
					mark = "FAIL"
					failed++
				}
				line := fmt.Sprintf("%s\t%s\t%s", mark, c.Name, c.Detail)
				// Once: a detail made from an error may carry its hint.
				if !c.OK && c.Hint != "" && !strings.Contains(c.Detail, c.Hint) {
					line += " -- " + c.Hint
				}
				fmt.Fprintln(w, line)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return errdefs.New(errdefs.ErrFailedPrecondition, "doctor: %d check(s) failed", failed)
			}
			return nil
		},
	}
}
