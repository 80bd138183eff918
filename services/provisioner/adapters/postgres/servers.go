package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// ServerPoolTargets returns, when session id's workspace has a server pool,
// that pool's enabled servers in the zones named (none when the session is
// no longer provisioning); ok is false for a workspace of containers. It reads without locks: what it returns is only
// the list of addresses to check; PlaceOnServer decides under locks.
func (s *Store) ServerPoolTargets(ctx context.Context, id string, zones []string) (targets []command.ServerTarget, ok bool, err error) {
	var row struct {
		Pool   *string         `db:"server_pool_id"`
		Status sessions.Status `db:"status"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT w.server_pool_id, s.status FROM sessions s JOIN workspaces w ON w.id = s.workspace_id
		WHERE s.id = $1`, id)
	if db.IsNotFound(err) {
		return nil, false, fmt.Errorf("%w: %s", sessions.ErrNotFound, id)
	}
	if err != nil || row.Pool == nil {
		return nil, false, err
	}
	pool := row.Pool
	if row.Status != sessions.Provisioning {
		return nil, true, nil // a redelivery: nothing to check, PlaceOnServer says it moved on
	}
	err = s.db.SelectContext(ctx, &targets, `SELECT sv.id, sv.name, sv.address FROM servers sv JOIN zones z ON z.id = sv.zone_id
		WHERE sv.pool_id = $1 AND sv.enabled AND z.name = ANY($2) ORDER BY sv.name`, *pool, pq.Array(zones))
	if err != nil {
		return nil, true, fmt.Errorf("loading the servers of pool %s: %w", *pool, err)
	}
	return targets, true, nil
}

// PlaceOnServer assigns session id, of a workspace with a server pool, to a
// server of that pool, trying zones (names) in order, and moves it to
// running with session.ready (saying which step of search served it), all
// in one transaction. checked maps the id
// of each server a TCP connect was tried to to its failure, "" when it
// answered; a server not in it (added since) counts as unreachable. The pool's servers in those
// zones are locked in id order, so concurrent placements queue and each
// counts the sessions of those committed before it: no server ever holds
// more than its max_sessions.
//
// When the workspace is disabled or no server can take the session, it is
// failed (session.failed emitted) in the same transaction and the returned
// Failure says why, server by server. ErrNotProvisioning when the session
// has moved on.
func (s *Store) PlaceOnServer(ctx context.Context, id string, search domain.ZoneSearch, checked map[string]string) (command.SessionContext, *command.Failure, error) {
	var sc command.SessionContext
	var failure *command.Failure
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		if sc, err = lockProvisioning(ctx, tx, id); err != nil {
			return err
		}
		if !sc.Workspace.ServerPoolID.Valid {
			return fmt.Errorf("workspace %s of session %s has no server pool", sc.Workspace.Name, id)
		}
		if failure, err = s.failDisabled(ctx, tx, &sc); failure != nil || err != nil {
			return err
		}
		var pool struct {
			Name             string `db:"name"`
			ServerAssignment bool   `db:"server_assignment"`
		}
		if err := tx.GetContext(ctx, &pool, `SELECT name, server_assignment FROM pools WHERE id = $1`,
			sc.Workspace.ServerPoolID.String); err != nil {
			return fmt.Errorf("loading server pool of workspace %s: %w", sc.Workspace.Name, err)
		}
		candidates, err := loadServerZones(ctx, tx, sc.Workspace.ServerPoolID.String, search.Order, checked)
		if err != nil {
			return err
		}
		// The user's own server counts wherever it is, even in a zone this
		// request does not search.
		var own string
		if pool.ServerAssignment && sc.Username != "" {
			err := tx.GetContext(ctx, &own, `SELECT name FROM servers WHERE pool_id = $1 AND assigned_user = $2
				ORDER BY name LIMIT 1`, sc.Workspace.ServerPoolID.String, sc.Username)
			if err != nil && !db.IsNotFound(err) {
				return fmt.Errorf("finding the server assigned to %s: %w", sc.Username, err)
			}
		}
		placed, err := domain.PlaceOnServer(candidates, domain.ServerDemand{
			Pool: pool.Name, ServerAssignment: pool.ServerAssignment, User: sc.Username, OwnServer: own,
			IncludeLabels: sc.Workspace.IncludeLabels, ExcludeLabels: sc.Workspace.ExcludeLabels,
		})
		var noCap *domain.NoCapacityError
		if errors.As(err, &noCap) {
			failure = &command.Failure{Reason: events.ReasonNoCapacity,
				Detail: fmt.Sprintf("no server of pool %s can take the session: %s", pool.Name, noCap.Error())}
			return s.failCreation(ctx, tx, &sc, *failure)
		}
		if err != nil {
			return err
		}
		url := domain.ServerURL(placed.Server.Address)
		if sc.Session, err = sessions.Update(ctx, tx, id, sessions.Provisioning, sessions.Change{
			ServerID: &placed.Server.ID, ZoneID: &placed.Zone.ID, URL: &url,
		}); err != nil {
			return err
		}
		if err := completeContext(ctx, tx, &sc); err != nil {
			return err
		}
		return s.running(ctx, tx, &sc, sessions.Provisioning, sc.Session.Origin, search.Served(sc.Zone))
	})
	return sc, failure, err
}

// loadServerZones loads the zones named, in that order, with the servers
// of pool in each, locked, and their live sessions counted after the
// locks.
func loadServerZones(ctx context.Context, tx *sqlx.Tx, pool string, names []string, checked map[string]string) ([]domain.ServerZone, error) {
	zrows, zoneIDs, err := zonesNamed(ctx, tx, names)
	if err != nil {
		return nil, err
	}
	var srows []struct {
		ID           string         `db:"id"`
		Name         string         `db:"name"`
		ZoneID       string         `db:"zone_id"`
		Address      string         `db:"address"`
		MaxSessions  int            `db:"max_sessions"`
		Enabled      bool           `db:"enabled"`
		AssignedUser *string        `db:"assigned_user"`
		Labels       pq.StringArray `db:"labels"`
		PoolLabels   pq.StringArray `db:"pool_labels"`
	}
	if err := tx.SelectContext(ctx, &srows, `SELECT sv.id, sv.name, sv.zone_id, sv.address, sv.max_sessions, sv.enabled,
			sv.assigned_user, sv.labels, p.labels AS pool_labels
		FROM servers sv JOIN pools p ON p.id = sv.pool_id
		WHERE sv.pool_id = $1 AND sv.zone_id = ANY($2)
		ORDER BY sv.id FOR UPDATE OF sv`, pool, pq.Array(zoneIDs)); err != nil {
		return nil, fmt.Errorf("loading the servers of pool %s: %w", pool, err)
	}
	serverIDs := make([]string, 0, len(srows))
	for _, sv := range srows {
		serverIDs = append(serverIDs, sv.ID)
	}
	var counts []struct {
		ServerID string `db:"server_id"`
		N        int    `db:"n"`
	}
	if err := tx.SelectContext(ctx, &counts, `SELECT server_id, count(*) AS n FROM sessions
		WHERE server_id = ANY($1) AND status NOT IN ('destroyed', 'failed') GROUP BY server_id`, pq.Array(serverIDs)); err != nil {
		return nil, fmt.Errorf("counting server sessions: %w", err)
	}
	live := make(map[string]int, len(counts))
	for _, c := range counts {
		live[c.ServerID] = c.N
	}
	byZone := map[string][]domain.Server{}
	for _, sv := range srows {
		why, tried := checked[sv.ID]
		if !tried {
			why = "not checked yet"
		}
		user := ""
		if sv.AssignedUser != nil {
			user = *sv.AssignedUser
		}
		byZone[sv.ZoneID] = append(byZone[sv.ZoneID], domain.Server{
			ID: sv.ID, Name: sv.Name, Address: sv.Address, MaxSessions: sv.MaxSessions, Sessions: live[sv.ID],
			Enabled: sv.Enabled, Reachable: why == "", Unreachable: why, AssignedUser: user,
			Labels: append(append([]string{}, sv.Labels...), sv.PoolLabels...),
		})
	}
	out := make([]domain.ServerZone, 0, len(names))
	for _, name := range names {
		z := domain.ServerZone{Name: name}
		if r, ok := zrows[name]; ok {
			z = domain.ServerZone{ID: r.ID, Name: name, Known: true, Servers: byZone[r.ID]}
		}
		out = append(out, z)
	}
	return out, nil
}
