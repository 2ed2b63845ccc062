package main

import (
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) execCommand() *cobra.Command {
	var (
		req           runtime.ExecRequest
		pidFile       string
		consoleSocket string
		addGids       []int64
		detach        bool
		preserveFDs   int
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] <container-id> <command> [args...]",
		Short: "Run a new process in a running container",
		Example: `  proxcage exec demo ps
  proxcage exec -t demo sh
  proxcage exec --process p.json --detach --pid-file p.pid demo`,
		Args: func(cmd *cobra.Command, args []string) error { return idArg(cmd, args, "command") },
		// The command runs in the container: only the id can be offered.
		ValidArgsFunction: a.completeID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			req.Args = args[1:]
			if req.ProcessFile != "" && len(req.Args) > 0 {
				return errdefs.New(errdefs.ErrInvalidArgument, "exec %s: give either --process or a command, not both", id)
			}
			for _, g := range addGids {
				if g < 0 || g > 1<<32-1 {
					return errdefs.New(errdefs.ErrInvalidArgument, "exec %s: --additional-gids %d out of range", id, g)
				}
				req.AddGids = append(req.AddGids, uint32(g))
			}
			var err error
			req.Opts = backend.ExecOpts{Stdio: backend.Stdio{Detach: detach, PreserveFDs: preserveFDs}}
			if req.Opts.PidFile, err = absPath(pidFile); err != nil {
				return errdefs.Context(err, "exec", id)
			}
			if req.Opts.ConsoleSocket, err = absPath(consoleSocket); err != nil {
				return errdefs.Context(err, "exec", id)
			}
			if req.ProcessFile, err = absPath(req.ProcessFile); err != nil {
				return errdefs.Context(err, "exec", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			status, err := rt.Exec(cmd.Context(), id, req)
			if err != nil {
				return errdefs.Context(err, "exec", id)
			}
			if !detach && status != 0 {
				return exitError{status}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	// Everything after the container id belongs to the command.
	fl.SetInterspersed(false)
	fl.StringVarP(&req.ProcessFile, "process", "p", "", "process.json to run instead of a command")
	_ = cmd.MarkFlagFilename("process", "json")
	fl.BoolVarP(&detach, "detach", "d", false, "detach from the process")
	fl.StringVar(&pidFile, "pid-file", "", "file to write the process's host pid to")
	fl.BoolVarP(&req.Tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.StringVar(&consoleSocket, "console-socket", "", "AF_UNIX socket that receives the pty master")
	fl.StringArrayVarP(&req.Env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	fl.StringVar(&req.Cwd, "cwd", "", "working directory in the container")
	fl.StringVarP(&req.User, "user", "u", "", "uid[:gid] to run as")
	fl.Int64SliceVarP(&addGids, "additional-gids", "g", nil, "additional gids")
	fl.IntVar(&preserveFDs, "preserve-fds", 0, "pass N extra file descriptors to the process")
	return cmd
}
