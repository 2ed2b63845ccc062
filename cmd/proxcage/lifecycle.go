package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/runtime"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle        string
	pidFile       string
	consoleSocket string
	pidfdSocket   string
	preserveFDs   int
	noPivot       bool
	noNewKeyring  bool
	annotations   []string
	img           imageFlags
}

func (f *createFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", ".", "path to the bundle directory")
	_ = cmd.MarkFlagDirname("bundle")
	fl.StringVar(&f.pidFile, "pid-file", "", "file to write the init process's host pid to")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "AF_UNIX socket that receives the pty master (SCM_RIGHTS)")
	fl.StringVar(&f.pidfdSocket, "pidfd-socket", "", "not supported; accepted for runc compatibility only when empty")
	fl.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass N extra file descriptors (after stdio) to the container")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "do not use pivot_root (native, for a rootfs on ramfs; pve and lxc ignore it)")
	fl.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring (native; pve and lxc ignore it)")
	registerAnnotations(cmd, &f.annotations)
	f.img.register(cmd)
}

// registerAnnotations adds podman's --annotation flag.
func registerAnnotations(cmd *cobra.Command, to *[]string) {
	cmd.Flags().StringArrayVar(to, "annotation", nil,
		"set an annotation KEY=VALUE (repeatable), over the bundle's: the backend (org.proxcage.backend) and backend options (org.proxcage.vmid, ...), which an image's labels can never set")
}

// parseAnnotations reads --annotation values.
func parseAnnotations(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "--annotation %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// bundle is the bundle request of a create or run without --image.
func (f *createFlags) bundleRequest() (runtime.BundleRequest, error) {
	ann, err := parseAnnotations(f.annotations)
	return runtime.BundleRequest{Dir: f.bundle, Annotations: ann}, err
}

// imageRequest is the image request of a create or run with --image.
func (f *createFlags) imageRequest(a *app, command []string) (runtime.ImageRequest, error) {
	req := f.img.request(a, command)
	ann, err := parseAnnotations(f.annotations)
	req.Overrides.Annotations = ann
	return req, err
}

// opts resolves relative paths now: the native backend enters the bundle
// directory before it uses them.
func (f *createFlags) opts(a *app, detach bool) (backend.CreateOpts, error) {
	if f.pidfdSocket != "" {
		return backend.CreateOpts{}, errdefs.New(errdefs.ErrInvalidArgument, "--pidfd-socket is not supported by proxcage")
	}
	if f.preserveFDs < 0 {
		return backend.CreateOpts{}, errdefs.New(errdefs.ErrInvalidArgument, "--preserve-fds must not be negative")
	}
	o := backend.CreateOpts{
		Stdio:         backend.Stdio{Detach: detach, PreserveFDs: f.preserveFDs},
		NoPivot:       f.noPivot,
		NoNewKeyring:  f.noNewKeyring,
		SystemdCgroup: a.systemdCgroup,
	}
	var err error
	if o.PidFile, err = absPath(f.pidFile); err != nil {
		return o, err
	}
	if o.ConsoleSocket, err = absPath(f.consoleSocket); err != nil {
		return o, err
	}
	return o, nil
}

func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", errdefs.Wrap(errdefs.ErrInvalidArgument, err, "path %s", p)
	}
	return abs, nil
}

func (a *app) createCommand() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] {<container-id> | --image REF [<container-id>] [-- CMD...]}",
		Short: "Create a container; its program waits until `start`",
		Example: `  proxcage create --bundle ./bundle demo
  proxcage start demo
  proxcage create --image docker.io/library/nginx:1.27 web   # from an image (pulled if missing)
  proxcage create --image alpine:3.22 job -- sh -c 'date'`,
		Args: f.img.args(),
		// A new id, and a command for inside the container: nothing to offer.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, cmdArgs := f.img.idAndCommand(cmd, args)
			opts, err := f.opts(a, true)
			if err != nil {
				return errdefs.Context(err, "create", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			if f.img.ref == "" {
				req, err := f.bundleRequest()
				if err != nil {
					return errdefs.Context(err, "create", id)
				}
				return errdefs.Context(rt.Create(cmd.Context(), id, req, opts), "create", id)
			}
			if f.img.rm {
				return errdefs.New(errdefs.ErrInvalidArgument, "create: --rm applies to run only")
			}
			req, err := f.imageRequest(a, cmdArgs)
			if err != nil {
				return errdefs.Context(err, "create", id)
			}
			if err := rt.CreateFromImage(cmd.Context(), id, req, opts); err != nil {
				return errdefs.Context(err, "create", id)
			}
			if f.img.generated {
				a.println(id)
			}
			return nil
		},
	}
	f.register(cmd)
	_ = cmd.RegisterFlagCompletionFunc("image", a.completeImages)
	return cmd
}

func (a *app) runCommand() *cobra.Command {
	var (
		f                      createFlags
		detach, keep, noReaper bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] {<container-id> | --image REF [<container-id>] [-- CMD...]}",
		Short: "Create and start a container; without --detach wait for it and remove it",
		Example: `  proxcage run -b ./bundle demo          # foreground, exits with the container's status
  proxcage run -d -b ./bundle web        # detached
  proxcage run --rm --image docker.io/library/busybox:1.36 -- echo hello
  proxcage run -d --image docker.io/library/nginx:1.27 -e NGINX_PORT=8080 web`,
		Args: f.img.args(),
		// A new id, and a command for inside the container: nothing to offer.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, cmdArgs := f.img.idAndCommand(cmd, args)
			opts, err := f.opts(a, detach)
			if err != nil {
				return errdefs.Context(err, "run", id)
			}
			if keep {
				return errdefs.New(errdefs.ErrInvalidArgument, "run %s: --keep is not supported", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			var status int
			if f.img.ref == "" {
				req, rerr := f.bundleRequest()
				if rerr != nil {
					return errdefs.Context(rerr, "run", id)
				}
				status, err = rt.Run(cmd.Context(), id, req, opts)
			} else {
				if f.img.rm && detach {
					// Nothing watches a detached container for its end.
					return errdefs.New(errdefs.ErrInvalidArgument, "run: --rm with --detach is not supported; `proxcage delete` it when done")
				}
				if f.img.generated && detach {
					defer a.println(id)
				}
				req, rerr := f.imageRequest(a, cmdArgs)
				if rerr != nil {
					return errdefs.Context(rerr, "run", id)
				}
				status, err = rt.RunFromImage(cmd.Context(), id, req, opts)
			}
			if err != nil {
				return errdefs.Context(err, "run", id)
			}
			if status != 0 {
				return exitError{status}
			}
			return nil
		},
	}
	f.register(cmd)
	_ = cmd.RegisterFlagCompletionFunc("image", a.completeImages)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the container after it exits (runc's; refused: not supported)")
	cmd.Flags().BoolVar(&noReaper, "no-subreaper", false, "ignored, accepted for runc compatibility")
	return cmd
}

func (a *app) startCommand() *cobra.Command {
	return a.idCommand("start", "Start the user program of a created container", (*runtime.Runtime).Start)
}

// idCommand builds a command that takes only a container id and calls one
// runtime method (start, pause, resume).
func (a *app) idCommand(name, short string, op func(*runtime.Runtime, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:     name + " <container-id>",
		Short:   short,
		Example: "  proxcage " + name + " demo",
		Args:    exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			return errdefs.Context(op(rt, cmd.Context(), args[0]), name, args[0])
		},
		ValidArgsFunction: a.completeID,
	}
}

func (a *app) stateCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "state <container-id>",
		Short:   "Print a container's OCI state as JSON",
		Example: "  proxcage state demo | jq .status",
		Args:    exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			st, err := rt.State(cmd.Context(), args[0])
			if err != nil {
				return errdefs.Context(err, "state", args[0])
			}
			data, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(append(data, '\n'))
			return err
		},
		ValidArgsFunction: a.completeID,
	}
}

func (a *app) killCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "Send a signal (default TERM) to the container's init",
		Example: `  proxcage kill demo            # SIGTERM
  proxcage kill demo KILL
  proxcage kill demo 9`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := idArg(cmd, args, "signal"); err != nil {
				return err
			}
			if len(args) > 2 {
				return errdefs.New(errdefs.ErrInvalidArgument, "kill: too many arguments (usage: %s)", cmd.UseLine())
			}
			return nil
		},
		ValidArgsFunction: a.completeKill,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, sigArg := args[0], "TERM"
			if len(args) == 2 {
				sigArg = args[1]
			}
			sig, err := ParseSignal(sigArg)
			if err != nil {
				return errdefs.Context(err, "kill", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			return errdefs.Context(rt.Kill(cmd.Context(), id, sig, all), "kill", id)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to all processes of the container")
	return cmd
}

// ParseSignal accepts a number, or a name with or without SIG, any case.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.New(errdefs.ErrInvalidArgument, "unknown signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, errdefs.New(errdefs.ErrInvalidArgument, "unknown signal %q", s)
	}
	return sig, nil
}

func (a *app) deleteCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] <container-id>",
		Short: "Remove a stopped container (any container with --force)",
		Example: `  proxcage delete demo
  proxcage delete --force demo   # SIGKILL first if it still runs`,
		Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			err = rt.Delete(cmd.Context(), id, force)
			if force && errdefsIsNotFound(err) {
				// runc compatibility: `delete --force` is idempotent, and
				// containerd's shim and conmon rely on it when they race
				// with an exiting container.
				return nil
			}
			return errdefs.Context(err, "delete", id)
		},
		ValidArgsFunction: a.completeID,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it is running")
	return cmd
}
