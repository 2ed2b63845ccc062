package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func (a *app) specCommand() *cobra.Command {
	var (
		bundle   string
		rootless bool
	)
	cmd := &cobra.Command{
		Use:   "spec [flags]",
		Short: "Write a default config.json into a bundle",
		Example: `  mkdir -p bundle/rootfs && proxcage spec --bundle bundle
  proxcage spec --rootless`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := specconv.Example()
			if rootless {
				specconv.ToRootless(s)
			}
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return errdefs.New(errdefs.ErrAlreadyExists, "spec: %s exists; remove it first", path)
			}
			data, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, append(data, '\n'), 0o666); err != nil {
				return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "spec")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory to write config.json into")
	_ = cmd.MarkFlagDirname("bundle")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "generate a config for a rootless container")
	return cmd
}
