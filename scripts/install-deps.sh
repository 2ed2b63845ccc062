#!/usr/bin/env bash
# install-deps.sh [build|test]: makes a Debian 12 or 13 machine ready to
# build proxcage (`build`, the default) or to run every test (`test`).
#   build: Debian packages gcc make pkg-config libseccomp-dev git
#          ca-certificates dpkg-dev (make deb); and, unless a Go >= go.mod's version is already
#          there (PATH, /usr/local/go), the pinned Go toolchain in
#          /usr/local/lib/proxcage-go (scripts/install-go.sh, which borrows
#          Debian's golang-go to download it and purges it again); then the
#          Go modules go.sum names.
#   test:  also the real peers and tools the tests run: runc crun lxc
#          busybox-static podman conmon skopeo umoci uidmap containerd
#          docker.io hyperfine debootstrap zstd iproute2 procps python3 bsdutils
#          util-linux dnsmasq-base (the DHCP server in the pve e2e tests'
#          network namespace: the binary only, no dnsmasq service);
#          containernetworking-plugins iptables libc6-dev (make critest:
#          CNI bridge/portmap, static pause and nnp); curl jq (bench/scale.sh
#          reads the API simulator's counters).
# apt runs only when a package is missing; nothing is installed twice.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build}
case $what in build | test) ;; *) echo "usage: $0 [build|test]" >&2; exit 2 ;; esac
pkgs=(gcc make pkg-config libseccomp-dev git ca-certificates dpkg-dev)
if [ "$what" = test ]; then
	pkgs+=(runc crun lxc busybox-static podman conmon skopeo umoci uidmap containerd docker.io hyperfine debootstrap zstd iproute2 procps python3 bsdutils util-linux dnsmasq-base containernetworking-plugins iptables libc6-dev curl jq)
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
if ! go=$(./scripts/find-go.sh 2>/dev/null); then
	if [ "$(id -u)" != 0 ] && [ -z "${PROXCAGE_GO_PREFIX:-}" ]; then
		./scripts/find-go.sh || true
		echo "install-deps: need root to install Go in /usr/local/lib/proxcage-go" >&2
		exit 1
	fi
	go=$(./scripts/install-go.sh)
fi
echo "install-deps: $("$go" version) at $go"
"$go" mod download
