package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// sessionSelect reads sessions with names for their references. Only
// reads: libs/sessions owns the table and every change to it. A staged
// session has no on_demand_reason: null, not an empty string.
const sessionSelect = `SELECT s.id, s.request_id, s.user_id, u.username, s.workspace_id, w.name AS workspace,
	s.zone_id, z.name AS zone, a.name AS agent, sv.name AS server, s.container_id, s.url, s.upstream_url, s.origin, s.status,
	s.staging_config_id, s.failure_reason,
	CASE WHEN s.origin = 'on_demand' AND s.on_demand_reason <> '' THEN s.on_demand_reason END AS on_demand_reason,
	s.created_at, s.staged_at, s.assigned_at, s.expires_at, s.destroyed_at
	FROM sessions s
	JOIN workspaces w ON w.id = s.workspace_id
	JOIN zones z ON z.id = s.zone_id
	LEFT JOIN users u ON u.id = s.user_id
	LEFT JOIN agents a ON a.id = s.agent_id
	LEFT JOIN servers sv ON sv.id = s.server_id`

// GetSession loads the session with id.
func (q Tables) GetSession(ctx context.Context, id string) (domain.Session, error) {
	var s domain.Session
	err := get(ctx, q, &s, "session "+id, sessionSelect+` WHERE s.id = $1`, id)
	return s, err
}

// GetSessionByRequestID loads the session made or claimed for a request.
func (q Tables) GetSessionByRequestID(ctx context.Context, requestID string) (domain.Session, error) {
	var s domain.Session
	err := get(ctx, q, &s, fmt.Sprintf("session of request %q", requestID), sessionSelect+` WHERE s.request_id = $1`, requestID)
	return s, err
}

// ResolveRequest resolves a session request's names in one round trip:
// POST /api/v1/sessions is on the path of every request an HTTP client
// makes.
func (q Tables) ResolveRequest(ctx context.Context, user, workspace, zone, requestID string) (app.RequestRefs, error) {
	var r app.RequestRefs
	err := q.GetContext(ctx, &r, `SELECT u.id AS user_id, w.id AS workspace_id,
			z.id AS "zone.id", COALESCE(z.search_alternate_zones, false) AS "zone.search_alternate_zones",
			EXISTS (SELECT 1 FROM sessions WHERE request_id = $4) AS existing
		FROM (SELECT 1) AS one
		LEFT JOIN users u ON u.username = $1
		LEFT JOIN workspaces w ON w.name = $2
		LEFT JOIN zones z ON z.name = $3`, user, workspace, zone, requestID)
	if err != nil {
		return r, fmt.Errorf("resolving the request's user, workspace and zone: %w", err)
	}
	return r, nil
}

// CountLiveSessionsOfWorkspace counts the sessions of the workspace with
// id that are not destroyed or failed.
func (q Tables) CountLiveSessionsOfWorkspace(ctx context.Context, workspaceID string) (int, error) {
	return countLiveSessions(ctx, q, "workspace_id", workspaceID)
}

// CountLiveSessionsOnServer counts the sessions on the server with id that
// are not destroyed or failed.
func (q Tables) CountLiveSessionsOnServer(ctx context.Context, serverID string) (int, error) {
	return countLiveSessions(ctx, q, "server_id", serverID)
}

// countLiveSessions counts the sessions that are not destroyed or failed
// whose column (workspace_id or server_id) is id.
func countLiveSessions(ctx context.Context, q Queryer, column, id string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM sessions
		WHERE `+column+` = $1 AND status NOT IN ('destroyed', 'failed')`, id)
	if err != nil {
		return 0, fmt.Errorf("counting live sessions by %s %s: %w", column, id, err)
	}
	return n, nil
}

// ListSessions loads one page of the sessions f selects, newest first.
func (q Tables) ListSessions(ctx context.Context, f domain.SessionFilter, p domain.Page) (domain.Paged[domain.Session], error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond, arg string) {
		if arg != "" {
			args = append(args, arg)
			conds = append(conds, fmt.Sprintf(cond, len(args)))
		}
	}
	add("u.username = $%d", f.User)
	add("s.status = $%d", f.Status)
	add("s.staging_config_id = $%d", f.StagingConfig)
	add("s.origin = $%d", f.Origin)
	if f.Ended != nil {
		not := "NOT "
		if *f.Ended {
			not = ""
		}
		conds = append(conds, "s.status "+not+"IN ('destroyed', 'failed')")
	}
	return listPage(ctx, q, "sessions", sessionSelect, conds, args, newestFirst(func(s domain.Session) (time.Time, string) {
		return s.CreatedAt, s.ID
	}, "s"), p)
}
