package config

import (
	"fmt"
	"strings"
)

// The reference of everything a user configures proxcage with: the keys of
// the config file, the environment variables and the bundle annotations.
// The README's "Configuration reference" and the man page
// proxcage-config.toml(5) are made from it; reference_test.go holds it to
// the structs above (every toml tag, and no other), to Default() and to the
// variables and annotations the code reads.

// Key is one key of the config file.
type Key struct {
	Name   string // dotted path as in TOML: "pve.tools.pct"
	Type   string // the TOML type: "string" or "boolean"
	Format string // what the string holds, when more than text: "Go duration"
	// Default is Default()'s value written as TOML ("" when it leaves the
	// key empty); Unset says what an empty or missing value means then.
	Default string
	Unset   string
	Doc     string
}

// Section is a TOML table of the config file; "" is the top level.
type Section struct {
	Name   string // dotted path: "pve.tools"
	Header string // as written in the file: "[[routes]]"; "" for the top level
	Doc    string
}

// Env is an environment variable proxcage reads.
type Env struct {
	Name string
	Doc  string
}

// Annotation is an org.proxcage.* annotation key.
type Annotation struct {
	Name string
	// Read: proxcage reads it from the bundle's config.json at create;
	// otherwise proxcage sets it (in state, a bundle it makes, features).
	Read    bool
	Backend string // the backend it is for; "" for all
	Doc     string
}

// TemplateCacheDefault is where the api transport builds templates when
// [pve] template_cache is unset.
const TemplateCacheDefault = "/var/cache/proxcage/vztmpl"

// Sections are the tables of the config file, in the file's order.
var Sections = []Section{
	{"", "", "The backend a container gets when nothing else picks one, and where images live."},
	{"routes", "[[routes]]", "Routing rules, tried in order: the first rule whose matchers all match the new " +
		"container picks its backend. A rule must set `backend` and at least one matcher. The bundle " +
		"annotation `org.proxcage.backend` wins over every rule; `default_backend` applies when none " +
		"matches. Later commands use the backend recorded at create. `proxcage route -b BUNDLE ID` " +
		"says which backend a container would get, and why."},
	{"pve", "[pve]", "The Proxmox VE backend, read when a container is routed to `pve` (and by `doctor` " +
		"and `templates`): a bad value fails those containers, not the others."},
	{"pve.tools", "[pve.tools]", "The PVE and LXC tools the pve backend runs: pct, pvesh and pvesm " +
		"(the pct transport), pveversion, and lxc-info and lxc-attach (both transports, on the CT's own " +
		"node). Each unset key means the tool's name looked up in PATH; set them to use wrappers or a " +
		"test double."},
}

// Keys are the keys of the config file, by section.
var Keys = []Key{
	{Name: "default_backend", Type: "string", Default: `"native"`,
		Doc: "The backend of a container that neither its bundle annotation `org.proxcage.backend` nor " +
			"a `[[routes]]` rule puts elsewhere: `native`, `pve` or `lxc`. Must not be empty."},
	{Name: "data_dir", Type: "string", Format: "path", Default: `"/var/lib/proxcage"`,
		Doc: "Where images and the bundles made from them live: `images/` (blobs by digest, " +
			"`index.json` with the names, each image unpacked once in `rootfs/`, and which containers " +
			"use which image in `users/`) and `containers/ID/` (the bundle of a container made with " +
			"`--image`, and its overlay on native)."},

	{Name: "routes.match_id", Type: "string", Format: "Go regexp", Unset: "any id",
		Doc: "A regular expression (Go's RE2 syntax) the container id must match. It is not " +
			"anchored: `^ct-` matches ids that start with `ct-`."},
	{Name: "routes.match_annotation", Type: "string", Format: "KEY=VALUE", Unset: "any annotations",
		Doc: "The bundle must have the annotation KEY with exactly the value VALUE " +
			"(e.g. `io.kubernetes.cri.sandbox-namespace=prod`)."},
	{Name: "routes.backend", Type: "string", Unset: "none; required",
		Doc: "The backend the rule picks: `native`, `pve` or `lxc`."},

	{Name: "pve.transport", Type: "string", Default: `"pct"`,
		Doc: "How proxcage talks to PVE: `pct` runs the local pct, pvesh and pvesm on a PVE node " +
			"(as root); `api` uses the REST API at `url`, from any host that reaches port 8006."},
	{Name: "pve.template_storage", Type: "string", Default: `"local"`,
		Doc: "The PVE storage (content `vztmpl`) that holds the templates made from bundle rootfs " +
			"(`.tar.zst` named by content digest, made once) and, on PVE 9.1, the OCI archives made " +
			"from images."},
	{Name: "pve.rootfs_storage", Type: "string", Default: `"local-lvm"`,
		Doc: "The PVE storage (content `rootdir`) for each CT's root disk, of the size in the " +
			"annotation `org.proxcage.rootfs-size` (GiB, default 8)."},
	{Name: "pve.bridge", Type: "string", Default: `"vmbr0"`,
		Doc: "The bridge of the CT's network interfaces that name none: the default `eth0` (DHCP) " +
			"and every `org.proxcage.netN` annotation without `bridge=`."},
	{Name: "pve.vmid_range", Type: "string", Format: "FIRST-LAST", Unset: "whatever `/cluster/nextid` gives",
		Doc: "The VMIDs new CTs may get, e.g. `10000-19999` (within 100-999999999)."},
	{Name: "pve.allow_privileged", Type: "boolean", Default: "false",
		Doc: "Permit privileged CTs. A CT is privileged only when this is true and its bundle has " +
			"`org.proxcage.privileged=true`; otherwise every CT is unprivileged."},
	{Name: "pve.features", Type: "string", Format: "pct --features", Unset: "none",
		Doc: "CT features for every CT, comma-separated: `nesting=1`, `keyctl=1`, `fuse=1`, " +
			"`mknod=1`, `mount=FSTYPE;...`, `force_rw_sys=1`. The annotation `org.proxcage.features` " +
			"replaces it for one bundle. Over the API, PVE refuses all but nesting to API tokens."},
	{Name: "pve.timeout", Type: "string", Format: "Go duration", Default: `"2m"`,
		Doc: "The limit on each pct/pvesh call (pct transport), and on each API request, task wait " +
			"and upload (api transport): `90s`, `2m`, `1h`."},
	{Name: "pve.url", Type: "string", Format: "https URL", Unset: "none; required with `transport = \"api\"`",
		Doc: "The API of any cluster node: `https://pve1.example:8006`."},
	{Name: "pve.token_id", Type: "string", Format: "USER@REALM!TOKENID", Unset: "none",
		Doc: "Log in with this API token (e.g. `proxcage@pve!runtime`); its secret comes from " +
			"`token_secret_file` or `$PROXCAGE_PVE_TOKEN_SECRET`. Set this or `user`."},
	{Name: "pve.token_secret_file", Type: "string", Format: "path", Unset: "`$PROXCAGE_PVE_TOKEN_SECRET`",
		Doc: "The file holding the token's secret. It must be mode 0600: a file that group or " +
			"others may read is refused."},
	{Name: "pve.user", Type: "string", Format: "USER@REALM", Unset: "none",
		Doc: "Log in with a ticket as this user instead of a token (e.g. `root@pam`); the ticket is " +
			"renewed every 90 minutes. Bind mounts and features other than nesting need `root@pam` " +
			"this way (or the pct transport)."},
	{Name: "pve.password_file", Type: "string", Format: "path", Unset: "none; required with `user`",
		Doc: "The file holding `user`'s password, mode 0600."},
	{Name: "pve.fingerprint", Type: "string", Format: "AB:CD:...", Unset: "none",
		Doc: "The SHA-256 fingerprint of the node's TLS certificate (`pvenode cert info`). The " +
			"certificate is pinned: a self-signed one is fine, a different one is refused. One of " +
			"`fingerprint`, `ca_file` or `insecure` is required with `url`."},
	{Name: "pve.ca_file", Type: "string", Format: "path", Unset: "none",
		Doc: "A PEM file of the CA certificates to verify the node's certificate with, when " +
			"`fingerprint` is unset."},
	{Name: "pve.insecure", Type: "boolean", Default: "false",
		Doc: "Skip TLS verification when neither `fingerprint` nor `ca_file` is set. Every call " +
			"logs a warning."},
	{Name: "pve.node", Type: "string", Unset: "`auto`",
		Doc: "The node new CTs go to over the API, or `auto`: the online node with the most free " +
			"memory that has `rootfs_storage`, `template_storage` and `bridge`. `doctor` says which " +
			"node that is."},
	{Name: "pve.template_cache", Type: "string", Format: "path", Unset: "`" + TemplateCacheDefault + "`",
		Doc: "The api transport builds templates here, then uploads each one that the node's " +
			"`template_storage` does not list yet. `proxcage templates prune` frees it."},

	{Name: "pve.tools.pct", Type: "string", Format: "path", Unset: "`pct` in PATH", Doc: "pct(1)."},
	{Name: "pve.tools.pvesh", Type: "string", Format: "path", Unset: "`pvesh` in PATH", Doc: "pvesh(1)."},
	{Name: "pve.tools.pvesm", Type: "string", Format: "path", Unset: "`pvesm` in PATH", Doc: "pvesm(1)."},
	{Name: "pve.tools.pveversion", Type: "string", Format: "path", Unset: "`pveversion` in PATH",
		Doc: "pveversion(1): the PVE release, which decides between application containers (9.1) " +
			"and templates."},
	{Name: "pve.tools.lxc_info", Type: "string", Format: "path", Unset: "`lxc-info` in PATH",
		Doc: "lxc-info(1): a CT's init pid. Over the API it is used only on the CT's own node."},
	{Name: "pve.tools.lxc_attach", Type: "string", Format: "path", Unset: "`lxc-attach` in PATH",
		Doc: "lxc-attach(1): `exec` and `ps` in a CT."},
	{Name: "pve.tools.ct_config_dir", Type: "string", Format: "path", Unset: "`/etc/pve/lxc`",
		Doc: "The node's CT config files (`VMID.conf`, pmxcfs). The pct transport writes a CT's " +
			"`lxc.environment.runtime` lines here as root, under pct's config lock: pct's `--env` " +
			"takes one variable only (an argv cannot hold the NULs that separate them). Its parent " +
			"is pmxcfs' root (`/etc/pve`): the pct transport reads `storage.cfg` (the template " +
			"storage's directory) and `datacenter.cfg` (next-id) there instead of asking pvesm and " +
			"pvesh, and a CT's status from its config file and lxc-info instead of `pct status`."},
	{Name: "pve.tools.lock_dir", Type: "string", Format: "path", Unset: "`/run/lock/lxc`",
		Doc: "Where pct takes its config locks (`pve-config-VMID.lock`), held while the env is written."},
	{Name: "pve.tools.dpkg_status", Type: "string", Format: "path", Unset: "`/var/lib/dpkg/status`",
		Doc: "dpkg's status file: the pct transport reads the node's pve-manager and pve-container " +
			"versions there (where `pveversion -v` takes them) and runs pveversion only when it " +
			"lists neither."},
}

// Envs are the environment variables proxcage reads.
var Envs = []Env{
	{EnvVar, "The config file when `--config` is not given. A file named here or with `--config` " +
		"must exist; `" + DefaultPath + "`, the default, may be absent (all defaults)."},
	{"PROXCAGE_PVE_TOKEN_SECRET", "The PVE API token's secret when `[pve] token_secret_file` is " +
		"unset. proxcage removes it from its environment once read, so pct, lxc-attach and hooks " +
		"never inherit it."},
	{"PROXCAGE_REGISTRY_CREDS", "`USER:PASSWORD` for registries (`pull`, `--image`) when `--creds` " +
		"is not given."},
	{"REGISTRY_AUTH_FILE", "An auth.json (podman's format, also Docker's config.json) tried first " +
		"for registry credentials; then `$XDG_RUNTIME_DIR/containers/auth.json`, " +
		"`$XDG_CONFIG_HOME/containers/auth.json` and `$DOCKER_CONFIG/config.json`. Their credential " +
		"helpers are run too."},
	{"XDG_RUNTIME_DIR", "For a user other than root, the default `--root` is " +
		"`$XDG_RUNTIME_DIR/proxcage`. Registry credentials: `$XDG_RUNTIME_DIR/containers/auth.json`."},
	{"XDG_CONFIG_HOME", "Registry credentials: `$XDG_CONFIG_HOME/containers/auth.json` " +
		"(default `~/.config/containers/auth.json`)."},
	{"DOCKER_CONFIG", "Registry credentials: `$DOCKER_CONFIG/config.json` " +
		"(default `~/.docker/config.json`)."},
	{"HTTPS_PROXY", "With `NO_PROXY` (and the lower-case forms): the proxy for registries and the " +
		"PVE API, as for any Go program."},
}

// Annotations are the org.proxcage.* annotation keys.
var Annotations = []Annotation{
	{Name: "org.proxcage.backend", Read: true,
		Doc: "The backend of this container (`native`, `pve` or `lxc`), over every `[[routes]]` rule " +
			"and `default_backend`."},
	{Name: "org.proxcage.vmid", Read: true, Backend: "pve",
		Doc: "The VMID the CT must get (100-999999999), checked against every CT and VM in the " +
			"cluster; otherwise proxcage picks a free one."},
	{Name: "org.proxcage.rootfs-size", Read: true, Backend: "pve",
		Doc: "The CT's root disk in GiB, a positive integer (default 8)."},
	{Name: "org.proxcage.volume-size", Read: true, Backend: "pve",
		Doc: "The size in GiB of each new volume of the CT (a positive integer, default 8): " +
			"`-v NAME:/PATH` and the image's VOLUMEs become mount point volumes on `[pve] rootfs_storage`."},
	{Name: "org.proxcage.volumes", Read: true,
		Doc: "Set on the bundle of a container made with `--image`: its volumes, JSON " +
			"(`[{\"name\",\"path\",\"ro\",\"anonymous\"}]`). native and lxc bind `DATA/volumes/NAME/_data`; " +
			"pve makes a mount point volume of each. A bundle may set it too."},
	{Name: "org.proxcage.privileged", Read: true, Backend: "pve",
		Doc: "`true` for a privileged CT; refused unless `[pve] allow_privileged = true`."},
	{Name: "org.proxcage.features", Read: true, Backend: "pve",
		Doc: "CT features (`nesting=1,keyctl=1`), in place of `[pve] features`."},
	{Name: "org.proxcage.netN", Read: true, Backend: "pve",
		Doc: "N from 0 to 31: the CT's interface netN in pct's syntax " +
			"(`name=eth0,ip=10.0.0.5/24,gw=10.0.0.1,tag=20`; `bridge` defaults to `[pve] bridge`). " +
			"Without any, the CT gets one per `linux.netDevices` entry, else `eth0` with DHCP."},
	{Name: "org.proxcage.net", Read: true, Backend: "pve",
		Doc: "`none`: the CT gets no network interface."},
	{Name: "org.proxcage.pve.vmid", Backend: "pve",
		Doc: "Set in `proxcage state`: the CT's VMID."},
	{Name: "org.proxcage.pve.node", Backend: "pve",
		Doc: "Set in `proxcage state` over the API: the node the CT is on."},
	{Name: "org.proxcage.init-pid", Backend: "lxc, pve",
		Doc: "Set in `proxcage state`: the host pid of the container's init (init.lxc, the CT's init), for nsenter; " +
			"`state`'s pid is the keeper's, the process engines wait for."},
	{Name: "org.proxcage.image.digest",
		Doc: "Set on the bundle of a container made with `--image`: the image's manifest digest. " +
			"The image counts as in use (`rmi` refuses it) until `delete` removes the container."},
	{Name: "org.proxcage.image.overrides",
		Doc: "Set on the bundle of a container made with `--image`: the command-line overrides " +
			"(command, `-e`, `-w`, `-u`, `-t`, `--annotation`), JSON, which `upgrade` applies over the next image's config."},
	{Name: "org.proxcage.version", Doc: "Set in `proxcage features`: this build's version."},
	{Name: "org.proxcage.commit", Doc: "Set in `proxcage features`: this build's commit."},
	{Name: "org.proxcage.backends", Doc: "Set in `proxcage features`: the backends this build has."},
}

// SectionOf is the section a key belongs to.
func SectionOf(key string) string {
	if i := strings.LastIndex(key, "."); i >= 0 {
		return key[:i]
	}
	return ""
}

// ShortName is a key's name inside its section.
func ShortName(key string) string { return key[strings.LastIndex(key, ".")+1:] }

// DefaultText is what the reference shows as a key's default.
func (k Key) DefaultText() string {
	if k.Default != "" {
		return "`" + k.Default + "`"
	}
	return k.Unset
}

// TypeText is the key's type with its format.
func (k Key) TypeText() string {
	if k.Format != "" {
		return k.Type + " (" + k.Format + ")"
	}
	return k.Type
}

// ReferenceMarkdown is the README's "Configuration reference" (without its
// heading): a table per section, the environment and the annotations.
func ReferenceMarkdown() string {
	var b strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, s := range Sections {
		title := "`" + s.Header + "`"
		if s.Name == "" {
			title = "Top level"
		}
		fmt.Fprintf(&b, "### %s\n\n%s\n\n| key | type | default | meaning |\n|-----|------|---------|---------|\n", title, s.Doc)
		for _, k := range Keys {
			if SectionOf(k.Name) == s.Name {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", ShortName(k.Name), cell(k.TypeText()), cell(k.DefaultText()), cell(k.Doc))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("### Environment\n\n| variable | meaning |\n|----------|---------|\n")
	for _, e := range Envs {
		fmt.Fprintf(&b, "| `$%s` | %s |\n", e.Name, cell(e.Doc))
	}
	b.WriteString("\n### Annotations\n\nRead at create from the bundle's `config.json` and `--annotation`, never from an image's labels " +
		"(see [Who decides](#who-decides-annotations-and-their-sources)):\n\n" +
		"| annotation | backend | meaning |\n|------------|---------|---------|\n")
	annotations(&b, true, func(a Annotation) string {
		return fmt.Sprintf("| %#q | %s | %s |\n", a.Name, or(a.Backend, "all"), cell(a.Doc))
	})
	b.WriteString("\nSet by proxcage:\n\n| annotation | meaning |\n|------------|---------|\n")
	annotations(&b, false, func(a Annotation) string {
		return fmt.Sprintf("| %#q | %s |\n", a.Name, cell(a.Doc))
	})
	return b.String()
}

// ManMarkdown is the body of proxcage-config.toml(5) in go-md2man's
// markdown, everything after the title line.
func ManMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# NAME
proxcage-config.toml \- the configuration file of proxcage

# SYNOPSIS
**%s**

# DESCRIPTION
proxcage reads its own configuration from the first of these that is set: the
**--config** flag, **$%s**, **%s**. The last may be absent,
which means all defaults; a file named by the first two must exist.

The file is TOML (https://toml.io). Unknown keys are errors that name the key, so a
typo never silently changes where containers run. Every key is optional but
those marked required; the defaults are those below.

It chooses the backend of each new container (**native**: Linux namespaces and
cgroups through runc's libcontainer; **pve**: a Proxmox VE CT; **lxc**: a plain
LXC container), in this order: the bundle annotation **org.proxcage.backend**,
the first matching **[[routes]]** rule, **default_backend**. **proxcage route**
shows the choice and the reason, **proxcage doctor** checks the host for every
backend the file uses.

# KEYS
`, DefaultPath, EnvVar, DefaultPath)
	for _, s := range Sections {
		title := s.Header
		if s.Name == "" {
			title = "Top level"
		}
		fmt.Fprintf(&b, "### %s\n%s\n\n", title, s.Doc)
		for _, k := range Keys {
			if SectionOf(k.Name) == s.Name {
				typ := k.Type
				if k.Format != "" {
					typ += ", " + k.Format
				}
				fmt.Fprintf(&b, "**%s** (%s; default: %s)\n: %s\n\n", ShortName(k.Name), typ, k.DefaultText(), k.Doc)
			}
		}
	}
	b.WriteString("# ENVIRONMENT\n")
	for _, e := range Envs {
		fmt.Fprintf(&b, "**%s**\n: %s\n\n", e.Name, e.Doc)
	}
	b.WriteString("# ANNOTATIONS\nRead when a container is created, from the bundle's config.json and from --annotation; " +
		"never from an image's labels (labels under org.proxcage. are dropped: only the operator sets these):\n\n")
	annotations(&b, true, func(a Annotation) string {
		return fmt.Sprintf("**%s** (%s)\n: %s\n\n", a.Name, or(a.Backend, "every backend"), a.Doc)
	})
	b.WriteString("Set by proxcage:\n\n")
	annotations(&b, false, func(a Annotation) string { return fmt.Sprintf("**%s**\n: %s\n\n", a.Name, a.Doc) })
	fmt.Fprintf(&b, `# FILES
**%s**
: The configuration file.

**%s**
: Images and the bundles made from them (**data_dir**).

**%s**
: Templates built for upload (**[pve] template_cache**, api transport).

# EXAMPLE
Containers whose id starts with ct- become Proxmox VE CTs on this node; all
others run natively:

`+"```"+`
default_backend = "native"

[[routes]]
match_id = "^ct-"
backend = "pve"

[pve]
transport = "pct"
template_storage = "local"
rootfs_storage = "local-lvm"
bridge = "vmbr0"
`+"```"+`

# SEE ALSO
**proxcage(8)**, **proxcage-route(8)**, **proxcage-doctor(8)**, **pct(1)**, **lxc.container.conf(5)**
`, DefaultPath, Default().DataDir, TemplateCacheDefault)
	return b.String()
}

func annotations(b *strings.Builder, read bool, line func(Annotation) string) {
	for _, a := range Annotations {
		if a.Read == read {
			b.WriteString(line(a))
		}
	}
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
