#!/usr/bin/env bash
# Installs what proxcage needs on Debian 12. `build`: the compiler side.
# `test`: also the real peers the tests run against (runc, crun, podman,
# containerd, LXC, hyperfine, ...). Skips apt when everything is present.
set -euo pipefail
what=${1:-build}
pkgs=(gcc make pkg-config libseccomp-dev git)
if [ "$what" = test ]; then
  pkgs+=(runc crun lxc busybox-static podman conmon skopeo umoci uidmap containerd hyperfine debootstrap zstd iproute2 procps python3 bsdutils util-linux)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  echo "install-deps: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "install-deps: add /usr/local/go/bin to PATH" >&2
  else
    echo "install-deps: Go >= 1.26 is required (https://go.dev/doc/install)" >&2
  fi
  exit 1
fi
go mod download
