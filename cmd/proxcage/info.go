package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/identifiers"
	"github.com/proxcage/proxcage/internal/route"
	"github.com/proxcage/proxcage/internal/runtime"
)

func (a *app) psCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "List the processes of a container",
		Example: `  proxcage ps demo
  proxcage ps --format json demo
  proxcage ps demo -o pid,comm`,
		Args: func(cmd *cobra.Command, args []string) error { return idArg(cmd, args, "ps options") },
		// After the id come ps(1)'s own options.
		ValidArgsFunction: a.completeID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "ps %s: --format %q: want table or json", id, format)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			pids, err := rt.Pids(cmd.Context(), id)
			if err != nil {
				return errdefs.Context(err, "ps", id)
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(a.stdout).Encode(pids)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.CommandContext(cmd.Context(), "ps", psArgs...).Output()
			if err != nil {
				return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "ps %s: run ps %s", id, strings.Join(psArgs, " "))
			}
			return filterPs(a, out, pids)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	return cmd
}

// filterPs keeps ps's header and the lines whose PID column is one of pids.
func filterPs(a *app, out []byte, pids []int) error {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "ps output has no PID column")
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	w := bufio.NewWriter(a.stdout)
	fmt.Fprintln(w, lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && want[f[col]] {
			fmt.Fprintln(w, l)
		}
	}
	return w.Flush()
}

func (a *app) listCommand() *cobra.Command {
	var (
		format string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Example: `  proxcage list
  proxcage list -q
  proxcage list --format json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return errdefs.New(errdefs.ErrInvalidArgument, "list: --format %q: want table or json", format)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			states, err := rt.List(cmd.Context())
			if err != nil {
				return errdefs.Context(err, "list", "")
			}
			switch {
			case quiet:
				for _, s := range states {
					fmt.Fprintln(a.stdout, s.ID)
				}
				return nil
			case format == "json":
				if states == nil {
					_, err := fmt.Fprintln(a.stdout, "[]")
					return err
				}
				return json.NewEncoder(a.stdout).Encode(states)
			}
			w := tabwriter.NewWriter(a.stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\tBACKEND\tNODE\n")
			for _, s := range states {
				node := s.Node
				if node == "" {
					node = "-" // this host
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
					s.Created.Format(time.RFC3339Nano), s.Owner, s.Backend, node)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return cmd
}

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

func (a *app) versionText() string {
	return fmt.Sprintf("proxcage version %s\ncommit: %s\nspec: %s\ngo: %s\n", version, commit, specs.Version, goruntime.Version())
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  proxcage version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(a.stdout, a.versionText())
			return err
		},
	}
}

func (a *app) routeCommand() *cobra.Command {
	var bundle, ref string
	var annotations []string
	cmd := &cobra.Command{
		Use:   "route [flags] <container-id>",
		Short: "Print which backend a new container would run on, and which rule chose it",
		Example: `  proxcage route --bundle ./bundle pve-web
  proxcage --config ./config.toml route -b ./bundle demo
  proxcage route --image docker.io/library/nginx:1.27 --annotation org.proxcage.backend=pve web`,
		Args: exactID,
		// The id of a container to be: nothing to offer.
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := identifiers.Validate(id); err != nil {
				return errdefs.Context(err, "route", id)
			}
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			ann, err := parseAnnotations(annotations)
			if err != nil {
				return errdefs.Context(err, "route", id)
			}
			var d route.Decision
			if ref != "" {
				if cmd.Flags().Changed("bundle") {
					return errdefs.New(errdefs.ErrInvalidArgument, "route: --bundle and --image exclude each other")
				}
				// The image is not pulled: its labels never route.
				d, err = rt.RouteImage(id, ref, ann)
			} else {
				d, err = rt.Route(id, runtime.BundleRequest{Dir: bundle, Annotations: ann})
			}
			if err != nil {
				return errdefs.Context(err, "route", id)
			}
			_, err = fmt.Fprintf(a.stdout, "backend: %s\nreason: %s\n", d.Backend, d.Reason)
			return err
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	_ = cmd.MarkFlagDirname("bundle")
	cmd.Flags().StringVar(&ref, "image", "", "route a container of this image instead (only --annotation and the config decide; the image is not pulled)")
	_ = cmd.RegisterFlagCompletionFunc("image", a.completeImages)
	registerAnnotations(cmd, &annotations)
	return cmd
}

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "doctor",
		Short:   "Check this host for every backend the config uses",
		Example: "  proxcage doctor",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := a.runtime()
			if err != nil {
				return err
			}
			checks := rt.Doctor(cmd.Context())
			failed := 0
			w := tabwriter.NewWriter(a.stdout, 4, 1, 2, ' ', 0)
			for _, c := range checks {
				mark := "ok"
				switch {
				case !c.OK && c.Warn:
					mark = "warn"
				case !c.OK:
					mark = "FAIL"
					failed++
				}
				line := fmt.Sprintf("%s\t%s\t%s", mark, c.Name, c.Detail)
				// Once: a detail made from an error may carry its hint.
				if !c.OK && c.Hint != "" && !strings.Contains(c.Detail, c.Hint) {
					line += " -- " + c.Hint
				}
				fmt.Fprintln(w, line)
			}
			w.Flush()
			if failed > 0 {
				return errdefs.New(errdefs.ErrFailedPrecondition, "doctor: %d check(s) failed", failed)
			}
			return nil
		},
	}
}
