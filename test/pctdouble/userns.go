package main

// Unprivileged CTs as PVE runs them: the id map of PVE::LXC::parse_id_maps
// (pve-container src/PVE/LXC.pm), template extraction inside that user
// namespace (src/PVE/LXC/Create.pm restore_tar_archive_command, through
// lxc-usernsexec as PVE::LXC::userns_command builds it), and new volumes
// owned by the mapped root (LXC.pm create_disks / alloc_disk).

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// idMapEntry is one lxc.idmap line: type (u|g), first CT id, first host id,
// count.
type idMapEntry struct {
	typ            string
	ct, host, size int
}

func (e idMapEntry) arg() string { return fmt.Sprintf("%s:%d:%d:%d", e.typ, e.ct, e.host, e.size) }

var idMapRE = regexp.MustCompile(`^([ug])\s+(\d+)\s+(\d+)\s+(\d+)\s*$`)

// parseIDMaps is PVE::LXC::parse_id_maps: the raw lxc.idmap entries, else
// for an unprivileged CT the default map 0 -> 100000, 65536 ids. It returns
// the map and the host ids of the CT's root (0 for a privileged CT).
func parseIDMaps(c *ctConf) ([]idMapEntry, int, int, error) {
	var m []idMapEntry
	rootUID, rootGID := 0, 0
	for _, r := range c.Raw {
		if r[0] != "lxc.idmap" {
			continue
		}
		g := idMapRE.FindStringSubmatch(r[1])
		if g == nil {
			return nil, 0, 0, fmt.Errorf("failed to parse idmap: %s", r[1])
		}
		ct, _ := strconv.Atoi(g[2])
		host, _ := strconv.Atoi(g[3])
		n, _ := strconv.Atoi(g[4])
		m = append(m, idMapEntry{g[1], ct, host, n})
		if ct == 0 {
			if g[1] == "u" {
				rootUID = host
			} else {
				rootGID = host
			}
		}
	}
	if len(m) == 0 && c.Keys["unprivileged"] == "1" {
		m = []idMapEntry{{"u", 0, 100000, 65536}, {"g", 0, 100000, 65536}}
		rootUID, rootGID = 100000, 100000
	}
	return m, rootUID, rootGID, nil
}

// hasCustomIDMap: raw lxc.idmap lines replace the default map in the LXC
// config (update_lxc_config's $custom_idmap).
func hasCustomIDMap(c *ctConf) bool {
	for _, r := range c.Raw {
		if r[0] == "lxc.idmap" {
			return true
		}
	}
	return false
}

// usernsCommand is PVE::LXC::userns_command.
func usernsCommand(m []idMapEntry) []string {
	if len(m) == 0 {
		return nil
	}
	cmd := []string{"lxc-usernsexec"}
	for _, e := range m {
		cmd = append(cmd, "-m", e.arg())
	}
	return append(cmd, "--")
}

// checkSubIDs: lxc-usernsexec and lxc-start map ids with newuidmap and
// newgidmap, which allow root only the ranges /etc/subuid and /etc/subgid
// grant it. A PVE node has "root:100000:65536" in both; a host without them
// gets one line saying so instead of LXC's newuidmap noise.
func checkSubIDs(m []idMapEntry) error {
	for _, e := range m {
		file := "/etc/subuid"
		if e.typ == "g" {
			file = "/etc/subgid"
		}
		if !subIDGranted(file, e.host, e.size) {
			return fmt.Errorf("pctdouble: unprivileged CTs need root:%d:%d in %s, as on a PVE node (newuidmap/newgidmap grant root only those ids); add it, or create the CT with --unprivileged 0", e.host, e.size, file)
		}
	}
	return nil
}

func subIDGranted(file string, start, size int) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) != 3 || (f[0] != "root" && f[0] != "0") {
			continue
		}
		s, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && s <= start && start+size <= s+n {
			return true
		}
	}
	return false
}

// commonTarFlags is PVE::Storage::Plugin's @COMMON_TAR_FLAGS.
var commonTarFlags = []string{"--one-file-system", "-p", "--sparse", "--numeric-owner", "--acls",
	"--xattrs", "--xattrs-include=user.*", "--xattrs-include=security.capability",
	"--warning=no-file-ignored", "--warning=no-xattr-write"}

// tarCompressionOption is Create.pm's tar_compression_option.
func tarCompressionOption(archive string) (string, error) {
	m := regexp.MustCompile(`\.tar(\.[^.]+)?$`).FindStringSubmatch(archive)
	if m == nil {
		return "", fmt.Errorf("file does not look like a template archive: %s", archive)
	}
	if m[1] == "" {
		return "", nil
	}
	opt, ok := map[string]string{".gz": "-z", ".bz2": "-j", ".xz": "-J", ".lzo": "--lzop", ".zst": "--zstd"}[m[1]]
	if !ok {
		return "", fmt.Errorf("unrecognized compression format: %s", m[1])
	}
	return opt, nil
}

// extractTemplate is Create.pm's restore_tar_archive for a template: the
// root directory owned by the CT's mapped root (as create_disks leaves a new
// volume), then tar inside the CT's user namespace reading the archive on
// stdin. A member owned by an id outside the map fails there, with tar's own
// "Cannot change ownership to uid 70000, gid 0: Invalid argument" on stderr
// and run_command's "command '...' failed: exit code 2".
func extractTemplate(archive, root string, c *ctConf) error {
	m, rootUID, rootGID, err := parseIDMaps(c)
	if err != nil {
		return err
	}
	if err := checkSubIDs(m); err != nil {
		return err
	}
	compression, err := tarCompressionOption(archive)
	if err != nil {
		return err
	}
	if err := os.Chown(root, rootUID, rootGID); err != nil {
		return err
	}
	if err := checkReachable(root, rootUID, rootGID); err != nil {
		return err
	}
	cmd := append(usernsCommand(m), "tar", "xpf", "-")
	if compression != "" {
		cmd = append(cmd, compression)
	}
	cmd = append(cmd, "--totals")
	cmd = append(cmd, commonTarFlags...)
	cmd = append(cmd, "-C", root, "--skip-old-files", "--anchored", "--exclude", "./dev/*")
	in, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("failed to open '%s': %v", archive, err)
	}
	defer in.Close()
	fmt.Printf("extracting archive '%s'\n", archive)
	x := exec.Command(cmd[0], cmd[1:]...)
	var out, errOut bytes.Buffer
	x.Stdin, x.Stdout, x.Stderr = in, &out, &errOut
	err = x.Run()
	// run_command prints the command's stderr as it comes; tar --totals
	// writes "Total bytes read" there.
	sc := bufio.NewScanner(&errOut)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Total bytes read") {
			fmt.Println(sc.Text())
		} else {
			fmt.Fprintln(os.Stderr, sc.Text())
		}
	}
	fmt.Print(out.String())
	if err != nil {
		return fmt.Errorf("command '%s' failed: %s", cmd2string(cmd), exitText(err))
	}
	return nil
}

// chownNewVolume is create_disks' chown of a newly allocated volume to the
// CT's mapped root (PVE formats it with root_owner= or chowns the subvol):
// otherwise the unprivileged CT's root could not write its own mount point.
// mp is an mpN value whose volume the double just allocated.
func chownNewVolume(vmid int, c *ctConf, mp string) error {
	vol := strings.TrimPrefix(strings.SplitN(mp, ",", 2)[0], "volume=")
	sid, name, ok := strings.Cut(vol, ":")
	if !ok || strings.HasPrefix(vol, "/") || !strings.HasPrefix(name, fmt.Sprintf("vm-%d-", vmid)) {
		return nil // a bind mount or someone else's volume: left as it is
	}
	_, uid, gid, err := parseIDMaps(c)
	if err != nil {
		return err
	}
	return os.Chown(statePath("volumes", sid, name), uid, gid)
}

// chownNewVolumes does chownNewVolume for every mount point of a CT being
// created (all its vm-VMID- volumes are new then).
func chownNewVolumes(vmid int, c *ctConf) error {
	for k, v := range c.Keys {
		if strings.HasPrefix(k, "mp") {
			if err := chownNewVolume(vmid, c, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkReachable: the CT's mapped root must be able to walk to its rootfs
// (on a PVE node /var/lib/lxc is 0755). A state dir below a 0700 temp dir
// (go test's t.TempDir) fails in tar or lxc-start with a bare "Permission
// denied"; this says which directory and what to do.
func checkReachable(path string, uid, gid int) error {
	if uid == 0 {
		return nil
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			return err
		}
		ok := st.Mode&0o001 != 0 || (int(st.Uid) == uid && st.Mode&0o100 != 0) || (int(st.Gid) == gid && st.Mode&0o010 != 0)
		if !ok {
			return fmt.Errorf("pctdouble: the unprivileged CT's root (host uid %d) cannot reach %s: %s is mode %04o; make the state dir's parents searchable (chmod o+x), as /var/lib/lxc is on a PVE node", uid, path, dir, st.Mode&0o7777)
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

// exitText is how PVE::Tools::run_command words a failed command.
func exitText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("received signal %d", ws.Signal())
		}
		return fmt.Sprintf("exit code %d", ee.ExitCode())
	}
	return err.Error()
}

// shiftOwners maps a tree unpacked by the double as host root (an OCI
// image's layers, which PVE unpacks inside the user namespace with
// proxmox-oci) into the CT's id range, as an unpack inside the namespace
// would have written it. An id outside the map fails as the chown there
// would (EINVAL).
func shiftOwners(root string, c *ctConf) error {
	m, _, _, err := parseIDMaps(c)
	if err != nil || len(m) == 0 {
		return err
	}
	mapID := func(id int, typ string) (int, bool) {
		for _, e := range m {
			if e.typ == typ && id >= e.ct && id < e.ct+e.size {
				return e.host - e.ct + id, true
			}
		}
		return 0, false
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{} // hard links: shift each inode once
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		if k := (inode{st.Dev, st.Ino}); seen[k] {
			return nil
		} else {
			seen[k] = true
		}
		uid, okU := mapID(int(st.Uid), "u")
		gid, okG := mapID(int(st.Gid), "g")
		if !okU || !okG {
			rel, _ := filepath.Rel(root, p)
			return fmt.Errorf("Error while extracting OCI image: IO error: failed to set ownerships to uid=%d, gid=%d for `%s`: Invalid argument (os error 22)", st.Uid, st.Gid, rel)
		}
		mode := st.Mode & 0o7777
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		// chown clears setuid/setgid; the unpack inside the namespace
		// would have set them after the owner.
		if d.Type()&fs.ModeSymlink == 0 && mode&0o6000 != 0 {
			return syscall.Chmod(p, mode)
		}
		return nil
	})
}
