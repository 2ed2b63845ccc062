// Package vztmpl turns a container rootfs directory into a Proxmox VE
// container template (a "vztmpl": a zstd-compressed tar archive) and keeps a
// content-addressed cache of such templates in a directory.
//
// The archive is canonical: the same rootfs tree (contents, modes, owners,
// mtimes to the second, link targets, device numbers, xattrs) always gives
// the same tar stream, whatever the rootfs path, inode numbers, creation
// order or filesystem. That is what lets a template be named by the digest
// of its stream, and Ensure skip all compression when nothing changed.
//
// The canonical stream:
//
//   - entries in lexical walk order, named "./", "./bin/", "./bin/busybox"
//     (the layout of PVE's own templates), directories ending in "/";
//   - PAX format; mtime truncated to seconds, access/change times zero;
//     numeric uid/gid only (no user or group names: the rootfs's
//     /etc/passwd, not the host's, gives ids their meaning);
//   - setuid, setgid and sticky bits kept;
//   - symlinks archived as links, never followed;
//   - the first path of a multiply-linked inode is a regular entry, later
//     paths are hardlink entries pointing to it;
//   - character and block devices with their major/minor numbers, FIFOs;
//   - xattrs as "SCHILY.xattr.NAME" PAX records (what GNU tar --xattrs
//     reads), none when the filesystem does not support xattrs;
//   - sockets are skipped: tar cannot represent them and they are only
//     meaningful while their server runs.
//
// The digest names the uncompressed stream, so a template's name does not
// depend on the compressor; the compressed bytes are deterministic for a
// given version of the zstd encoder.
package vztmpl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/proxcage/proxcage/internal/atomicfile"
)

const (
	// digestPrefix marks the digest algorithm, OCI style.
	digestPrefix = "sha256:"
	// namePrefix and nameSuffix follow PVE's NAME-VERSION_ARCH.tar.zst
	// convention closely enough for `pct create` and the PVE GUI, while the
	// prefix makes our files easy to tell apart from downloaded ones.
	namePrefix = "proxcage-"
	nameSuffix = "_amd64.tar.zst"
	// tmpPrefix starts every temp file Ensure creates; the leading dot hides
	// it from PVE's template listing.
	tmpPrefix = ".proxcage-tmp-"
)

// StaleTempAge is how old a temp file must be before a prune may delete it.
// A live Ensure writes continuously, so its temp file is never this old.
const StaleTempAge = time.Hour

// templateName matches exactly the names FileName produces, so a prune
// never touches a file proxcage did not create.
var templateName = regexp.MustCompile(`^` + regexp.QuoteMeta(namePrefix) + `[0-9a-f]{16}` + regexp.QuoteMeta(nameSuffix) + `$`)

// IsName reports whether name is a template file name FileName makes.
func IsName(name string) bool { return templateName.MatchString(name) }

// IsTempName reports whether name is one of Ensure's temp files.
func IsTempName(name string) bool { return strings.HasPrefix(name, tmpPrefix) }

// TempDead reports whether temp file name's writer is gone (its name holds
// the writer's proc.Stamp). Temp files named before stamps never are: an
// age limit (StaleTempAge) is all that tells them dead.
func TempDead(name string) bool { return atomicfile.Dead(name, tmpPrefix) }

// SweepDeadTemps removes from dir the temp files of dead writers and
// returns their names (best effort).
func SweepDeadTemps(dir string) []string { return atomicfile.SweepDead(dir, tmpPrefix) }

// Digest returns "sha256:<hex>" of the canonical uncompressed tar stream of
// rootfs, the stream Write compresses. It reads the whole tree but does no
// compression, so it is the cheap way to ask "is this template cached?".
func Digest(ctx context.Context, rootfs string) (string, error) {
	h := sha256.New()
	if err := writeTar(ctx, rootfs, h); err != nil {
		return "", err
	}
	return digestPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

// Write writes the canonical tar stream of rootfs, zstd-compressed (default
// level, parallel over all CPUs), to w. On error the zstd frame is left
// unterminated, so partial output never decompresses cleanly; still, write
// to a temp file (as Ensure does) where a partial file would matter.
func Write(ctx context.Context, rootfs string, w io.Writer) error {
	return writeZstd(ctx, rootfs, w, nil)
}

// windowSize is the zstd window; it shapes the output, so changing it
// changes every template's bytes (not its name: names digest the tar).
const windowSize = 2 << 20

// encoderConcurrency is the number of zstd workers. At least 2 because with
// 1 the encoder falls back to its serial stream mode, whose output differs
// from the parallel mode's: the template bytes would depend on the CPU
// count. With concurrent blocks the output is the same for any count >= 2.
// A variable so tests can check exactly that.
var encoderConcurrency = func() int { return max(runtime.GOMAXPROCS(0), 2) }

// writeZstd compresses the canonical stream of rootfs to w; if sum is not
// nil it also receives the uncompressed stream (Ensure uses it to check the
// rootfs did not change since the digest was taken).
func writeZstd(ctx context.Context, rootfs string, w io.Writer, sum io.Writer) error {
	gw := &gateWriter{w: w}
	enc, err := zstd.NewWriter(gw,
		// The fastest level: a template is a cache entry written on the
		// create path, so conversion time matters more than size. On a
		// Debian minbase rootfs it converts 1.11x as fast as
		// `tar | zstd -T0` (level 3) for a 6% larger file; at level 3 this
		// encoder reached only 0.91x.
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(encoderConcurrency()),
		// Without this a stream uses at most ~2 goroutines whatever the
		// concurrency; with it the input is split into independent jobs
		// compressed in parallel, like `zstd -T0`.
		zstd.WithConcurrentBlocks(true),
		// The zstd CLI's window at level 3. A parallel job is four windows,
		// so this gives 8 MiB jobs instead of 32 MiB: a small rootfs (an
		// Alpine one is ~8 MiB) still spreads over several cores, and
		// smaller buffers stay in cache. On a Debian minbase rootfs it was
		// ~18% faster than the 8 MiB default for ~2% larger output.
		zstd.WithWindowSize(windowSize),
	)
	if err != nil {
		return err
	}
	var dst io.Writer = enc
	if sum != nil {
		dst = io.MultiWriter(sum, enc)
	}
	if err := writeTar(ctx, rootfs, dst); err != nil {
		// Close releases the encoder's goroutines; the gate keeps it from
		// appending a well-formed frame end to a truncated archive.
		gw.off.Store(true)
		_ = enc.Close()
		return err
	}
	return enc.Close()
}

// gateWriter forwards to w until off is set, then discards.
type gateWriter struct {
	w   io.Writer
	off atomic.Bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	if g.off.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// FileName returns the template file name for a digest from Digest:
// "proxcage-<first 16 hex digits>_amd64.tar.zst". 64 bits of the digest
// keep names short in PVE's GUI while collisions stay out of reach for a
// local cache.
func FileName(digest string) string {
	h := strings.TrimPrefix(digest, digestPrefix)
	if len(h) > 16 {
		h = h[:16]
	}
	return namePrefix + h + nameSuffix
}

// Ensure makes sure dir holds the template of rootfs and returns its path
// and digest. If dir/FileName(digest) already exists it returns at once with
// cached=true, after one read pass over rootfs and no compression.
// Otherwise it writes a temp file in dir, fsyncs it and renames it into
// place, so the template path never holds a partial file; cached=false.
//
// On any error, including ctx being cancelled, the temp file is removed.
// If rootfs changes between the digest and the write pass, Ensure fails
// rather than store content under a name that does not describe it.
//
// Concurrent calls for the same rootfs are safe: each writes its own temp
// file and only one rename wins; the others discard theirs and report
// cached=true, since the file at path is not the one they wrote.
func Ensure(ctx context.Context, rootfs, dir string) (path, digest string, cached bool, err error) {
	digest, err = Digest(ctx, rootfs)
	if err != nil {
		return "", "", false, err
	}
	path = filepath.Join(dir, FileName(digest))
	if ok, err := isTemplate(path); err != nil || ok {
		return path, digest, ok, err
	}

	// A writer that was killed left its temp file: its name says whose
	// (proc.Stamp), and that writer is gone, so the file goes now.
	SweepDeadTemps(dir)
	// Templates are world-readable like the ones PVE downloads; durable,
	// or a crash could leave the name on a partial file Ensure would then
	// trust; not replaced, so concurrent Ensures keep one inode and mtime.
	var werr error
	err = atomicfile.WriteFrom(path, atomicfile.Options{Perm: 0o644, Durable: true, NoReplace: true, TempPrefix: tmpPrefix},
		func(w io.Writer) error {
			h := sha256.New()
			werr = writeZstd(ctx, rootfs, w, h)
			if werr != nil {
				return werr
			}
			if got := digestPrefix + hex.EncodeToString(h.Sum(nil)); got != digest {
				werr = fmt.Errorf("vztmpl: rootfs %s changed while the template was written (digest %s, then %s)", rootfs, digest, got)
				return werr
			}
			werr = ctx.Err()
			return werr
		})
	switch {
	case werr != nil:
		return "", "", false, werr
	case errors.Is(err, fs.ErrExist):
		// Another Ensure got there first with the same content.
		return path, digest, true, nil
	case err != nil:
		return "", "", false, fmt.Errorf("vztmpl: %w", err)
	}
	return path, digest, false, nil
}

// isTemplate reports whether path is an existing template file. Anything
// else at that name (a directory, a symlink) is an error rather than
// something to overwrite or trust.
func isTemplate(path string) (bool, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("vztmpl: %w", err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("vztmpl: %s exists and is not a regular file", path)
	}
	return true, nil
}
