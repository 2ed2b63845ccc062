package pve

import (
	"strings"
	"testing"
)

// A CT made from app:1 (with a volume and a snapshot section) and the
// scratch CT made from app:2: the swap moves the image's lines, and only
// them, and gives the scratch CT the old rootfs.
func TestSwapImage(t *testing.T) {
	target := `arch: amd64
cmode: console
description: proxcage oci-id=web%0A
entrypoint: /bin/sh -c 'cat /opt/app/version; exec sleep 100000'
hostname: web
mp0: local-lvm:vm-100-disk-1,mp=/srv/data,backup=1,size=8G
net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=dhcp,host-managed=1,type=veth
ostype: unmanaged
rootfs: local-lvm:vm-100-disk-0,size=8G
tags: proxcage;proxcage-id.web
unprivileged: 1
lxc.environment.runtime: PATH=/bin
lxc.environment.runtime: APP_VERSION=1
lxc.init.cwd: /app
lxc.init.uid: 1000
lxc.init.gid: 1000
lxc.signal.halt: SIGQUIT

[proxcage-upgrade]
rootfs: local-lvm:vm-100-disk-0,size=8G
snaptime: 1700000000
`
	scratch := `arch: amd64
cmode: console
description: proxcage oci-id=web.upgrade%0A
entrypoint: /bin/sh -c 'cat /opt/app/version; exec sleep 100000'
hostname: web-upgrade
ostype: unmanaged
rootfs: local-lvm:vm-101-disk-0,size=8G
tags: proxcage;proxcage-id.web.upgrade
unprivileged: 1
lxc.environment.runtime: PATH=/bin
lxc.environment.runtime: APP_VERSION=2
lxc.init.uid: 1000
lxc.init.gid: 1000
`
	nt, ns, err := swapImage(target, scratch)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rootfs: local-lvm:vm-101-disk-0,size=8G\n", "APP_VERSION=2\n",
		"hwaddr=BC:24:11:AA:BB:CC", "mp0: local-lvm:vm-100-disk-1", "description: proxcage oci-id=web%0A", "tags: proxcage;proxcage-id.web\n",
		"[proxcage-upgrade]\nrootfs: local-lvm:vm-100-disk-0,size=8G\n",
	} {
		if !strings.Contains(nt, want) {
			t.Errorf("upgraded config lacks %q:\n%s", want, nt)
		}
	}
	main, _ := mainSection(nt)
	joined := strings.Join(main, "\n")
	for _, gone := range []string{"APP_VERSION=1", "lxc.init.cwd", "lxc.signal.halt", "vm-100-disk-0"} {
		if strings.Contains(joined, gone) {
			t.Errorf("upgraded main section keeps %q:\n%s", gone, joined)
		}
	}
	if strings.Count(joined, "entrypoint:") != 1 || strings.Count(joined, "cmode:") != 1 {
		t.Errorf("keys doubled:\n%s", joined)
	}
	if !strings.Contains(ns, "rootfs: local-lvm:vm-100-disk-0,size=8G\n") || strings.Contains(ns, "vm-101-disk-0") {
		t.Errorf("scratch config:\n%s", ns)
	}
	if _, _, err := swapImage("lock: snapshot\n"+target, scratch); err == nil || !strings.Contains(err.Error(), "locked (snapshot)") {
		t.Errorf("locked target: %v", err)
	}
	if _, _, err := swapImage(target, "arch: amd64\n"); err == nil {
		t.Error("scratch without rootfs accepted")
	}
}
