package main

import (
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxcage/proxcage/internal/backend/pve"
	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/route"
	"github.com/proxcage/proxcage/internal/runtime"
	"github.com/proxcage/proxcage/internal/store"
)

// Shell completion: the scripts `proxcage completion` writes call the
// hidden `proxcage __complete ARGS...` on every TAB, with the flags
// already typed (--root, --config) parsed. The helpers here only read:
// a TAB never creates the state root or the image store, and never asks a
// backend (a pve one may be a network away).

const noFiles = cobra.ShellCompDirectiveNoFileComp

var completeFormat = cobra.FixedCompletions([]string{"table", "json"}, noFiles)

// completeID offers the ids in the state store as the first argument.
func (a *app) completeID(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFiles
	}
	return a.containerIDs(toComplete), noFiles
}

// completeIDs offers the ids in the state store for a command that takes
// several, each once.
func (a *app) completeIDs(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, c := range a.containerIDs(toComplete) {
		if id, _, _ := strings.Cut(c, "\t"); !slices.Contains(args, id) {
			out = append(out, c)
		}
	}
	return out, noFiles
}

// containerIDs are the ids `list -q` prints, from the records alone, each
// described by its backend.
func (a *app) containerIDs(prefix string) []string {
	if _, err := os.Stat(a.root); err != nil {
		return nil
	}
	st, err := store.Open(a.root)
	if err != nil {
		return nil
	}
	recs, err := st.List()
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range recs {
		if strings.HasPrefix(r.ID, prefix) {
			out = append(out, r.ID+"\t"+r.Backend)
		}
	}
	return out
}

// completeKill: the id, then a signal name.
func (a *app) completeKill(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return a.completeID(cmd, args, toComplete)
	case 1:
		return signalNames(toComplete), noFiles
	}
	return nil, noFiles
}

// completeImages offers the names `proxcage images` lists (rmi also takes
// the digest of an unnamed image), each once.
func (a *app) completeImages(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	path, explicit := config.Resolve(a.configPath)
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return nil, noFiles
	}
	rt := &runtime.Runtime{Config: cfg}
	if _, err := os.Stat(rt.ImageStoreDir()); err != nil {
		return nil, noFiles
	}
	st, err := rt.ImageStore()
	if err != nil {
		return nil, noFiles
	}
	list, err := st.List()
	if err != nil {
		return nil, noFiles
	}
	var out []string
	add := func(ref, desc string) {
		if strings.HasPrefix(ref, toComplete) && !slices.Contains(args, ref) {
			out = append(out, ref+"\t"+desc)
		}
	}
	for _, l := range list {
		for _, n := range l.Names {
			add(n, shortDigest(l.Digest.String()))
		}
		if len(l.Names) == 0 && cmd.Name() == "rmi" {
			add(l.Digest.String(), "<none>")
		}
	}
	return out, noFiles
}

// registerAnnotationCompletion: every --annotation flag (KEY=VALUE on the
// bundle) completes the org.proxcage.* keys proxcage reads, and backend
// names for org.proxcage.backend.
func registerAnnotationCompletion(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("annotation") != nil {
			_ = c.RegisterFlagCompletionFunc("annotation", completeAnnotation)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func completeAnnotation(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if key, value, ok := strings.Cut(toComplete, "="); ok {
		values := map[string][]string{
			route.BackendAnnotation:  backendNames(),
			pve.AnnotationPrivileged: {"true", "false"},
			pve.AnnotationNetPrefix:  {"none"},
		}[key]
		var out []string
		for _, v := range values {
			if strings.HasPrefix(v, value) {
				out = append(out, key+"="+v)
			}
		}
		return out, noFiles
	}
	var out []string
	for _, an := range config.Annotations {
		// org.proxcage.netN stands for net0 to net31: offer the first.
		name := strings.Replace(an.Name, ".netN", ".net0", 1)
		if an.Read && strings.HasPrefix(name, toComplete) {
			out = append(out, name+"=\t"+or(an.Backend, "all backends"))
		}
	}
	// The value comes next: no space after the "=".
	return out, noFiles | cobra.ShellCompDirectiveNoSpace
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
