#!/usr/bin/env bash
# find-go.sh: prints the path of a Go toolchain at least as new as go.mod's
# `go` line, or exits 1 saying what it wants. Looks at $GO, the go in PATH,
# /usr/local/go (the upstream tarball) and /usr/local/lib/proxcage-go (where
# scripts/install-go.sh puts the pinned toolchain), in that order. The
# Makefile and install-deps.sh use it, so `make` works with no Go on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$here/../go.mod")
[ -n "$want" ] || { echo "find-go: no go line in go.mod" >&2; exit 2; }
prefix=${PROXCAGE_GO_PREFIX:-/usr/local/lib/proxcage-go}

for go in "${GO:-}" "$(command -v go || true)" /usr/local/go/bin/go "$prefix/bin/go"; do
	[ -n "$go" ] && [ -x "$go" ] || continue
	# GOTOOLCHAIN=local, outside any module: the version of this binary,
	# not of a toolchain it would download and switch to.
	have=$(cd / && GOTOOLCHAIN=local "$go" env GOVERSION 2>/dev/null) || continue
	have=${have#go}
	have=${have%%[!0-9.]*} # go1.27rc1 -> 1.27
	if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" = "$want" ]; then
		echo "$go"
		exit 0
	fi
done
echo "find-go: no Go >= $want (go.mod) found: run ./scripts/install-deps.sh build, or put one on PATH" >&2
exit 1
