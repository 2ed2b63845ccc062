package main

import (
	"encoding/json"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func (a *app) featuresCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "features",
		Short:   "Print the supported OCI features as JSON (runtime-spec features.md)",
		Example: "  proxcage features | jq .linux.namespaces",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			feat := nativeFeatures()
			feat.OCIVersionMin = "1.0.0"
			feat.OCIVersionMax = specs.Version
			if feat.Annotations == nil {
				feat.Annotations = map[string]string{}
			}
			feat.Annotations["org.proxcage.version"] = version
			feat.Annotations["org.proxcage.commit"] = commit
			// From the registration, not the runtime: features reads no
			// config and creates no state root.
			feat.Annotations["org.proxcage.backends"] = strings.Join(backendNames(), ",")
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(feat)
		},
	}
}
