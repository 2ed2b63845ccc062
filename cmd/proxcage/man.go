package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// genManCommand writes man pages for every command (`make man`). Hidden:
// it is a build step, not part of the runc grammar.
func (a *app) genManCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man <dir>",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root.DisableAutoGenTag = true
			return doc.GenManTree(root, &doc.GenManHeader{Title: "PROXCAGE", Section: "8", Source: "proxcage " + version}, args[0])
		},
	}
}
