package pve

import (
	"context"
	"fmt"

	"github.com/proxcage/proxcage/internal/errdefs"
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
