package pvesim

import (
	"regexp"
	"sort"
	"strings"
)

// Permissions. The simulator grants every privilege to every valid user
// and token (see README: all-or-nothing), except what pve-container 6.1.10
// refuses to anyone but root@pam itself: src/PVE/LXC.pm
// check_ct_modify_config_perm, which returns early only for an authuser
// of exactly "root@pam" (an API token's authuser is "root@pam!ID").

var (
	mountKeyRE = regexp.MustCompile(`^(?:rootfs|mp\d+)$`)
	devKeyRE   = regexp.MustCompile(`^dev\d+$`)
	// falseRE: PVE::JSONSchema's false booleans.
	falseRE = regexp.MustCompile(`^(?i:0|false|no|off)$`)
)

// permError is pve-common Exception.pm raise_perm_exc: HTTP 403,
// "Permission check failed (WHAT)".
func permError(what string) *apiError {
	return &apiError{code: 403, msg: "Permission check failed (" + what + ")"}
}

// needSysAudit is the permission check of the node calls that want
// Sys.Audit on /nodes/{node}, pve-manager API2/APT.pm versions (`check =>
// ['perm', '/nodes/{node}', ['Sys.Audit']]`; API2/Network.pm index is
// `user => 'all'`), refused to tokens under Options.NoSysAudit, worded by
// pve-access-control RPCEnvironment.pm check ("PATH, PRIV").
func (s *Server) needSysAudit(c *call) *apiError {
	if s.opts.NoSysAudit && c.id != nil && c.id.token {
		return permError("/nodes/" + c.p["node"] + ", Sys.Audit")
	}
	return nil
}

// mountType is LXC/Config.pm classify_mountpoint of a rootfs/mpN value.
func mountType(value string) string {
	vol, _, _ := strings.Cut(value, ",")
	if v, ok := strings.CutPrefix(vol, "volume="); ok {
		vol = v
	} else if strings.Contains(vol, "=") {
		// The volume is a later key=value of the property string.
		for _, part := range strings.Split(value, ",") {
			if v, ok := strings.CutPrefix(part, "volume="); ok {
				vol = v
			}
		}
	}
	switch {
	case strings.HasPrefix(vol, "/dev/"):
		return "device"
	case strings.HasPrefix(vol, "/"):
		return "bind"
	}
	return "volume"
}

// featureKeys parses a features property string into its keys.
func featureKeys(v string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(part, "=")
		if k != "" {
			out[k] = val
		}
	}
	return out
}

// checkCTModifyConfigPerm is check_ct_modify_config_perm for the keys of
// newconf (set) and del (deleted), with oldconf the CT's config (nil at
// create). PVE walks a Perl hash, in no fixed order; the simulator walks
// the keys sorted, so that with two refused keys the answer is stable.
func checkCTModifyConfigPerm(id *identity, oldconf, newconf map[string]string, del []string, unprivileged bool) *apiError {
	if id == nil || id.root() {
		return nil
	}
	check := func(opt string, deleting bool) *apiError {
		switch {
		case mountKeyRE.MatchString(opt):
			if deleting {
				return nil
			}
			if t := mountType(newconf[opt]); t != "volume" {
				return permError("mount point type " + t + " is only allowed for root@pam")
			}
		case devKeyRE.MatchString(opt):
			return permError("configuring device passthrough is only allowed for root@pam")
		case opt == "features":
			if !unprivileged {
				return permError("changing feature flags for privileged container is only allowed for root@pam")
			}
			if featuresChangeOtherThanNesting(oldconf, newconf, deleting) {
				return permError("changing feature flags (except nesting) is only allowed for root@pam")
			}
		case opt == "hookscript":
			return permError("changing the hookscript is only allowed for root@pam")
		}
		return nil
	}
	keys := make([]string, 0, len(newconf))
	for k := range newconf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := check(k, false); err != nil {
			return err
		}
	}
	for _, k := range del {
		if err := check(k, true); err != nil {
			return err
		}
	}
	return nil
}

// featuresChangeOtherThanNesting is the features branch of
// check_ct_modify_config_perm: any feature but nesting that differs from
// the old config (or, for a new CT, any feature but a lone nesting).
func featuresChangeOtherThanNesting(oldconf, newconf map[string]string, deleting bool) bool {
	if deleting {
		f := featureKeys(oldconf["features"])
		_, nesting := f["nesting"]
		return len(f) > 1 || len(f) == 1 && !nesting
	}
	nf := featureKeys(newconf["features"])
	if oldconf != nil && oldconf["features"] != "" {
		of := featureKeys(oldconf["features"])
		for _, m := range []map[string]string{of, nf} {
			for k := range m {
				if of[k] != nf[k] && k != "nesting" {
					return true
				}
			}
		}
		return false
	}
	_, nesting := nf["nesting"]
	return len(nf) > 1 || len(nf) == 1 && !nesting
}
