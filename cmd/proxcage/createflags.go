package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

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
