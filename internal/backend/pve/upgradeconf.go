package pve

import (
	"errors"
	"strconv"
	"strings"
)

// imageKeys are the CT config keys an OCI image sets at create
// (pve-container 6.1.10 Create.pm restore_oci_archive: entrypoint and
// cmode from Entrypoint+Cmd, env as lxc.environment.runtime lines,
// lxc.init.uid/gid/groups from User, lxc.init.cwd from WorkingDir,
// lxc.signal.halt from StopSignal), with the rootfs that holds the
// image's files. An upgrade moves exactly these from the scratch CT to
// the CT it upgrades; every other line (NICs with their MACs, mount
// points, hostname, tags, description, resources, features) stays.
var imageKeys = []string{
	"rootfs", "entrypoint", "cmode", "env", envLineKey,
	"lxc.init.uid", "lxc.init.gid", "lxc.init.groups", "lxc.init.cwd", "lxc.signal.halt",
}

func isImageLine(l string) bool {
	for _, k := range imageKeys {
		if strings.HasPrefix(l, k+":") || strings.HasPrefix(l, k+" ") || strings.HasPrefix(l, k+"=") {
			return true
		}
	}
	return false
}

// mainSection splits a CT config file at its first section header
// ([snapshot], [pve:pending]).
func mainSection(conf string) (head []string, rest []string) {
	lines := strings.Split(strings.TrimSuffix(conf, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "[") {
			return lines[:i], lines[i:]
		}
	}
	return lines, nil
}

// swapImage is the config half of an upgrade, pure: target (the CT
// upgraded) gets scratch's image lines in place of its own; scratch gets
// target's old rootfs line in place of its own (so that destroying the
// scratch CT can never free the volume target now runs on). Both main
// sections must be free of a lock; sections ([snapshots], pending) are
// kept as they are.
func swapImage(target, scratch string) (newTarget, newScratch string, err error) {
	th, trest := mainSection(target)
	sh, srest := mainSection(scratch)
	for _, l := range append(append([]string{}, th...), sh...) {
		if m := pctLockLine.FindStringSubmatch(l); len(m) > 1 && m[1] != "" {
			return "", "", errors.New("CT is locked (" + m[1] + ")")
		}
	}
	var oldRootfs, newRootfs string
	var image []string
	for _, l := range sh {
		if strings.HasPrefix(l, "rootfs:") {
			newRootfs = l
		}
		if isImageLine(l) {
			image = append(image, l)
		}
	}
	if newRootfs == "" {
		return "", "", errors.New("the scratch CT's config has no rootfs")
	}
	// target: drop its image lines, then put scratch's where its rootfs
	// was (keys), and the lxc.* ones after its other lxc.* lines, as
	// write_pct_config orders them.
	var keys, lxc []string
	for _, l := range image {
		if strings.HasPrefix(l, "lxc.") {
			lxc = append(lxc, l)
		} else {
			keys = append(keys, l)
		}
	}
	var out []string
	placed := false
	for _, l := range th {
		if strings.HasPrefix(l, "rootfs:") {
			oldRootfs = l
		}
		if isImageLine(l) {
			if strings.HasPrefix(l, "rootfs:") && !placed {
				out = append(out, keys...)
				placed = true
			}
			continue
		}
		out = append(out, l)
	}
	if oldRootfs == "" {
		return "", "", errors.New("the CT's config has no rootfs")
	}
	n := len(out)
	for n > 0 && strings.TrimSpace(out[n-1]) == "" {
		n--
	}
	tail := append([]string{}, out[n:]...)
	out = append(append(out[:n], lxc...), tail...)
	newTarget = strings.Join(append(out, trest...), "\n") + "\n"

	var sout []string
	for _, l := range sh {
		if strings.HasPrefix(l, "rootfs:") {
			l = oldRootfs
		}
		sout = append(sout, l)
	}
	newScratch = strings.Join(append(sout, srest...), "\n") + "\n"
	return newTarget, newScratch, nil
}

// rootfsVolume is the volume id of a `rootfs:` value (before the first
// comma).
func rootfsVolume(value string) string {
	v, _, _ := strings.Cut(strings.TrimSpace(value), ",")
	return v
}

// ownsVolume is PVE's owner rule for a volume name (vm-VMID-..., or
// subvol-/base-VMID-): pve-storage parse_volname's owner.
func ownsVolume(vmid int, volid string) bool {
	_, name, _ := strings.Cut(volid, ":")
	name = name[strings.LastIndex(name, "/")+1:]
	for _, p := range []string{"vm-", "subvol-", "base-"} {
		if strings.HasPrefix(name, p+strconv.Itoa(vmid)+"-") {
			return true
		}
	}
	return false
}
