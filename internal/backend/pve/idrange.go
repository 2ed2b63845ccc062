package pve

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/proxcage/proxcage/internal/errdefs"
	"github.com/proxcage/proxcage/internal/spec"
	"github.com/proxcage/proxcage/internal/vztmpl"
)

// unprivilegedIDs is the size of PVE's default id map for unprivileged CTs
// (pve-container src/PVE/LXC.pm parse_id_maps: ct 0 -> host 100000, 65536
// ids), the map proxcage's CTs get.
const unprivilegedIDs = 65536

// planUnprivileged: the plan's unprivileged option (PVE's create default is
// unprivileged too).
func planUnprivileged(p *Plan) bool {
	for _, o := range p.Options {
		if o.Key == "unprivileged" {
			return o.Value != "0"
		}
	}
	return true
}

// checkIDRange refuses, before anything is made, a rootfs that an
// unprivileged CT cannot hold: PVE extracts the template inside the CT's
// user namespace (src/PVE/LXC/Create.pm restore_tar_archive, and
// restore_oci_archive for an image), where an owner id >= 65536 does not
// exist, and the create task dies in tar ("Cannot change ownership to uid
// N, gid M: Invalid argument") after the template was uploaded.
func checkIDRange(ctx context.Context, rootfs string) error {
	o, found, err := vztmpl.FirstOwnerOutside(ctx, rootfs, unprivilegedIDs)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err, "read the rootfs owners")
	}
	if !found {
		return nil
	}
	return &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
		Msg: fmt.Sprintf("rootfs %s is owned by uid %d, gid %d: an unprivileged CT has ids 0-%d only (PVE unpacks the template inside the CT's user namespace)",
			o.Path, o.UID, o.GID, unprivilegedIDs-1),
		Hint: fmt.Sprintf("chown the image's or rootfs's files below %d, or run a privileged CT (allow_privileged = true in [pve] and the annotation %s=true)",
			unprivilegedIDs, AnnotationPrivileged)}
}

// warnBindOwners says, once per mount, what an unprivileged CT makes of a
// writable bind mount: PVE bind-mounts the host directory as it is
// (src/PVE/LXC.pm mountpoint_mount/bindmount), so inside the CT its host
// owners outside 100000-165535 show as nobody, and the CT's root (host uid
// 100000) may write it only where the host permissions let that uid write.
// Only when proxcage runs on the node (the source is local); a warning, not
// an error: reading works, and the bundle may not need to write.
func warnBindOwners(log *slog.Logger, s *specs.Spec) {
	for _, m := range s.Mounts {
		if !spec.IsBind(m) || slices.Contains(m.Options, "ro") {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(m.Source, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue // not a directory: not an mpN bind (or refused elsewhere)
		}
		mapped := st.Uid >= unprivilegedRoot && st.Uid < unprivilegedRoot+unprivilegedIDs
		// The CT's root writes where its host uid may: a world-writable
		// directory (podman's shm tmpfs is 1777) whoever owns it.
		writable := st.Mode&0o002 != 0 || (st.Uid == unprivilegedRoot && st.Mode&0o200 != 0) ||
			(st.Gid == unprivilegedRoot && st.Mode&0o020 != 0)
		if writable {
			continue
		}
		log.Warn(fmt.Sprintf("bind mount %s -> %s: the unprivileged CT sees host uid %d as %s and its root (host uid %d) cannot write there; chown it to %d:%d, mount it ro, or use a privileged CT",
			m.Source, m.Destination, st.Uid, ctOwner(st.Uid, mapped), unprivilegedRoot, unprivilegedRoot, unprivilegedRoot))
	}
}

// unprivilegedRoot is the host uid/gid of an unprivileged CT's root.
const unprivilegedRoot = 100000

func ctOwner(uid uint32, mapped bool) string {
	if mapped {
		return fmt.Sprintf("uid %d", uid-unprivilegedRoot)
	}
	return "nobody"
}
