#!/usr/bin/env bash
# Image benchmark, in one run with hyperfine:
#
#  proxcage   pull + unpack of a multi-layer image from a local registry
#             (`proxcage run --rm --image REF -- /bin/true` on an empty data
#             dir: it includes one container run, about 20 ms)
#  skopeo+umoci  `skopeo copy docker://REF oci:DIR:1` + `umoci unpack`
#  proxcage-warm the same run again with the image stored and unpacked:
#             no pull, no unpack
#
# The image is test/debian:1 (test/testimages): a Debian minbase rootfs in
# three gzip layers, served by test/testimages/cmd/testregistry on 127.0.0.1.
#
#   bench/image.sh PROXCAGE ROOTFS
#
# Env: RUNS (5), SCRATCH (default mktemp under /var/tmp), BENCH_OUT=DIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-5}
PROXCAGE=$(realpath "$1")
ROOTFS=$(realpath "$2")
for c in hyperfine skopeo umoci jq; do
	command -v "$c" >/dev/null || { echo "$c missing: apt-get install $c" >&2; exit 2; }
done

SCRATCH=${SCRATCH:-$(mktemp -d /var/tmp/proxcage-bench-image.XXXXXX)}
cleanup() {
	[ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

(cd "$REPO" && go build -o "$SCRATCH/testregistry" ./test/testimages/cmd/testregistry)
"$SCRATCH/testregistry" -port 0 -rootfs "$ROOTFS" >"$SCRATCH/refs" &
REG_PID=$!
for _ in $(seq 300); do
	grep -q debian "$SCRATCH/refs" 2>/dev/null && break
	sleep 0.1
done
REF=$(grep debian "$SCRATCH/refs")
echo "image: $REF ($(du -sh "$ROOTFS" | cut -f1) rootfs)"

printf 'data_dir = "%s/data"\n' "$SCRATCH" >"$SCRATCH/cold.toml"
printf 'data_dir = "%s/warm"\n' "$SCRATCH" >"$SCRATCH/warm.toml"
PX="$PROXCAGE --root $SCRATCH/run"
$PX --config "$SCRATCH/warm.toml" run --rm -q --image "$REF" -- /bin/true

hyperfine --runs "$RUNS" --export-json "$SCRATCH/h.json" \
	--prepare "rm -rf $SCRATCH/data" -n proxcage \
	"$PX --config $SCRATCH/cold.toml run --rm -q --image $REF -- /bin/true" \
	--prepare "rm -rf $SCRATCH/oci $SCRATCH/bundle" -n skopeo+umoci \
	"skopeo copy -q --src-tls-verify=false docker://$REF oci:$SCRATCH/oci:1 && umoci unpack --image $SCRATCH/oci:1 $SCRATCH/bundle >/dev/null" \
	--prepare "true" -n proxcage-warm \
	"$PX --config $SCRATCH/warm.toml run --rm -q --image $REF -- /bin/true"

jq -r '.results[] | "\(.command)\t\(.median)"' "$SCRATCH/h.json" >"$SCRATCH/medians"
p=$(awk -F'\t' '$1=="proxcage"{print $2}' "$SCRATCH/medians")
s=$(awk -F'\t' '$1=="skopeo+umoci"{print $2}' "$SCRATCH/medians")
w=$(awk -F'\t' '$1=="proxcage-warm"{print $2}' "$SCRATCH/medians")
printf 'pull+unpack: proxcage %.3f s, skopeo+umoci %.3f s: ratio %.2fx\n' "$p" "$s" "$(echo "$p / $s" | bc -l)"
printf 'second run of the same image (no pull, no unpack): %.3f s\n' "$w"
if [ -n "${BENCH_OUT:-}" ]; then
	mkdir -p "$BENCH_OUT" && cp "$SCRATCH/h.json" "$BENCH_OUT/image.json"
fi
