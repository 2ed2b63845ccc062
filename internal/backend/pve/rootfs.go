package pve

// ReadsRootfsOnly implements backend.RootfsReader: a CT's rootfs is made
// from a template of the bundle's (or from the image itself), so the
// bundle's rootfs is only read.
func (b *Backend) ReadsRootfsOnly() bool { return true }
