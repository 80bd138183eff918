package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListServers returns one page (p) of every fixed server.
func (a *App) ListServers(ctx context.Context, p domain.Page) (domain.Paged[domain.Server], error) {
	return paged(a.store.ListServers(ctx, p))
}

// GetServer returns the server named name.
func (a *App) GetServer(ctx context.Context, name string) (domain.Server, error) {
	s, err := a.store.GetServer(ctx, name, NoLock)
	return s, notFoundOr(err, "no server named %q", name)
}

// CreateServer stores a fixed server in a zone and, optionally, a server
// pool.
func (a *App) CreateServer(ctx context.Context, in domain.ServerCreate) (domain.Server, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Server{}, invalid(errs)
	}
	s := in.Server()
	s.ID = domain.NewID()
	err := a.change(ctx, KindServer, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		if err := a.resolveServerRefs(ctx, tx, &s, true); err != nil {
			return "", "", err
		}
		s, err = tx.InsertServer(ctx, s)
		return s.ID, s.Name, err
	})
	return s, explain(err, fmt.Sprintf("server %q", in.Name.Value))
}

// UpdateServer changes the server named name.
func (a *App) UpdateServer(ctx context.Context, name string, in domain.ServerUpdate) (domain.Server, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Server{}, invalid(errs)
	}
	var s domain.Server
	err := a.change(ctx, KindServer, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if s, err = tx.GetServer(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no server named %q", name)
		}
		old := s
		in.Apply(&s)
		if err := a.resolveServerRefs(ctx, tx, &s, in.Zone.Set); err != nil {
			return "", "", err
		}
		if err := serverMoveAllowed(ctx, tx, old, s); err != nil {
			return "", "", err
		}
		s, err = tx.UpdateServer(ctx, s)
		return s.ID, s.Name, err
	})
	return s, explain(err, fmt.Sprintf("server %q", in.Name.Or(name)))
}

// serverMoveAllowed refuses (409) to move a server that has live sessions
// to another pool or zone: its sessions belong to the old pool's workspaces
// and zone, and would count against the new ones. (A lower max_sessions or
// another assigned_user only steers new sessions.)
func serverMoveAllowed(ctx context.Context, tx Tx, old, s domain.Server) error {
	field := ""
	switch {
	case !equalRef(old.PoolID, s.PoolID):
		field = "pool"
	case old.ZoneID != s.ZoneID:
		field = "zone"
	default:
		return nil
	}
	live, err := tx.CountLiveSessionsOnServer(ctx, old.ID)
	if err != nil || live == 0 {
		return err
	}
	return fieldError(Conflict, field, "server %q has %d live session(s) (not destroyed or failed); destroy them or wait for them to end, then change its %s",
		old.Name, live, field)
}

// equalRef reports whether two optional ids are the same reference.
func equalRef(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// resolveServerRefs sets the ids of the zone (when the body named one) and
// pool, and checks the assigned user: a server can only be assigned to a
// user who exists, in a pool that allows server assignment.
func (a *App) resolveServerRefs(ctx context.Context, tx Tx, s *domain.Server, zone bool) error {
	if zone {
		z, err := zoneRef(ctx, tx, "zone", s.Zone)
		if err != nil {
			return err
		}
		s.ZoneID = z.ID
	}
	p, err := poolRef(ctx, tx, "pool", s.Pool, domain.PoolServer)
	if err != nil {
		return err
	}
	s.PoolID = poolID(p)
	if s.AssignedUser == nil {
		return nil
	}
	if _, err := tx.GetUser(ctx, *s.AssignedUser, ForShare); err != nil {
		return refError(err, Invalid, "assigned_user", "user", *s.AssignedUser)
	}
	if p == nil || !p.ServerAssignment {
		return fieldError(Invalid, "assigned_user", "server %q can only be assigned to a user in a server pool with server_assignment", s.Name)
	}
	return nil
}

// DeleteServer deletes the server named name, unless sessions still live
// on it; its ended sessions forget it.
func (a *App) DeleteServer(ctx context.Context, name string) error {
	err := a.change(ctx, KindServer, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		s, err := tx.GetServer(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no server named %q", name)
		}
		// Counted after the lock, in a statement of its own: a session
		// assigned to the server while the lock was awaited is seen, and no
		// new one can be assigned until this transaction ends.
		live, err := tx.CountLiveSessionsOnServer(ctx, s.ID)
		if err != nil {
			return "", "", err
		}
		if live > 0 {
			return "", "", conflict("server %q has %d live session(s) (not destroyed or failed); destroy them or wait for them to end, then delete the server", s.Name, live)
		}
		return s.ID, s.Name, tx.DeleteServer(ctx, s.ID)
	})
	return explain(err, fmt.Sprintf("server %q", name))
}
