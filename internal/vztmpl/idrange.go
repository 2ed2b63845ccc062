package vztmpl

import (
	"context"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Owner is a file of a rootfs and its numeric owner.
type Owner struct {
	Path     string // relative to the rootfs, "/"-rooted ("/etc/shadow")
	UID, GID uint32
}

// FirstOwnerOutside finds, in the walk order the template uses, the first
// file whose uid or gid is not below limit. PVE extracts a template for an
// unprivileged CT inside the CT's user namespace (65536 ids), where tar
// cannot give such a file its owner: the create fails there, after the
// upload, with tar's "Cannot change ownership". Checking first turns that
// into one clear error before anything is made. Symlinks are not followed.
func FirstOwnerOutside(ctx context.Context, rootfs string, limit uint32) (Owner, bool, error) {
	var found Owner
	ok := false
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Uid >= limit || st.Gid >= limit {
			rel, _ := filepath.Rel(rootfs, p)
			found, ok = Owner{Path: "/" + filepath.ToSlash(rel), UID: st.Uid, GID: st.Gid}, true
			if rel == "." {
				found.Path = "/"
			}
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return Owner{}, false, err
	}
	return found, ok, nil
}
