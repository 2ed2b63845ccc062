package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) pauseCommand() *cobra.Command {
	return a.idCommand("pause", "Freeze all processes of a container", (*runtime.Runtime).Pause)
}

func (a *app) resumeCommand() *cobra.Command {
	return a.idCommand("resume", "Thaw a paused container", (*runtime.Runtime).Resume)
}
