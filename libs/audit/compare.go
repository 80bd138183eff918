package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// dbSession is a session as PostgreSQL has it, with names for references.
type dbSession struct {
	ID              string    `db:"id"`
	Status          string    `db:"status"`
	RequestID       string    `db:"request_id"`
	User            string    `db:"username"`
	Workspace       string    `db:"workspace"`
	Zone            string    `db:"zone"`
	Agent           string    `db:"agent"`
	Server          string    `db:"server"`
	ContainerID     string    `db:"container_id"`
	StagingConfigID string    `db:"staging_config_id"`
	Origin          string    `db:"origin"`
	OnDemandReason  string    `db:"on_demand_reason"`
	CreatedAt       time.Time `db:"created_at"`
}

const sessionsQuery = `SELECT s.id, s.status, COALESCE(s.request_id, '') AS request_id,
	COALESCE(u.username, '') AS username, w.name AS workspace, z.name AS zone,
	COALESCE(a.name, '') AS agent, COALESCE(sv.name, '') AS server, s.container_id,
	COALESCE(s.staging_config_id::text, '') AS staging_config_id, s.origin, s.on_demand_reason, s.created_at
	FROM sessions s JOIN workspaces w ON w.id = s.workspace_id JOIN zones z ON z.id = s.zone_id
	LEFT JOIN users u ON u.id = s.user_id LEFT JOIN agents a ON a.id = s.agent_id
	LEFT JOIN servers sv ON sv.id = s.server_id`

// Compare lists every difference between the sessions and violations the
// log describes and those PostgreSQL holds. Only what the log can know is
// compared: sessions whose first event is in the log (a row created before
// the log's first event is older than the log, not a difference), and of a
// session, the fields its events carried.
func Compare(ctx context.Context, conn sqlx.QueryerContext, st *State) ([]Finding, error) {
	sm := st.summary
	if sm.Events == 0 {
		return nil, nil // an empty range says nothing of the database
	}
	var rows []dbSession
	if err := sqlx.SelectContext(ctx, conn, &rows, sessionsQuery+` WHERE s.created_at >= $1`, sm.First.Add(-time.Second)); err != nil {
		return nil, fmt.Errorf("reading sessions: %w", err)
	}
	var out []Finding
	inDB := map[string]bool{}
	for _, row := range rows {
		inDB[row.ID] = true
		ss := st.Sessions[row.ID]
		if ss == nil {
			if !row.CreatedAt.Before(sm.First) {
				out = append(out, Finding{Kind: "session", Detail: fmt.Sprintf(
					"session %s (%s, %s) is in the database but no event of the log names it", row.ID, row.Workspace, row.Status)})
			}
			continue
		}
		out = append(out, diffSession(ss, row)...)
	}
	// Sessions of the log the database does not have: ended sessions of a
	// deleted workspace are deleted with it, so only those are excused.
	var missing []string
	for id := range st.Sessions {
		if !inDB[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		var present []dbSession
		if err := sqlx.SelectContext(ctx, conn, &present, sessionsQuery+` WHERE s.id::text = ANY($1::text[])`, pq.Array(missing)); err != nil {
			return nil, fmt.Errorf("reading sessions: %w", err)
		}
		for _, row := range present {
			inDB[row.ID] = true
			out = append(out, diffSession(st.Sessions[row.ID], row)...)
		}
		deleted := st.deletedWorkspaces()
		for _, id := range missing {
			ss := st.Sessions[id]
			if inDB[id] || (deleted[ss.Workspace] && (ss.Status == "destroyed" || ss.Status == "failed")) {
				continue
			}
			out = append(out, Finding{Kind: "session", Seq: ss.FirstSeq, Detail: fmt.Sprintf(
				"session %s (%s, %s in the log) is not in the database", id, ss.Workspace, ss.Status)})
		}
	}
	vf, err := compareViolations(ctx, conn, st)
	return append(out, vf...), err
}

// diffSession names each field the log and the row disagree on.
func diffSession(ss *Session, row dbSession) []Finding {
	var diffs []string
	cmp := func(field, log, db string) {
		if log != "" && log != db {
			diffs = append(diffs, fmt.Sprintf("%s: log %q, database %q", field, log, db))
		}
	}
	cmp("status", ss.Status, row.Status)
	cmp("request_id", ss.RequestID, row.RequestID)
	cmp("user", ss.User, row.User)
	cmp("workspace", ss.Workspace, row.Workspace)
	cmp("zone", ss.Zone, row.Zone)
	cmp("agent", ss.Agent, row.Agent)
	cmp("server", ss.Server, row.Server)
	cmp("container_id", ss.ContainerID, row.ContainerID)
	cmp("staging_config_id", ss.StagingConfigID, row.StagingConfigID)
	cmp("origin", ss.Origin, row.Origin)
	cmp("on_demand_reason", ss.OnDemandReason, row.OnDemandReason)
	if len(diffs) == 0 {
		return nil
	}
	return []Finding{{Kind: "session", Seq: ss.LastSeq, Detail: fmt.Sprintf("session %s: %s", ss.ID, strings.Join(diffs, "; "))}}
}

func (st *State) deletedWorkspaces() map[string]bool {
	out := map[string]bool{}
	for _, o := range st.Config {
		if o.Kind == "workspace" && o.Deleted {
			out[o.Name] = true
		}
	}
	return out
}

// compareViolations: each violation of the log is in the database, and
// each of the database since the log's first event is in the log.
func compareViolations(ctx context.Context, conn sqlx.QueryerContext, st *State) ([]Finding, error) {
	var rows []struct {
		RequestID string    `db:"request_id"`
		Setting   string    `db:"setting"`
		Username  string    `db:"username"`
		CreatedAt time.Time `db:"created_at"`
	}
	// Those made since the log's first event, and those of the log's
	// requests, whenever the database says they were made.
	var requests []string
	for _, v := range st.Violations {
		requests = append(requests, v.RequestID)
	}
	if err := sqlx.SelectContext(ctx, conn, &rows, `SELECT request_id, setting, username, created_at FROM violations
		WHERE created_at >= $1 OR request_id = ANY($2)`, st.summary.First.Add(-time.Second), pq.Array(requests)); err != nil {
		return nil, fmt.Errorf("reading violations: %w", err)
	}
	type key struct{ req, setting string }
	inDB := map[key]string{}
	for _, r := range rows {
		inDB[key{r.RequestID, r.Setting}] = r.Username
	}
	inLog := map[key]bool{}
	var out []Finding
	for _, v := range st.Violations {
		k := key{v.RequestID, v.Setting}
		inLog[k] = true
		user, ok := inDB[k]
		switch {
		case !ok:
			out = append(out, Finding{Kind: "violation", Seq: v.Seq, Detail: fmt.Sprintf(
				"violation %s of request %s (%s) is not in the database", v.Setting, v.RequestID, v.User)})
		case user != v.User:
			out = append(out, Finding{Kind: "violation", Seq: v.Seq, Detail: fmt.Sprintf(
				"violation %s of request %s: user: log %q, database %q", v.Setting, v.RequestID, v.User, user)})
		}
	}
	for _, r := range rows {
		if !inLog[key{r.RequestID, r.Setting}] && !r.CreatedAt.Before(st.summary.First) {
			out = append(out, Finding{Kind: "violation", Detail: fmt.Sprintf(
				"violation %s of request %s (%s) is in the database but not in the log", r.Setting, r.RequestID, r.Username)})
		}
	}
	return out, nil
}
