package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) startCommand() *cobra.Command {
	return a.idCommand("start", "Start the user program of a created container", (*runtime.Runtime).Start)
}
