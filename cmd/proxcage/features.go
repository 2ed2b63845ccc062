package main

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"
)

func (a *app) featuresCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "features",
		Short:   "Print the supported OCI features as JSON (runtime-spec features.md)",
		Example: "  proxcage features | jq .linux.namespaces",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t := true
			feat := features.Features{
				OCIVersionMin: "1.0.0",
				OCIVersionMax: specs.Version,
				Hooks:         configs.KnownHookNames(),
				MountOptions:  specconv.KnownMountOptions(),
				Annotations: map[string]string{
					"org.proxcage.version":  version,
					"org.proxcage.commit":   commit,
					"org.proxcage.backends": "native,pve,lxc",
				},
				Linux: &features.Linux{
					Namespaces:   specconv.KnownNamespaces(),
					Capabilities: capabilities.KnownCapabilities(),
					Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: &t},
					Apparmor:     &features.Apparmor{Enabled: &t},
					Selinux:      &features.Selinux{Enabled: &t},
					MountExtensions: &features.MountExtensions{
						IDMap: &features.IDMap{Enabled: &t},
					},
				},
				PotentiallyUnsafeConfigAnnotations: []string{"bundle", "org.systemd.property.", "org.criu.config"},
			}
			if seccomp.Enabled {
				feat.Linux.Seccomp = &features.Seccomp{
					Enabled:        &t,
					Actions:        seccomp.KnownActions(),
					Operators:      seccomp.KnownOperators(),
					Archs:          seccomp.KnownArchs(),
					KnownFlags:     seccomp.KnownFlags(),
					SupportedFlags: seccomp.SupportedFlags(),
				}
				major, minor, patch := seccomp.Version()
				feat.Annotations["io.github.seccomp.libseccomp.version"] = fmt.Sprintf("%d.%d.%d", major, minor, patch)
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(feat)
		},
	}
}
