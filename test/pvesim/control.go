package pvesim

import (
	"net/http"
	"strings"
)

// controlPrefix is where the simulator answers about itself, outside PVE's
// /api2/json: for a client that runs pvesim as a command (cmd/pvesim) and
// cannot call Calls or Guests. No authentication (the simulator serves
// tests on loopback), no faults, and these requests are not counted.
const controlPrefix = "/_sim/"

// serveControl answers GET /_sim/calls ({"total": N, "calls": {"METHOD
// /path/{template}": n, ...}}, as Calls), DELETE /_sim/calls (ResetCalls)
// and GET /_sim/guests (["VMID@NODE STATUS", ...], as Guests). It reports
// whether the path was one of its own.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, controlPrefix) {
		return false
	}
	switch r.Method + " " + strings.TrimPrefix(r.URL.Path, controlPrefix) {
	case "GET calls":
		calls := s.Calls()
		total := 0
		for _, n := range calls {
			total += n
		}
		writeJSON(w, map[string]any{"total": total, "calls": calls})
	case "DELETE calls":
		s.ResetCalls()
		writeJSON(w, map[string]any{"total": 0, "calls": map[string]int{}})
	case "GET guests":
		writeJSON(w, s.Guests())
	default:
		http.Error(w, "not a pvesim control endpoint (GET|DELETE /_sim/calls, GET /_sim/guests)", http.StatusNotFound)
	}
	return true
}
