//go:build !genman

package main

import "github.com/spf13/cobra"

// extraCommands: none outside -tags genman (see man.go).
func (a *app) extraCommands(root *cobra.Command) []*cobra.Command { return nil }
