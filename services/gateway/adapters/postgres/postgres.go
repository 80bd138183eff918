// Package postgres is the gateway's view of PostgreSQL: sessions' routes
// (their user and zone) and users' sign-ins (libs/signin). It implements
// app.Sessions and app.SignIns.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/gateway/app"
	"github.com/greenroom-dev/greenroom/services/gateway/domain"
)

var (
	_ app.Sessions = (*Store)(nil)
	_ app.SignIns  = (*Store)(nil)
)

// Store reads sessions and keeps sign-ins.
type Store struct{ db *sqlx.DB }

// New returns a store over db.
func New(db *sqlx.DB) *Store { return &Store{db: db} }

// Route returns a session's user, liveness and zone domains.
func (s *Store) Route(ctx context.Context, sessionID string) (app.Route, error) {
	var row struct {
		UserID              sql.NullString  `db:"user_id"`
		Status              sessions.Status `db:"status"`
		AllowOriginDomain   string          `db:"allow_origin_domain"`
		UpstreamAuthAddress string          `db:"upstream_auth_address"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT s.user_id, s.status, z.allow_origin_domain, z.upstream_auth_address
		FROM sessions s JOIN zones z ON z.id = s.zone_id WHERE s.id = $1`, sessionID)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Route{}, app.ErrUnknownSession
	}
	if err != nil {
		return app.Route{}, fmt.Errorf("loading the route of session %s: %w", sessionID, err)
	}
	return app.Route{UserID: row.UserID.String, Live: row.Status == sessions.Running,
		AllowOriginDomain: row.AllowOriginDomain, UpstreamAuthAddress: row.UpstreamAuthAddress}, nil
}

// OfUser lists a user's live sessions, newest first.
func (s *Store) OfUser(ctx context.Context, userID string) ([]app.SessionSummary, error) {
	out := []app.SessionSummary{}
	err := s.db.SelectContext(ctx, &out, `SELECT s.id, w.name AS workspace, z.name AS zone, s.status, s.url, s.created_at
		FROM sessions s JOIN workspaces w ON w.id = s.workspace_id JOIN zones z ON z.id = s.zone_id
		WHERE s.user_id = $1 AND s.status NOT IN ('destroyed', 'failed')
		ORDER BY s.created_at DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing the sessions of user %s: %w", userID, err)
	}
	return out, nil
}

// CheckPassword returns the user whose password this is.
func (s *Store) CheckPassword(ctx context.Context, username, password string) (signin.User, error) {
	return signin.CheckPassword(ctx, s.db, username, password)
}

// Create records a sign-in.
func (s *Store) Create(ctx context.Context, userID string, ttl time.Duration) (string, time.Time, error) {
	return signin.Create(ctx, s.db, userID, ttl)
}

// Lookup returns who a sign-in token belongs to.
func (s *Store) Lookup(ctx context.Context, token string) (signin.User, error) {
	return signin.Lookup(ctx, s.db, token)
}

// Delete ends a sign-in.
func (s *Store) Delete(ctx context.Context, token string) error {
	return signin.Delete(ctx, s.db, token)
}

// DeleteExpired deletes the sign-ins past their time.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sign_ins WHERE expires_at < now()`)
	if err != nil {
		return 0, fmt.Errorf("deleting expired sign-ins: %w", err)
	}
	return res.RowsAffected()
}

var _ app.Catalog = (*Store)(nil)

// Workspaces lists the enabled workspaces by name.
func (s *Store) Workspaces(ctx context.Context) ([]app.Workspace, error) {
	out := []app.Workspace{}
	err := s.db.SelectContext(ctx, &out, `SELECT w.name, coalesce(p.name, '') AS server_pool
		FROM workspaces w LEFT JOIN pools p ON p.id = w.server_pool_id
		WHERE w.enabled ORDER BY w.name`)
	if err != nil {
		return nil, fmt.Errorf("listing workspaces: %w", err)
	}
	return out, nil
}

// Zones lists the zones by priority.
func (s *Store) Zones(ctx context.Context) ([]domain.Zone, error) {
	out := []domain.Zone{}
	if err := s.db.SelectContext(ctx, &out, `SELECT name, allow_origin_domain FROM zones ORDER BY priority, name`); err != nil {
		return nil, fmt.Errorf("listing zones: %w", err)
	}
	return out, nil
}
