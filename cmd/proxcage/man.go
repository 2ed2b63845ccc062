//go:build genman

package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// extraCommands adds the hidden gen-man command, which writes a man page per
// command (`make man`). It is built only with -tags genman: the markdown
// renderer it pulls in costs every proxcage start, and the container init
// is a proxcage start too.
func (a *app) extraCommands(root *cobra.Command) []*cobra.Command {
	return []*cobra.Command{{
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
	}}
}
