package main

import (
	"fmt"
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func (a *app) versionText() string {
	return fmt.Sprintf("proxcage version %s\ncommit: %s\nspec: %s\ngo: %s\n", version, commit, specs.Version, goruntime.Version())
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  proxcage version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(a.stdout, a.versionText())
			return err
		},
	}
}
