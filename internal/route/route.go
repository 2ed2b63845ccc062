// Package route decides which backend runs a new container. It is pure: the
// same config, id and annotations always give the same decision, and the
// decision says why, for `proxcage route`.
package route

import (
	"fmt"

	"github.com/proxcage/proxcage/internal/config"
)

// BackendAnnotation in a bundle's config.json forces the backend.
const BackendAnnotation = "org.proxcage.backend"

// Decision is the chosen backend and the reason.
type Decision struct {
	Backend string `json:"backend"`
	Reason  string `json:"reason"`
	Rule    int    `json:"rule"` // index into config routes, -1 when no rule chose
}

// Pick applies, in order: the bundle annotation, the first matching config
// rule, the config default.
func Pick(cfg *config.Config, id string, annotations map[string]string) Decision {
	if b, ok := annotations[BackendAnnotation]; ok && b != "" {
		return Decision{Backend: b, Reason: fmt.Sprintf("bundle annotation %s=%s", BackendAnnotation, b), Rule: -1}
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if r.Matches(id, annotations) {
			return Decision{Backend: r.Backend, Reason: fmt.Sprintf("config rule %d (%s)", i+1, r.Describe()), Rule: i}
		}
	}
	src := "built-in default"
	if cfg.Path != "" {
		src = "default_backend in " + cfg.Path
	}
	return Decision{Backend: cfg.DefaultBackend, Reason: src, Rule: -1}
}
