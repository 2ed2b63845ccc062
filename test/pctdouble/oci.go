package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/moby/sys/user"

	"github.com/proxcage/proxcage/internal/image/unpack"
)

// PVE 9.1 takes an OCI image layout (a plain .tar holding oci-layout,
// index.json and blobs/) as a CT template: it flattens the layers into the
// rootfs and maps the image config onto the CT: Entrypoint+Cmd ->
// entrypoint (cmode console), Env -> env, WorkingDir -> lxc.init.cwd,
// User -> lxc.init.uid/gid, StopSignal -> lxc.signal.halt, host-managed=1
// on every netX (PROXMOX.md). Options given to pct create win. The double
// applies the layers with proxcage's own unpacker: what is under test
// here is the hand-off, not the unpacking.

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"` // an index
	Config    ociDescriptor   `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
}

func readBlob(layout, digest string, v any) error {
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok || strings.ContainsAny(hex, "/.") {
		return fmt.Errorf("bad digest %q", digest)
	}
	data, err := os.ReadFile(filepath.Join(layout, "blobs", algo, hex))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// flattenOCI turns root, an extracted OCI layout, into the image's rootfs.
func flattenOCI(vmid int, root string, conf *ctConf) error {
	var idx ociManifest
	if err := readBlobFile(filepath.Join(root, "index.json"), &idx); err != nil {
		return fmt.Errorf("OCI image: index.json: %v", err)
	}
	var m ociManifest
	desc, err := pickManifest(root, idx)
	if err != nil {
		return err
	}
	if err := readBlob(root, desc.Digest, &m); err != nil {
		return fmt.Errorf("OCI image: manifest: %v", err)
	}
	var cfg struct {
		Config struct {
			Entrypoint, Cmd, Env []string
			WorkingDir, User     string
			StopSignal           string
		} `json:"config"`
	}
	if err := readBlob(root, m.Config.Digest, &cfg); err != nil {
		return fmt.Errorf("OCI image: config: %v", err)
	}
	flat := root + ".flat"
	_ = os.RemoveAll(flat) // a leftover of a killed run; MkdirAll reports what matters
	if err := os.MkdirAll(flat, 0o755); err != nil {
		return err
	}
	for i, l := range m.Layers {
		if err := applyOCILayer(root, flat, l, fmt.Sprintf("layer %d", i+1)); err != nil {
			_ = os.RemoveAll(flat)
			return fmt.Errorf("OCI image: %v", err)
		}
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	if err := os.Rename(flat, root); err != nil {
		return err
	}
	c := cfg.Config
	if _, ok := conf.Keys["entrypoint"]; !ok {
		args := append(append([]string{}, c.Entrypoint...), c.Cmd...)
		if len(args) == 0 {
			return fmt.Errorf("OCI image has no Entrypoint or Cmd (set --entrypoint)")
		}
		conf.Keys["entrypoint"] = joinQuoted(args)
		conf.Keys["cmode"] = "console"
	}
	if _, ok := conf.Keys["env"]; !ok && len(c.Env) > 0 {
		conf.Keys["env"] = strings.Join(c.Env, "\x00")
	}
	if c.WorkingDir != "" {
		conf.Raw = append(conf.Raw, [2]string{"lxc.init.cwd", c.WorkingDir})
	}
	if c.User != "" && atLeastContainer(6, 1, 0) { // "oci create: honor user defined in OCI image config" (6.1.0)
		passwd, _ := resolveInRoot(root, "/etc/passwd")
		group, _ := resolveInRoot(root, "/etc/group")
		u, err := user.GetExecUserPath(c.User, &user.ExecUser{}, passwd, group)
		if err != nil {
			return fmt.Errorf("OCI image: user %q: %v", c.User, err)
		}
		conf.Raw = append(conf.Raw, [2]string{"lxc.init.uid", strconv.Itoa(u.Uid)}, [2]string{"lxc.init.gid", strconv.Itoa(u.Gid)})
	}
	if c.StopSignal != "" {
		conf.Raw = append(conf.Raw, [2]string{"lxc.signal.halt", c.StopSignal})
	}
	for k, v := range conf.Keys {
		if strings.HasPrefix(k, "net") && !strings.Contains(v, "host-managed=") {
			conf.Keys[k] = v + ",host-managed=1"
		}
	}
	fmt.Printf("OCI image: %d layers flattened\n", len(m.Layers))
	return nil
}

func readBlobFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// pickManifest follows the index to the linux/amd64 image manifest.
func pickManifest(layout string, idx ociManifest) (ociDescriptor, error) {
	for depth := 0; depth < 4; depth++ {
		var found *ociDescriptor
		for i, d := range idx.Manifests {
			if d.Platform == nil || d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
				found = &idx.Manifests[i]
				break
			}
		}
		if found == nil {
			return ociDescriptor{}, fmt.Errorf("OCI image has no linux/amd64 manifest")
		}
		if !strings.Contains(found.MediaType, "index") && !strings.Contains(found.MediaType, "manifest.list") {
			return *found, nil
		}
		if err := readBlob(layout, found.Digest, &idx); err != nil {
			return ociDescriptor{}, err
		}
	}
	return ociDescriptor{}, fmt.Errorf("OCI image indexes nest too deeply")
}

func applyOCILayer(layout, root string, l ociDescriptor, name string) error {
	algo, hex, _ := strings.Cut(l.Digest, ":")
	f, err := os.Open(filepath.Join(layout, "blobs", algo, hex))
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(l.MediaType, "gzip"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(l.MediaType, "zstd"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	_, err = unpack.ApplyLayer(root, r, unpack.Options{Layer: name})
	return err
}

// joinQuoted is how PVE makes the entrypoint of an image's Entrypoint+Cmd
// (pve-container Create.pm restore_oci_archive: PVE::Tools::cmd2string).
func joinQuoted(args []string) string { return cmd2string(args) }
