package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/image"
	"github.com/proxcage/proxcage/internal/runtime"
)

// upgradeFlags are `upgrade`'s flags.
type upgradeFlags struct {
	check    bool
	format   string
	platform string
	creds    string
	image    string
	health   string
	timeout  time.Duration
	stop     time.Duration
	quiet    bool
	resume   bool
	noHealth bool
}

func (a *app) upgradeCommand() *cobra.Command {
	var f upgradeFlags
	cmd := &cobra.Command{
		Use:   "upgrade [flags] [container-id...]",
		Short: "Move a container to a new version of its image, keeping its data; or --check for new versions",
		Long: `upgrade ID [--image REF] moves the container to the image REF names now
(default: the name it was made from, resolved again). Nothing happens when
the digest is the same. Otherwise the container is made again from the new
image with its id, its volumes (-v, and the image's VOLUMEs) and the user's
overrides (the command after --, -e, -w, -u, -t, --annotation) merged over the
new image's config, and started. It must then pass the health check
(--health-cmd, else the image's HEALTHCHECK, else: still running 2 s after the
start); if it does not start or fails the check, it is removed and the old
container is made again from the old image (kept in the store by digest) and
started: the exit status is non-zero and the old digest runs.

On pve (transport "pct", on the CT's node) the CT itself is kept: VMID, NICs
and MACs, mount points and their data, tags, description. The new image is
made into a scratch CT, the CT is snapshotted where its storage can be
(lvmthin, zfspool, btrfs, rbd; not with a bind mount), stopped, and its
rootfs and image lines (entrypoint, env, lxc.init.*) are swapped with the
scratch CT's; then it is started and checked. On failure the snapshot (or,
without one, the saved config) puts it back. After a crash, --resume puts it
back as it was (or finishes the clean-up of an upgrade that had passed).
Over the API the same, refused when it would need what the API lacks (raw
lxc.init.* lines, exec for a health check).

With --check, ask the registry of every container made from an image (those
named, else all of them; containers made from a bundle are skipped) what the
name it was made from (create/run --image NAME) names now, and report it
against the manifest digest the container runs. Only manifests are fetched:
nothing is pulled, and no container or image is changed.

A container made from a digest reference (NAME@sha256:...) is pinned: it is
always up to date, and its registry is not asked.

Exit status: 0 when every container could be checked, whether or not newer
images exist (a stale container is what the report is for, not an error);
non-zero when a check failed (its registry unreachable, the name gone: the
container's row says why, the other containers are still reported, and the
exit code is that of the first failure's category), or when an id does not
exist or names a container made from a bundle.`,
		Example: `  proxcage upgrade web                                   # to what web's tag names now
  proxcage upgrade web --image docker.io/library/nginx:1.28 --health-cmd 'wget -q -O- localhost'
  proxcage upgrade --check
  proxcage upgrade --check web db
  proxcage upgrade --check --format json | jq -r '.[] | select(.upToDate | not) | .id'
  proxcage run -d --image docker.io/library/busybox@sha256:DIGEST pinned   # never stale`,
		Args: func(cmd *cobra.Command, args []string) error {
			if i := slices.Index(args, ""); i >= 0 {
				return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: container id %d cannot be empty", i+1)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !f.check {
				return a.runUpgrade(cmd, args, f)
			}
			for _, flag := range []string{"image", "health-cmd", "health-timeout", "time", "resume", "no-health-check"} {
				if cmd.Flags().Changed(flag) {
					return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: --%s does not go with --check", flag)
				}
			}
			return a.runUpgradeCheck(cmd, args, f)
		},
		ValidArgsFunction: a.completeIDs,
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.check, "check", false, "report the containers whose image has a newer version; change nothing")
	fl.StringVar(&f.image, "image", "", "the image to move to (default: the name the container was made from)")
	fl.StringVar(&f.health, "health-cmd", "", "a shell command run in the new container (sh -c) whose exit 0 lets the upgrade stand")
	fl.DurationVar(&f.timeout, "health-timeout", 30*time.Second, "how long the health check may take to pass")
	fl.DurationVarP(&f.stop, "time", "t", 10*time.Second, "how long the old container gets to stop after SIGTERM before SIGKILL")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines or pull bars")
	fl.BoolVar(&f.noHealth, "no-health-check", false, "do not run the image's HEALTHCHECK: the new container must still run 2 s after its start")
	fl.BoolVar(&f.resume, "resume", false, "finish an upgrade that was interrupted (pve): the container as it was before it")
	fl.StringVarP(&f.format, "format", "f", "table", "with --check: table or json")
	fl.StringVar(&f.platform, "platform", "", "os/arch[/variant] to check for (default: that of the image each container runs)")
	fl.StringVar(&f.creds, "creds", "", "USER:PASSWORD for the registries (or $PROXCAGE_REGISTRY_CREDS)")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	return cmd
}

// runUpgrade is `upgrade ID`: progress on stderr, the result on stdout.
func (a *app) runUpgrade(cmd *cobra.Command, ids []string, f upgradeFlags) error {
	if len(ids) != 1 {
		return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: name one container (or --check for a report on many)")
	}
	if cmd.Flags().Changed("format") {
		return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: --format goes with --check")
	}
	rt, err := a.runtime()
	if err != nil {
		return err
	}
	req := runtime.UpgradeRequest{ID: ids[0], Ref: f.image, Pull: a.pullOptions(f.platform, f.creds, f.quiet), Timeout: f.timeout, Stop: f.stop, Resume: f.resume, NoHealth: f.noHealth}
	if f.health != "" {
		if f.noHealth {
			return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: --health-cmd and --no-health-check exclude each other")
		}
		req.Health = []string{"/bin/sh", "-c", f.health}
	}
	if !f.quiet {
		req.Progress = func(format string, args ...any) { fmt.Fprintf(a.stderr, "upgrade: "+format+"\n", args...) }
	}
	res, err := rt.Upgrade(cmd.Context(), req)
	if err != nil {
		return errdefs.Context(err, "upgrade", ids[0])
	}
	if f.resume {
		_, err := fmt.Fprintf(a.stdout, "%s: the interrupted upgrade is finished\n", res.ID)
		return err
	}
	if !res.Changed {
		_, err := fmt.Fprintf(a.stdout, "%s: up to date (%s %s)\n", res.ID, res.Image, shortSHA(res.To))
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s: upgraded to %s (%s -> %s)\n", res.ID, res.Image, shortSHA(res.From), shortSHA(res.To))
	return err
}

// runUpgradeCheck is `upgrade --check`.
func (a *app) runUpgradeCheck(cmd *cobra.Command, ids []string, f upgradeFlags) error {
	if f.format != "table" && f.format != "json" {
		return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: --format %q: want table or json", f.format)
	}
	rt, err := a.runtime()
	if err != nil {
		return err
	}
	statuses, err := rt.CheckUpgrades(cmd.Context(), ids, a.checkOptions(f))
	if err != nil {
		return errdefs.Context(err, "upgrade --check", "")
	}
	if err := a.printUpgradeCheck(statuses, f.format); err != nil {
		return err
	}
	return upgradeCheckFailure(statuses)
}

// checkOptions are the resolve options: credentials and platform only
// (nothing is pulled, so no progress).
func (a *app) checkOptions(f upgradeFlags) image.PullOptions {
	o := a.pullOptions(f.platform, f.creds, true)
	o.Progress = nil
	return o
}

func (a *app) printUpgradeCheck(statuses []runtime.UpgradeStatus, format string) error {
	if format == "json" {
		if statuses == nil {
			statuses = []runtime.UpgradeStatus{}
		}
		return json.NewEncoder(a.stdout).Encode(statuses)
	}
	w := tabwriter.NewWriter(a.stdout, 8, 1, 3, ' ', 0)
	fmt.Fprintln(w, "ID\tIMAGE\tCURRENT\tAVAILABLE\tSTATUS")
	for _, s := range statuses {
		status := "update available"
		switch {
		case s.Error != "":
			status = "check failed: " + s.Error
		case s.Pinned:
			status = "up to date (pinned)"
		case s.UpToDate:
			status = "up to date"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.ID, shortRef(s.Image), shortSHA(s.Current), shortSHA(s.Available), status)
	}
	return w.Flush()
}

// upgradeCheckFailure is the error (exit status) of a report with failed
// checks: one line counting them, with the first one's category.
func upgradeCheckFailure(statuses []runtime.UpgradeStatus) error {
	var first *runtime.UpgradeStatus
	failed := 0
	for i := range statuses {
		if statuses[i].Err != nil {
			failed++
			if first == nil {
				first = &statuses[i]
			}
		}
	}
	if first == nil {
		return nil
	}
	return errdefs.Wrap(errdefs.Category(first.Err), first.Err,
		"upgrade --check: %d of %d containers could not be checked; %s", failed, len(statuses), first.ID)
}

// shortRef is a digest reference with its digest shortened, as list's IMAGE
// column spells digests (other names as they are).
func shortRef(ref string) string {
	name, d, ok := strings.Cut(ref, "@")
	if !ok {
		return ref
	}
	return name + "@" + shortSHA(d)
}
