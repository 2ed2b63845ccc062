package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) featuresCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "features",
		Short:   "Print the supported OCI features as JSON (runtime-spec features.md)",
		Example: "  proxcage features | jq .linux.namespaces",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// From the registration, not the runtime: features reads no
			// config and creates no state root.
			feat := runtime.Features(backendFeatures(), version, commit)
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(feat)
		},
	}
}
