//go:build genman

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// extraCommands adds the hidden gen-man command, which writes a man page per
// command (`make man`). It is built only with -tags genman: the markdown
// renderer it pulls in costs every proxcage start, and the container init
// is a proxcage start too.
func (a *app) extraCommands(root *cobra.Command) []*cobra.Command {
	return []*cobra.Command{{
		Use:    "gen-man <dir>",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			date, err := manDate()
			if err != nil {
				return err
			}
			root.DisableAutoGenTag = true
			escapeUse(root)
			// No Title: each page gets its own (PROXCAGE-KILL), from its command.
			header := &doc.GenManHeader{Section: "8", Date: &date, Source: "proxcage " + version}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return err
			}
			if err := addRootSections(filepath.Join(dir, "proxcage.8")); err != nil {
				return err
			}
			page := fmt.Sprintf("%% \"PROXCAGE-CONFIG.TOML\" \"5\" %q %q \"\"\n", date.Format("Jan 2006"), "proxcage "+version) +
				config.ManMarkdown()
			return os.WriteFile(filepath.Join(dir, "proxcage-config.toml.5"), md2man.Render([]byte(page)), 0o644)
		},
	}}
}

// manDate is the pages' date: SOURCE_DATE_EPOCH's (reproducible builds,
// `make deb`), else today, as cobra/doc does.
func manDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %v", s, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC(), nil
}

// escapeUse: go-md2man reads <container-id> in a SYNOPSIS as an HTML tag
// and drops it.
func escapeUse(c *cobra.Command) {
	c.Use = strings.ReplaceAll(c.Use, "<", `\<`)
	for _, sub := range c.Commands() {
		escapeUse(sub)
	}
}

// addRootSections puts CONFIGURATION, EXIT STATUS, ENVIRONMENT and FILES
// into proxcage(8), before SEE ALSO (cobra/doc has no place for them), and
// proxcage-config.toml(5) into SEE ALSO.
func addRootSections(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// Rendered with a title line of its own, which is then dropped.
	extra := string(md2man.Render([]byte("% X 8\n" + rootSections())))
	i := strings.Index(extra, ".SH ")
	const seeAlso = ".SH SEE ALSO\n"
	j := strings.Index(string(data), seeAlso)
	if i < 0 || j < 0 {
		return fmt.Errorf("gen-man: %s has no SEE ALSO, or the extra sections did not render", path)
	}
	page := string(data[:j]) + extra[i:] + "\n\n" + seeAlso + `\fBproxcage-config.toml(5)\fP, ` + string(data[j+len(seeAlso):])
	return os.WriteFile(path, []byte(page), 0o644)
}

// rootSections is the markdown of proxcage(8)'s own sections.
func rootSections() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# CONFIGURATION
proxcage reads its configuration from the file named by **--config**, else by
**$%s**, else from **%s** (which may be absent: all defaults).
It sets the default backend, the routing rules that send containers to the
native, pve and lxc backends, where images live and how to reach Proxmox VE.
Every key, the environment variables and the annotations proxcage reads are in
**proxcage-config.toml**(5).

# EXIT STATUS
**0**
: Success.

`, config.EnvVar, config.DefaultPath)
	examples := map[error]string{
		errdefs.ErrInternal:           "anything unexpected",
		errdefs.ErrInvalidArgument:    "a bad flag, argument, bundle or config",
		errdefs.ErrNotFound:           `container "x" does not exist`,
		errdefs.ErrAlreadyExists:      `container "x" already exists`,
		errdefs.ErrFailedPrecondition: "container not running; a host the backend cannot use",
		errdefs.ErrUnavailable:        "PVE does not answer, a CT is locked, no VMID is free",
		errdefs.ErrPermissionDenied:   "a state root proxcage may not write, a PVE login refused",
	}
	for code := 1; code <= 7; code++ {
		for cat, ex := range examples {
			if errdefs.ExitCode(cat) == code {
				fmt.Fprintf(&b, "**%d**\n: %s, e.g. %s.\n\n", code, cat, ex)
			}
		}
	}
	b.WriteString(`The error is one line on stderr (and in **--log**), in runc's words where
engines match on them. **run** and **exec** in the foreground exit with the
container process's own status instead (128+N when signal N ended it).
**delete --force** of an unknown container exits 0, as runc's does.

# ENVIRONMENT
`)
	for _, e := range config.Envs {
		fmt.Fprintf(&b, "**%s**\n: %s\n\n", e.Name, e.Doc)
	}
	fmt.Fprintf(&b, `# FILES
**%s**
: The configuration file, proxcage-config.toml(5).

**%s**
: The state of the containers (**--root**; **$XDG_RUNTIME_DIR/proxcage** for users other than root):
a directory per container with its record and lock, and the backend's own files.

**%s**
: Images and the bundles made from them (**data_dir**).

**%s**
: Templates built for upload to Proxmox VE (**[pve] template_cache**, api transport).

**/usr/libexec/proxcage/proxcage-lxc-init**
: The lxc backend's stand-in init, from the package (**make install** puts it in
/usr/local/libexec/proxcage); also found next to the proxcage binary, or in PATH.
`, config.DefaultPath, stateRoot, config.Default().DataDir, config.TemplateCacheDefault)
	return b.String()
}
