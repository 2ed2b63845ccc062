// Command proxcage is an OCI runtime with runc's command grammar that runs
// each container on the backend its routing rules pick. This package only
// parses the command line; internal/runtime does the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of `init`
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/backend"
	"github.com/proxcage/proxcage/internal/backend/lxc"
	"github.com/proxcage/proxcage/internal/backend/native"
	"github.com/proxcage/proxcage/internal/backend/pve"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/runtime"
	"github.com/proxcage/proxcage/internal/store"
)

// Set by the linker (see Makefile).
var (
	version = "0.1.0-dev"
	commit  = "unknown"
)

func init() {
	// libcontainer re-executes this binary as `proxcage init` inside the new
	// namespaces; nsenter's C constructor has already run by now.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // never returns
	}
}

func main() {
	// Most commands live for milliseconds and allocate a few MB: collecting
	// garbage only costs them time (about 1.5 ms of a 20 ms `run`). The
	// memory limit still bounds the long-lived ones (`run` in the
	// foreground): the GC starts when the heap nears 64 MiB.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	if _, ok := os.LookupEnv("PATH"); !ok {
		// Engines may run the runtime with no environment at all (podman's
		// pause does): look tools up where execvp(3) and sh would.
		_ = os.Setenv("PATH", defaultPath)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultPath is glibc's confstr(_CS_PATH) widened to the sbin
// directories the LXC and PVE tools live in, as Debian's /etc/profile.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// exitError carries a process exit status (run/exec in the foreground)
// through cobra without printing anything.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(context.Background())
	defer a.closeLog()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		err = errdefs.New(errdefs.ErrInvalidArgument, "%v", err)
	}
	if errdefs.Category(err) == errdefs.ErrPermissionDenied && errdefs.Hint(err) == "" {
		err = errdefs.WithHint(err, permissionHint())
	}
	line := errdefs.OneLine(err)
	// With --log the engine reads the error from the log file (containerd's
	// shim takes the last "error" line); stderr always gets it too.
	if a.logFile != nil && a.log != nil {
		a.log.Error(line)
	}
	fmt.Fprintln(stderr, "proxcage: "+line)
	return errdefs.ExitCode(err)
}

// permissionHint is the fallback for a refused access no caller explained.
func permissionHint() string {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("proxcage runs as uid %d: run it as root, or give that user access to the path named", uid)
	}
	return "check the owner and mode of the path named (and any security module denying it)"
}

// app holds the global flags and what is built from them.
type app struct {
	stdout, stderr io.Writer

	root          string
	logPath       string
	logFormat     string
	configPath    string
	debug         bool
	systemdCgroup bool
	rootless      string

	log     *slog.Logger
	logFile *os.File
}

func (a *app) println(s string) { fmt.Fprintln(a.stdout, s) }

// stateRoot is root's --root.
const stateRoot = "/run/proxcage"

func defaultRoot() string {
	if os.Geteuid() != 0 {
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			return d + "/proxcage"
		}
	}
	return stateRoot
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "proxcage",
		Short: "OCI runtime with runc's grammar that runs containers natively, on Proxmox VE or on LXC",
		Long: `proxcage is an OCI container runtime. It speaks runc's command grammar, so
containerd, podman, CRI-O and Kubernetes can use it unchanged, and runs each
container on the backend its routing rules pick:

- native: Linux namespaces and cgroups through runc's libcontainer
- pve: a Proxmox VE CT, through pct on a PVE node or the REST API from any host
- lxc: a plain LXC container, through the LXC tools

The bundle annotation org.proxcage.backend picks the backend, else the first
matching [[routes]] rule of the config file, else its default_backend (native);
"proxcage route" says which one a container would get, and why. The config
file and every key of it: proxcage-config.toml(5).`,
		Version:           version,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setupLog() },
	}
	root.SetVersionTemplate(a.versionText())
	f := root.PersistentFlags()
	f.StringVar(&a.root, "root", defaultRoot(), "root directory for the state of containers")
	f.StringVar(&a.logPath, "log", "", "log file (default: stderr)")
	f.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&a.debug, "debug", false, "enable debug logging")
	f.BoolVar(&a.systemdCgroup, "systemd-cgroup", false, "use the systemd cgroup driver (native; an error where systemd is not running; pve and lxc ignore it)")
	f.StringVar(&a.configPath, "config", "", "config file (default $"+config.EnvVar+" or "+config.DefaultPath+")")
	f.StringVar(&a.rootless, "rootless", "auto", "ignored, accepted for runc compatibility (true|false|auto): rootless follows the effective uid")
	_ = root.MarkPersistentFlagDirname("root")
	_ = root.MarkPersistentFlagFilename("config", "toml")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("rootless", cobra.FixedCompletions([]string{"true", "false", "auto"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if c == root {
			return errdefs.New(errdefs.ErrInvalidArgument, "%v", err)
		}
		return errdefs.New(errdefs.ErrInvalidArgument, "%s: %v", c.Name(), err)
	})
	root.AddCommand(
		a.createCommand(), a.startCommand(), a.runCommand(), a.stateCommand(),
		a.killCommand(), a.deleteCommand(), a.execCommand(), a.psCommand(),
		a.listCommand(), a.pauseCommand(), a.resumeCommand(), a.updateCommand(),
		a.featuresCommand(), a.specCommand(), a.versionCommand(),
		a.routeCommand(), a.doctorCommand(), a.templatesCommand(),
		a.pullCommand(), a.imagesCommand(), a.rmiCommand(), a.volumesCommand(), a.upgradeCommand(), lxcHookCommand(), keeperCommand(),
	)
	root.AddCommand(a.extraCommands(root)...)
	registerAnnotationCompletion(root)
	return root
}

// setupLog builds the slog logger and points libcontainer's logrus at the
// same place and format. With --log-format json each line is
// {"level","msg","time"} with a lower-case level, as containerd's shim reads.
func (a *app) setupLog() error {
	w := io.Writer(a.stderr)
	if a.logPath != "" {
		f, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return errdefs.WrapOS(errdefs.ErrInvalidArgument, err, "pass a --log file the user running proxcage can write, or run it as root", "--log")
		}
		a.logFile, w = f, f
	}
	// stderr gets warnings and errors; a log file also gets info (e.g.
	// every failed pct call with its argv), the record engines keep.
	level := slog.LevelWarn
	lrLevel := logrus.WarnLevel
	if a.logFile != nil {
		level, lrLevel = slog.LevelInfo, logrus.InfoLevel
	}
	if a.debug {
		level, lrLevel = slog.LevelDebug, logrus.DebugLevel
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: lowerLevel}
	switch a.logFormat {
	case "json":
		a.log = slog.New(slog.NewJSONHandler(w, opts))
		logrus.SetFormatter(&logrus.JSONFormatter{})
	case "text":
		a.log = slog.New(slog.NewTextHandler(w, opts))
		logrus.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	default:
		return errdefs.New(errdefs.ErrInvalidArgument, "--log-format %q: want text or json", a.logFormat)
	}
	logrus.SetOutput(w)
	logrus.SetLevel(lrLevel)
	return nil
}

func lowerLevel(_ []string, attr slog.Attr) slog.Attr {
	if attr.Key == slog.LevelKey {
		return slog.String(slog.LevelKey, strings.ToLower(attr.Value.String()))
	}
	return attr
}

func (a *app) closeLog() {
	if a.logFile != nil {
		a.logFile.Close()
	}
}

// backends are this build's backends, in registration order: the order
// the "known backends" hint and `features` list them in.
var backends = []struct {
	name string
	new  func(a *app, cfg *config.Config) (backend.Backend, error)
	// features reports the OCI features the backend supports, without a
	// config; nil: none (runtime.BackendFeatures).
	features func() features.Features
}{
	{native.Name, func(a *app, _ *config.Config) (backend.Backend, error) { return native.New(a.log, a.debug), nil }, native.Features},
	{pve.Name, func(a *app, cfg *config.Config) (backend.Backend, error) { return pve.New(cfg.PVE, a.log) }, nil},
	{lxc.Name, func(a *app, _ *config.Config) (backend.Backend, error) { return lxc.New(a.log), nil }, nil},
}

// backendNames lists backends without building the runtime: a TAB must
// work whatever the config says.
func backendNames() []string {
	out := make([]string, len(backends))
	for i, b := range backends {
		out[i] = b.name
	}
	return out
}

// backendFeatures is what `features` asks each backend.
func backendFeatures() []runtime.BackendFeatures {
	out := make([]runtime.BackendFeatures, len(backends))
	for i, b := range backends {
		out[i] = runtime.BackendFeatures{Name: b.name, Report: b.features}
	}
	return out
}

// runtime builds the runtime: config, store and backends.
func (a *app) runtime() (*runtime.Runtime, error) {
	path, explicit := config.Resolve(a.configPath)
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return nil, err
	}
	reg := backend.NewRegistry()
	for _, b := range backends {
		reg.Register(b.name, func() (backend.Backend, error) { return b.new(a, cfg) })
	}
	// A config naming a backend this build lacks is a config error for
	// every command, as an unknown key is. (A bundle annotation naming one
	// fails only that container's create or route.)
	if err := runtime.CheckBackends(cfg, reg); err != nil {
		return nil, err
	}
	st, err := store.Open(a.root)
	if err != nil {
		return nil, err
	}
	return &runtime.Runtime{Store: st, Config: cfg, Backends: reg, Log: a.log}, nil
}
