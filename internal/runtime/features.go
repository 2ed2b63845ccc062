package runtime

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// BackendFeatures is one backend of this build as `features` asks it.
type BackendFeatures struct {
	Name string
	// Report gives the OCI features the backend supports, known without a
	// config or a host (`features` reads neither); nil: it reports none
	// (pve and lxc translate the spec into configs of their own).
	Report func() features.Features
}

// Features is what `features` prints (runtime-spec features.md): the
// report of the first backend that gives one, in registration order
// (native's: libcontainer's facts, as runc reports them), the OCI
// versions proxcage takes, and proxcage's own annotations: the build's
// version and commit and every backend's name. It reads no config and
// creates no state root.
func Features(backends []BackendFeatures, version, commit string) features.Features {
	var feat features.Features
	names := make([]string, len(backends))
	reported := false
	for i, b := range backends {
		names[i] = b.Name
		if b.Report != nil && !reported {
			feat, reported = b.Report(), true
		}
	}
	feat.OCIVersionMin = "1.0.0"
	feat.OCIVersionMax = specs.Version
	if feat.Annotations == nil {
		feat.Annotations = map[string]string{}
	}
	feat.Annotations["org.proxcage.version"] = version
	feat.Annotations["org.proxcage.commit"] = commit
	feat.Annotations["org.proxcage.backends"] = strings.Join(names, ",")
	return feat
}
