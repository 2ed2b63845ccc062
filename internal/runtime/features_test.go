package runtime

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func TestFeaturesAsksTheBackends(t *testing.T) {
	first := func() features.Features {
		return features.Features{Hooks: []string{"prestart"}, Annotations: map[string]string{"x": "1"}}
	}
	second := func() features.Features { return features.Features{Hooks: []string{"poststop"}} }
	f := Features([]BackendFeatures{{Name: "a"}, {Name: "b", Report: first}, {Name: "c", Report: second}}, "1.2", "abc")
	if len(f.Hooks) != 1 || f.Hooks[0] != "prestart" {
		t.Errorf("hooks %v: want the first report's", f.Hooks)
	}
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("OCI versions %q..%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	want := map[string]string{"x": "1", "org.proxcage.version": "1.2", "org.proxcage.commit": "abc", "org.proxcage.backends": "a,b,c"}
	for k, v := range want {
		if f.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, f.Annotations[k], v)
		}
	}
}

func TestFeaturesWithoutAReport(t *testing.T) {
	f := Features([]BackendFeatures{{Name: "pve"}}, "v", "c")
	if f.Annotations["org.proxcage.backends"] != "pve" || f.Linux != nil {
		t.Errorf("features %+v", f)
	}
}
