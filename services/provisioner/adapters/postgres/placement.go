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

// PlaceSession decides which agent hosts session id, trying zones (names)
// in order, and reserves its capacity there, all in one transaction:
// every enabled, active agent (not one being made, drained or deleted by
// the autoscaler) of the candidate zones is locked (in id order, so
// concurrent placements queue instead of deadlocking), its free capacity is
// its cores and memory less what its live sessions hold, and the chosen
// agent is written to the session, which from then on counts against it.
// So no number of concurrent provisioners can over-commit an agent.
//
// An agent whose engine outages knows to be down is passed over
// (domain.Agent.Outage). A session placed by an earlier delivery keeps its
// agent. When the workspace is disabled or no zone has room, the session
// is failed (and session.failed emitted) in the same transaction and the
// returned Failure says why. ErrNotProvisioning when the session has moved
// on.
func (s *Store) PlaceSession(ctx context.Context, id string, zones []string, outages command.EngineOutages) (command.SessionContext, *command.Failure, error) {
	var sc command.SessionContext
	var failure *command.Failure
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		if sc, err = lockProvisioning(ctx, tx, id); err != nil || sc.Agent != nil {
			return err
		}
		if failure, err = s.failDisabled(ctx, tx, &sc); failure != nil || err != nil {
			return err
		}
		candidates, err := loadZones(ctx, tx, zones, lockAgents, outages)
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
			failure = &command.Failure{Reason: events.ReasonNoCapacity, Detail: noCap.Error()}
			return s.failCreation(ctx, tx, &sc, *failure)
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

// lockProvisioning locks session id for the transaction and loads it with
// its context; ErrNotProvisioning when it has moved on.
func lockProvisioning(ctx context.Context, tx *sqlx.Tx, id string) (command.SessionContext, error) {
	if err := lockSession(ctx, tx, id); err != nil {
		return command.SessionContext{}, err
	}
	sc, err := loadContext(ctx, tx, id)
	if err != nil {
		return sc, err
	}
	if sc.Session.Status != sessions.Provisioning {
		return sc, fmt.Errorf("%w: %s is %s", command.ErrNotProvisioning, id, sc.Session.Status)
	}
	return sc, nil
}

// failDisabled fails sc, in tx, when its workspace is disabled, and says
// why; nil when it is enabled.
func (s *Store) failDisabled(ctx context.Context, tx *sqlx.Tx, sc *command.SessionContext) (*command.Failure, error) {
	if sc.Workspace.Enabled {
		return nil, nil
	}
	f := &command.Failure{Reason: events.ReasonWorkspaceDisabled, Detail: fmt.Sprintf("workspace %s is disabled", sc.Workspace.Name)}
	return f, s.failCreation(ctx, tx, sc, *f)
}

// FailCreation fails a session whose container could not be made (it is
// still provisioning) and emits session.failed. sessions.ErrStale when it
// left provisioning meanwhile.
func (s *Store) FailCreation(ctx context.Context, sc *command.SessionContext, f command.Failure) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return s.failCreation(ctx, tx, sc, f)
	})
}

// failCreation is FailCreation in tx. Unlike fail it leaves a staged
// session's staging config alone: the pool's reconcile pass, which this
// failure triggers, reads the failure back and puts it on the config's
// status once per change of cause (pools.go). Writing the config here
// would also lock it after the session, the reverse of a reconcile pass,
// which locks the config and then moves its sessions.
func (s *Store) failCreation(ctx context.Context, tx *sqlx.Tx, sc *command.SessionContext, f command.Failure) error {
	updated, err := sessions.Transition(ctx, tx, sc.Session.ID, sessions.Provisioning, sessions.Failed,
		sessions.Change{FailureReason: sessions.Ptr(f.Recorded())})
	if err != nil {
		return err
	}
	sc.Session = updated
	return s.emitOutcome(ctx, tx, sc, events.TypeSessionFailed, events.SessionFailed{
		RequestID: sc.RequestID(), SessionID: sc.Session.ID, Reason: f.Reason, Detail: f.Detail,
	}, sc.RequestID())
}

// zoneRow is a zone as placement reads it.
type zoneRow struct {
	ID            string `db:"id"`
	Name          string `db:"name"`
	LoadBalancing string `db:"load_balancing"`
}

// zonesNamed loads the zones named, by name (a name no zone has is absent),
// and their ids.
func zonesNamed(ctx context.Context, tx *sqlx.Tx, names []string) (map[string]zoneRow, []string, error) {
	var rows []zoneRow
	if err := tx.SelectContext(ctx, &rows, `SELECT id, name, load_balancing FROM zones WHERE name = ANY($1)`, pq.Array(names)); err != nil {
		return nil, nil, fmt.Errorf("loading zones %v: %w", names, err)
	}
	byName := make(map[string]zoneRow, len(rows))
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		byName[r.Name] = r
		ids = append(ids, r.ID)
	}
	return byName, ids, nil
}

// Whether loadZones locks the agents it reads.
const (
	lockAgents     = true
	readAgentsOnly = false
)

// engineOutages tells which engines are known not to answer
// (command.EngineOutages, staging.EngineOutages).
type engineOutages interface {
	Outage(endpoint string) *domain.EngineOutage
}

// loadZones loads the zones named, in that order, with their enabled
// agents and their usage summed, and the outage of each agent's engine
// that outages (when not nil) knows of. Placement locks the agents (lock),
// so that concurrent placements queue and each sees those committed
// before.
func loadZones(ctx context.Context, tx *sqlx.Tx, names []string, lock bool, outages engineOutages) ([]domain.Zone, error) {
	zrows, zoneIDs, err := zonesNamed(ctx, tx, names)
	if err != nil {
		return nil, err
	}
	var arows []struct {
		ID         string         `db:"id"`
		Name       string         `db:"name"`
		ZoneID     string         `db:"zone_id"`
		Endpoint   string         `db:"docker_endpoint"`
		Cores      float64        `db:"cores"`
		MemoryMB   int64          `db:"memory_mb"`
		Labels     pq.StringArray `db:"labels"`
		PoolLabels pq.StringArray `db:"pool_labels"`
	}
	query := `SELECT a.id, a.name, a.zone_id, a.docker_endpoint, a.cores, a.memory_mb, a.labels,
			COALESCE(p.labels, '{}') AS pool_labels
		FROM agents a LEFT JOIN pools p ON p.id = a.pool_id
		WHERE a.zone_id = ANY($1) AND a.enabled AND a.lifecycle = 'active'
		ORDER BY a.id`
	if lock {
		query += ` FOR UPDATE OF a`
	}
	if err := tx.SelectContext(ctx, &arows, query, pq.Array(zoneIDs)); err != nil {
		return nil, fmt.Errorf("loading agents of zones %v: %w", names, err)
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
	// Read after the locks (when taken), so it sees every placement
	// committed before.
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
		var outage *domain.EngineOutage
		if outages != nil {
			outage = outages.Outage(a.Endpoint)
		}
		byZone[a.ZoneID] = append(byZone[a.ZoneID], domain.Agent{
			ID: a.ID, Name: a.Name,
			Capacity: domain.Resources{MilliCores: domain.MilliCores(a.Cores), MemoryMB: a.MemoryMB},
			Used:     used[a.ID],
			Labels:   append(append([]string{}, a.Labels...), a.PoolLabels...),
			Outage:   outage,
		})
	}
	out := make([]domain.Zone, 0, len(names))
	for _, n := range names {
		z := domain.Zone{Name: n}
		if r, ok := zrows[n]; ok {
			z = domain.Zone{ID: r.ID, Name: n, LoadBalancing: domain.LoadBalancing(r.LoadBalancing), Known: true, Agents: byZone[r.ID]}
		}
		out = append(out, z)
	}
	return out, nil
}
