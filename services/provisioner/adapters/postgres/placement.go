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
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// ErrNotProvisioning means the session has left status provisioning (it
// was failed by the expiry service, destroyed, or already provisioned by an
// earlier delivery), so there is nothing to provision.
var ErrNotProvisioning = errors.New("session is not provisioning")

// Failure is why a session failed, as session.failed reports it.
type Failure struct {
	Reason string
	Detail string
	// Observed, when set, is what was seen, recorded with Reason as the
	// session's failure_reason ("container_gone: exited (code 137)");
	// without it failure_reason is Reason alone.
	Observed string
}

// recorded is the session's failure_reason.
func (f Failure) recorded() string {
	if f.Observed == "" {
		return f.Reason
	}
	return f.Reason + ": " + f.Observed
}

// PlaceSession decides which agent hosts session id, trying zones (names)
// in order, and reserves its capacity there, all in one transaction:
// every enabled agent of the candidate zones is locked (in id order, so
// concurrent placements queue instead of deadlocking), its free capacity is
// its cores and memory less what its live sessions hold, and the chosen
// agent is written to the session, which from then on counts against it.
// So no number of concurrent provisioners can over-commit an agent.
//
// A session placed by an earlier delivery keeps its agent. When the
// workspace is disabled or no zone has room, the session is failed (and
// session.failed emitted) in the same transaction and the returned Failure
// says why. ErrNotProvisioning when the session has moved on.
func (s *Store) PlaceSession(ctx context.Context, id string, zones []string) (SessionContext, *Failure, error) {
	var sc SessionContext
	var failure *Failure
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := lockSession(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if sc, err = loadContext(ctx, tx, id); err != nil {
			return err
		}
		if sc.Session.Status != sessions.Provisioning {
			return fmt.Errorf("%w: %s is %s", ErrNotProvisioning, id, sc.Session.Status)
		}
		if sc.Agent != nil {
			return nil
		}
		if !sc.Workspace.Enabled {
			failure = &Failure{Reason: events.ReasonWorkspaceDisabled, Detail: fmt.Sprintf("workspace %s is disabled", sc.Workspace.Name)}
			return s.fail(ctx, tx, &sc, sessions.Provisioning, *failure)
		}
		candidates, err := candidateZones(ctx, tx, zones)
		if err != nil {
			return err
		}
		placed, err := domain.PlaceSession(candidates, domain.Demand{
			Need:          domain.Resources{MilliCores: domain.MilliCores(sc.Session.Cores), MemoryMB: int64(sc.Session.MemoryMB)},
			IncludeLabels: sc.Workspace.IncludeLabels,
			ExcludeLabels: sc.Workspace.ExcludeLabels,
		})
		var noCap *domain.NoCapacityError
		if errors.As(err, &noCap) {
			failure = &Failure{Reason: events.ReasonNoCapacity, Detail: noCap.Error()}
			return s.fail(ctx, tx, &sc, sessions.Provisioning, *failure)
		}
		if err != nil {
			return err
		}
		sc.Session, err = sessions.Update(ctx, tx, id, sessions.Provisioning, sessions.Change{
			AgentID: &placed.Agent.ID, ZoneID: &placed.Zone.ID,
		})
		if err != nil {
			return err
		}
		return completeContext(ctx, tx, &sc)
	})
	return sc, failure, err
}

// candidateZones loads the zones named, in that order, with their enabled
// agents locked and their usage summed.
func candidateZones(ctx context.Context, tx *sqlx.Tx, names []string) ([]domain.Zone, error) {
	var zrows []struct {
		ID            string `db:"id"`
		Name          string `db:"name"`
		LoadBalancing string `db:"load_balancing"`
	}
	if err := tx.SelectContext(ctx, &zrows, `SELECT id, name, load_balancing FROM zones WHERE name = ANY($1)`, pq.Array(names)); err != nil {
		return nil, fmt.Errorf("loading zones %v: %w", names, err)
	}
	zoneIDs := make([]string, 0, len(zrows))
	for _, z := range zrows {
		zoneIDs = append(zoneIDs, z.ID)
	}
	var arows []struct {
		ID         string         `db:"id"`
		Name       string         `db:"name"`
		ZoneID     string         `db:"zone_id"`
		Cores      float64        `db:"cores"`
		MemoryMB   int64          `db:"memory_mb"`
		Labels     pq.StringArray `db:"labels"`
		PoolLabels pq.StringArray `db:"pool_labels"`
	}
	if err := tx.SelectContext(ctx, &arows, `SELECT a.id, a.name, a.zone_id, a.cores, a.memory_mb, a.labels,
			COALESCE(p.labels, '{}') AS pool_labels
		FROM agents a LEFT JOIN pools p ON p.id = a.pool_id
		WHERE a.zone_id = ANY($1) AND a.enabled
		ORDER BY a.id
		FOR UPDATE OF a`, pq.Array(zoneIDs)); err != nil {
		return nil, fmt.Errorf("locking agents of zones %v: %w", names, err)
	}
	agentIDs := make([]string, 0, len(arows))
	for _, a := range arows {
		agentIDs = append(agentIDs, a.ID)
	}
	var urows []struct {
		AgentID  string  `db:"agent_id"`
		Cores    float64 `db:"cores"`
		MemoryMB int64   `db:"memory_mb"`
	}
	// Read after the locks, so it sees every placement committed before.
	if err := tx.SelectContext(ctx, &urows, `SELECT agent_id, COALESCE(sum(cores), 0) AS cores, COALESCE(sum(memory_mb), 0) AS memory_mb
		FROM sessions
		WHERE agent_id = ANY($1) AND status NOT IN ('destroyed', 'failed')
		GROUP BY agent_id`, pq.Array(agentIDs)); err != nil {
		return nil, fmt.Errorf("summing agent usage: %w", err)
	}
	used := make(map[string]domain.Resources, len(urows))
	for _, u := range urows {
		used[u.AgentID] = domain.Resources{MilliCores: domain.MilliCores(u.Cores), MemoryMB: u.MemoryMB}
	}
	byZone := map[string][]domain.Agent{}
	for _, a := range arows {
		byZone[a.ZoneID] = append(byZone[a.ZoneID], domain.Agent{
			ID: a.ID, Name: a.Name,
			Capacity: domain.Resources{MilliCores: domain.MilliCores(a.Cores), MemoryMB: a.MemoryMB},
			Used:     used[a.ID],
			Labels:   append(append([]string{}, a.Labels...), a.PoolLabels...),
		})
	}
	out := make([]domain.Zone, 0, len(names))
	for _, n := range names {
		z := domain.Zone{Name: n}
		for _, r := range zrows {
			if r.Name == n {
				z = domain.Zone{ID: r.ID, Name: n, LoadBalancing: domain.LoadBalancing(r.LoadBalancing), Known: true, Agents: byZone[r.ID]}
			}
		}
		out = append(out, z)
	}
	return out, nil
}
