package pvesim

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/proxcage/proxcage/test/pveschema"
)

// An OCI archive template (a .tar with oci-layout, index.json, blobs/:
// pve-container 6.1.10 Create.pm archive_is_oci_format) is mapped onto
// the CT config at create, after the create parameters, as
// restore_oci_archive does for what the API shows: Entrypoint+Cmd (if
// non-empty and not /sbin/init) -> entrypoint (PVE::Tools::cmd2string)
// and cmode console, host-managed=1 on every netN lacking it, Env ->
// env. The lxc.init.* and lxc.signal.halt lines it writes from User,
// WorkingDir and StopSignal are raw lines the API's config does not
// return, so the simulator does not keep them. The image's layers are
// not unpacked: nothing runs here.

// ociProcess is what the simulator keeps of an uploaded archive's image
// config.
type ociProcess struct {
	Entrypoint, Cmd, Env *[]string
}

// readOCIProcess reads an OCI layout tar's image config: index.json's
// first image manifest, then its config blob (proxmox-oci
// oci_tar_image.rs image_manifest: the first manifest entry, no platform
// check). A tar that is no OCI layout gives nil, nil.
func readOCIProcess(r io.Reader) (*ociProcess, error) {
	tr := tar.NewReader(r)
	small := map[string][]byte{}
	layout := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil // not a tar: no OCI archive
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "oci-layout" {
			layout = true
		}
		if h.Typeflag == tar.TypeReg && h.Size <= 1<<20 {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			small[name] = b
		}
	}
	idx, ok := small["index.json"]
	if !layout || !ok {
		return nil, nil
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	}
	var index struct {
		Manifests []desc `json:"manifests"`
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		return nil, fmt.Errorf("Error while parsing OCI image: %v", err) //nolint:staticcheck // PVE's own text
	}
	blob := func(d string) []byte { return small["blobs/"+strings.Replace(d, ":", "/", 1)] }
	for _, m := range index.Manifests {
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
			continue
		}
		var man struct {
			Config desc `json:"config"`
		}
		if err := json.Unmarshal(blob(m.Digest), &man); err != nil {
			return nil, fmt.Errorf("Error while parsing OCI image: %v", err) //nolint:staticcheck // PVE's own text
		}
		var cfg struct {
			Config ociProcess `json:"config"`
		}
		if err := json.Unmarshal(blob(man.Config.Digest), &cfg); err != nil {
			return nil, errors.New("Error while parsing OCI image: Missing image config") //nolint:staticcheck // PVE's own text
		}
		return &cfg.Config, nil
	}
	return nil, errors.New("Error while parsing OCI image: Unsupported CPU architecture") //nolint:staticcheck // PVE's own text
}

// applyOCI maps p onto conf (restore_oci_archive's order: after the
// create parameters, so the image wins) and returns the task log lines.
func applyOCI(conf map[string]string, p *ociProcess) []string {
	lines := []string{"Detected OCI archive"}
	var initCmd []string
	for _, a := range []*[]string{p.Entrypoint, p.Cmd} {
		if a != nil {
			initCmd = append(initCmd, *a...)
		}
	}
	if len(initCmd) > 0 && initCmd[0] != "/sbin/init" {
		conf["entrypoint"] = pveschema.Cmd2String(initCmd)
		conf["cmode"] = "console"
		var nets []string
		for k := range conf {
			if strings.HasPrefix(k, "net") {
				nets = append(nets, k)
			}
		}
		sort.Strings(nets)
		for _, k := range nets {
			if !strings.Contains(conf[k], "host-managed=") {
				lines = append(lines, fmt.Sprintf("Auto-Enabling host-managed network for network device %s.", k))
				conf[k] += ",host-managed=1"
			}
		}
	}
	if p.Env != nil {
		if len(*p.Env) == 0 {
			delete(conf, "env")
		} else {
			conf["env"] = strings.Join(*p.Env, "\x00")
		}
	}
	return lines
}
