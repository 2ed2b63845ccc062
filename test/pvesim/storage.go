package pvesim

// Storage checks, as pve-storage 9.1.7 src/PVE/Storage.pm storage_config,
// storage_check_enabled and storage_check_node word them. storage.cfg is
// cluster-wide: a storage that some node has and this one lacks is one
// whose "nodes" list leaves this node out.

// storageKnown: storage.cfg has sid (some node has it). Call with s.mu held.
func (s *Server) storageKnown(sid string) bool {
	for _, n := range s.nodes {
		if n.storages[sid] != nil {
			return true
		}
	}
	return false
}

// storageCheckEnabled is storage_check_enabled(cfg, sid, node). Call with
// s.mu held.
func (s *Server) storageCheckEnabled(sid, node string) (*storage, *apiError) {
	if !s.storageKnown(sid) {
		return nil, fail500("storage '%s' does not exist", sid)
	}
	if s.faults.DisabledStorage[sid] {
		return nil, fail500("storage '%s' is disabled", sid)
	}
	st := s.nodes[node].storages[sid]
	if st == nil {
		return nil, fail500("storage '%s' is not available on node '%s'", sid, node)
	}
	return st, nil
}

// noQuorum is pve-cluster Cluster.pm check_cfs_quorum.
func noQuorum() *apiError { return fail500("cluster not ready - no quorum?") }
