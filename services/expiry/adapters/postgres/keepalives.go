package postgres

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// Keepalives writes keepalives to the sessions table.
type Keepalives struct {
	db *sqlx.DB
}

// NewKeepalives returns the keepalive writer of the sessions in conn.
func NewKeepalives(conn *sqlx.DB) *Keepalives { return &Keepalives{db: conn} }

var _ app.Keepalives = (*Keepalives)(nil)

// Keepalive moves running session id's keepalive deadline and expires_at
// to at plus its keepalive_expiration, never earlier (one UPDATE, in
// libs/sessions, which owns the sessions' deadlines).
func (k *Keepalives) Keepalive(ctx context.Context, id string, at time.Time) (sessions.Session, error) {
	return sessions.Keepalive(ctx, k.db, id, at)
}
