package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

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
}

func (a *app) upgradeCommand() *cobra.Command {
	var f upgradeFlags
	cmd := &cobra.Command{
		Use:   "upgrade [flags] [container-id...]",
		Short: "Check whether the images containers were made from have newer versions",
		Long: `With --check, ask the registry of every container made from an image (those
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
		Example: `  proxcage upgrade --check
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
				return errdefs.New(errdefs.ErrInvalidArgument, "upgrade: only --check is built yet")
			}
			return a.runUpgradeCheck(cmd, args, f)
		},
		ValidArgsFunction: a.completeIDs,
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.check, "check", false, "report the containers whose image has a newer version; change nothing")
	fl.StringVarP(&f.format, "format", "f", "table", "with --check: table or json")
	fl.StringVar(&f.platform, "platform", "", "os/arch[/variant] to check for (default: that of the image each container runs)")
	fl.StringVar(&f.creds, "creds", "", "USER:PASSWORD for the registries (or $PROXCAGE_REGISTRY_CREDS)")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormat)
	return cmd
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
