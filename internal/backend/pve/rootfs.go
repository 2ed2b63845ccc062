package pve

import "os"

// ReadsRootfsOnly implements backend.RootfsReader: a CT's rootfs is made
// from a template of the bundle's (or from the image itself), so the
// bundle's rootfs is only read.
func (b *Backend) ReadsRootfsOnly() bool { return true }

// sourceKind probes a bind mount's source on this node (following
// symlinks, as PVE's -d test does).
func sourceKind(path string) SourceKind {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return SourceMissing
	case fi.IsDir():
		return SourceDir
	case fi.Mode()&os.ModeDevice != 0:
		return SourceDevice
	}
	return SourceFile
}
