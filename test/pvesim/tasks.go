package pvesim

import (
	"sort"
	"strconv"
	"strings"
)

// GET /nodes/{node}/tasks: pve-manager 9.2.11 PVE/API2/Tasks.pm
// node_tasks. source=archive (the default) lists finished tasks only,
// newest first; active lists running ones (status RUNNING); all gives
// active, then archive. The filters apply in PVE's order: userfilter
// (case-insensitive substring of the user, the token id split off),
// typefilter, vmid (the task id), since/until (start time), the status
// type (statusfilter, errors), then start/limit; "total" counts every
// task that passed the filters. Every caller sees every task (the
// simulator grants Sys.Audit to all).
func (s *Server) listTasks(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(c)
	if err != nil {
		return nil, err
	}
	start, limit := page(c)
	source := c.p["source"]
	if source == "" {
		source = "archive"
	}
	statusOK := map[string]bool{"ok": true, "warning": true, "error": true, "unknown": true}
	errorsOnly := c.p["errors"] != "" && !falseRE.MatchString(c.p["errors"])
	if sf := c.p["statusfilter"]; sf != "" && !errorsOnly {
		statusOK = map[string]bool{}
		for _, f := range strings.FieldsFunc(sf, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\000' }) {
			statusOK[strings.ToLower(f)] = true
		}
	} else if errorsOnly {
		statusOK["ok"] = false
	}
	var since, until *int64
	if v, e := strconv.ParseInt(c.p["since"], 10, 64); e == nil {
		since = &v
	}
	if v, e := strconv.ParseInt(c.p["until"], 10, 64); e == nil {
		until = &v
	}
	count := 0
	rows := []map[string]any{}
	filter := func(t *task, status string) bool {
		user, _, _ := strings.Cut(t.user, "!")
		if uf := c.p["userfilter"]; uf != "" && !strings.Contains(strings.ToLower(user), strings.ToLower(uf)) {
			return false
		}
		if tf := c.p["typefilter"]; tf != "" && t.typ != tf {
			return false
		}
		if v := c.p["vmid"]; v != "" && t.id != v {
			return false
		}
		if since != nil && t.start.Unix() < *since || until != nil && t.start.Unix() > *until {
			return false
		}
		if !statusOK[statusType(status)] {
			return false
		}
		count++
		if count <= start || limit <= 0 {
			return false
		}
		return true
	}
	var active, archived []*task
	for _, t := range s.tasks {
		if t.node != n.name || s.now().Before(t.start.Add(s.faults.TaskUnlistedFor)) {
			continue
		}
		if t.running {
			active = append(active, t)
		} else {
			archived = append(archived, t)
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].upid < active[j].upid })
	// The index is read backwards: the task that ended last comes first.
	sort.Slice(archived, func(i, j int) bool {
		if !archived[i].end.Equal(archived[j].end) {
			return archived[i].end.After(archived[j].end)
		}
		return archived[i].upid > archived[j].upid
	})
	if source == "active" || source == "all" {
		for _, t := range active {
			// The active list has no status yet: type "unknown".
			if filter(t, "") {
				rows = append(rows, taskRow(t, "RUNNING"))
				limit--
			}
		}
	}
	if source != "active" {
		for _, t := range archived {
			if filter(t, t.exit) {
				rows = append(rows, taskRow(t, t.exit))
				limit--
			}
		}
	}
	c.extra["total"] = count
	return rows, nil
}

// statusType is pve-common UPID.pm normalize_status_type.
func statusType(status string) string {
	switch {
	case status == "":
		return "unknown"
	case status == "OK":
		return "ok"
	case warningsRE.MatchString(status):
		return "warning"
	case status == "unexpected status":
		return "unknown"
	}
	return "error"
}

// taskRow is upid_decode plus upid, endtime and status, with a token's
// user split into user and tokenid.
func taskRow(t *task, status string) map[string]any {
	row := map[string]any{
		"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart, "starttime": t.start.Unix(),
		"type": t.typ, "id": t.id, "user": t.user, "status": status,
	}
	if u, tok, ok := strings.Cut(t.user, "!"); ok {
		row["user"], row["tokenid"] = u, tok
	}
	if !t.running {
		row["endtime"] = t.end.Unix()
	}
	return row
}
