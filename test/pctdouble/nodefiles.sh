#!/usr/bin/env bash
# nodefiles.sh STATE_DIR: write the plain files a PVE node has and the
# double then reads as its inputs, for its defaults: storage.cfg (the
# storages; in pmxcfs, /etc/pve/storage.cfg) and dpkg/status (the installed
# pve-manager and pve-container, where pveversion -v reads them). With
# [pve.tools] ct_config_dir = STATE_DIR/lxc and dpkg_status =
# STATE_DIR/dpkg/status, proxcage's pct transport reads them too, as it
# does on a node, instead of asking pvesm and pveversion.
set -euo pipefail
d=$(realpath -m "$1")
mkdir -p "$d/dpkg"
cat >"$d/storage.cfg" <<CFG
dir: local
	path $d/storage/local
	content vztmpl,iso,backup

lvmthin: local-lvm
	thinpool data
	vgname pve
	content rootdir,images
CFG
cat >"$d/dpkg/status" <<STATUS
Package: pve-container
Status: install ok installed
Version: 6.1.10

Package: pve-manager
Status: install ok installed
Version: 9.1.1
STATUS
