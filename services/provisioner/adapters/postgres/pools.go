package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/schedule"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// refillLockKey names the transaction-level advisory lock under which a
// reconcile pass that creates sessions counts the refills in flight over
// every pool and the room left in its zone, so that passes of different
// pools, on any replica, never exceed the refill budget together nor
// count the same room twice.
const refillLockKey int64 = 0x6772_6f6f_6d72_6631 // "groomrf1"

// ListStagingConfigs returns the staging configs a reconcile pass visits:
// every live one, and deleted ones that still hold staged or provisioning
// sessions.
func (s *Store) ListStagingConfigs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `SELECT c.id FROM staging_configs c
		WHERE c.deleted_at IS NULL
		   OR EXISTS (SELECT 1 FROM sessions s WHERE s.staging_config_id = c.id AND s.status IN ('provisioning', 'staged'))
		ORDER BY c.created_at, c.id`)
	if err != nil {
		return nil, fmt.Errorf("listing staging configs: %w", err)
	}
	return ids, nil
}

// stagingConfigRow is a staging config with its workspace and zone.
type stagingConfigRow struct {
	ID          string `db:"id"`
	ZoneID      string `db:"zone_id"`
	WorkspaceID string `db:"workspace_id"`
	// Desired is the config's desired_sessions as read, then (once
	// ReconcileStagingConfig read the schedule) what the pool aims for
	// now: the desired_sessions of the schedule's entry in effect, if any.
	Desired          int               `db:"desired_sessions"`
	Schedule         schedule.Schedule `db:"schedule"`
	Deleted          bool              `db:"deleted"`
	Status           string            `db:"status"`
	LastError        string            `db:"last_error"`
	Workspace        string            `db:"workspace"`
	WorkspaceEnabled bool              `db:"workspace_enabled"`
	Cores            float64           `db:"cores"`
	MemoryMB         int               `db:"memory_mb"`
	IncludeLabels    pq.StringArray    `db:"include_labels"`
	ExcludeLabels    pq.StringArray    `db:"exclude_labels"`
	Zone             string            `db:"zone"`
	Now              time.Time         `db:"now"`
	events.Permissions
	// WorkspaceRevision, AllowOriginDomain and UpstreamAuthAddress, with
	// the permissions, make the pool's revision (domain.PoolRevision).
	WorkspaceRevision   int64  `db:"workspace_revision"`
	AllowOriginDomain   string `db:"allow_origin_domain"`
	UpstreamAuthAddress string `db:"upstream_auth_address"`
}

// revision is the configuration the pool's containers are made with now.
func (c stagingConfigRow) revision() string {
	return domain.PoolRevision(c.WorkspaceRevision, c.Permissions, c.AllowOriginDomain, c.UpstreamAuthAddress)
}

// ReconcileStagingConfig brings one staging config towards its desired
// size in one transaction holding the config's row lock, so that any number
// of replicas reconciling it at once act one after the other on what the
// previous one committed and never over- or under-provision.
//
// Deletions come first: the sessions the plan destroys (stale, then
// excess; provisioning ones too — their creation, finding them gone,
// removes what it made) move to destroying with session.destroy, whose
// reason says why (domain.PoolState.DestroyReason: pool_shrink, pool_roll,
// staging_config_deleted). Then creating inserts sessions in provisioning with
// provision.requested each, only as many as the zone has room for, each
// recording the pool's revision (domain.PoolRevision): a session whose
// revision differs from the pool's later is stale, and rolled. The
// status is written when it changes; a new cause of shortfall also goes to
// last_error and last_error_at and is announced by staging.shortfall.
//
// The desired size is the schedule's while a run of it is in effect at the
// pass's time (the database's clock, or pass.ScheduleAt), and the outcome
// says when the schedule next changes it.
func (s *Store) ReconcileStagingConfig(ctx context.Context, id string, pass staging.PoolPass) (staging.PoolOutcome, error) {
	var out staging.PoolOutcome
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var c stagingConfigRow
		err := tx.GetContext(ctx, &c, `SELECT c.id, c.zone_id, c.workspace_id, c.desired_sessions, c.schedule,
				c.deleted_at IS NOT NULL AS deleted, c.status, c.last_error,
				c.allow_audio, c.allow_clipboard_down, c.allow_clipboard_up, c.allow_downloads,
				c.allow_microphone, c.allow_uploads, c.allow_gamepad,
				w.name AS workspace, w.enabled AS workspace_enabled, w.cores, w.memory_mb,
				w.include_labels, w.exclude_labels, w.revision AS workspace_revision,
				z.name AS zone, z.allow_origin_domain, z.upstream_auth_address, now() AS now
			FROM staging_configs c
			JOIN workspaces w ON w.id = c.workspace_id
			JOIN zones z ON z.id = c.zone_id
			WHERE c.id = $1
			FOR UPDATE OF c`, id)
		if db.IsNotFound(err) {
			out.Gone = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("locking staging config %s: %w", id, err)
		}
		if !c.Deleted {
			out.ScheduleChange = readSchedule(&c, pass.ScheduleAt)
		}
		state, err := loadPoolState(ctx, tx, c)
		if err != nil {
			return err
		}
		state.CapacityWaits, state.Forced = pass.CapacityWaits, pass.Forced
		if state.Deficit() > 0 && state.WorkspaceEnabled {
			if state.RefillBudget, err = refillBudget(ctx, tx, pass.RefillLimit); err != nil {
				return err
			}
			if state.Room, state.RoomShort, err = roomInZone(ctx, tx, c, state.Deficit(), pass.Outages); err != nil {
				return err
			}
		}
		out.Plan = pass.Decide(state)
		out.DBNow = state.Now

		staged := map[string]bool{}
		for _, m := range state.Members {
			staged[m.ID] = m.Staged
		}
		for _, sid := range out.Plan.Destroy {
			from := sessions.Provisioning
			if staged[sid] {
				from = sessions.Staged
			}
			_, err := sessions.Transition(ctx, tx, sid, from, sessions.Destroying, sessions.Change{})
			if errors.Is(err, sessions.ErrStale) {
				// Claimed for a user (never ours to destroy), staged or
				// failed since it was read: the next pass sees it as it is.
				continue
			}
			if err != nil {
				return err
			}
			reason := state.DestroyReason(sid)
			if err := s.emit(ctx, tx, events.TypeSessionDestroy, events.SessionDestroy{SessionID: sid, Reason: reason}, ""); err != nil {
				return err
			}
			out.Destroyed = append(out.Destroyed, sid)
		}
		for range out.Plan.Create {
			sid, err := s.requestStagedSession(ctx, tx, c)
			if err != nil {
				return err
			}
			out.Created = append(out.Created, sid)
		}
		if c.Deleted {
			return nil
		}
		out.Announced, out.Recovered, err = s.writePoolStatus(ctx, tx, c, state, out.Plan)
		return err
	})
	return out, err
}

// readSchedule sets c.Desired to the size c's schedule has the pool aim
// for at the time at (the database's clock when zero), and returns how
// long after at the schedule next changes it (zero: never).
func readSchedule(c *stagingConfigRow, at time.Time) time.Duration {
	if at.IsZero() {
		at = c.Now
	}
	c.Desired, _ = schedule.Effective(c.Schedule, c.Desired, at)
	if next := schedule.NextChange(c.Schedule, at); !next.IsZero() {
		return next.Sub(at)
	}
	return 0
}

// loadPoolState reads c's sessions and recent failures.
func loadPoolState(ctx context.Context, tx *sqlx.Tx, c stagingConfigRow) (domain.PoolState, error) {
	state := domain.PoolState{
		ConfigID: c.ID, Zone: c.Zone, Workspace: c.Workspace, Desired: c.Desired, Deleted: c.Deleted,
		WorkspaceEnabled: c.WorkspaceEnabled, Now: c.Now,
	}
	perms, err := json.Marshal(c.Permissions)
	if err != nil {
		return state, err
	}
	var rows []struct {
		ID        string          `db:"id"`
		Status    sessions.Status `db:"status"`
		Since     time.Time       `db:"since"`
		Current   bool            `db:"current"`
		Claimable bool            `db:"claimable"`
	}
	// jsonb equality is the claim's own test of permissions
	// (sessions.ClaimStagedSQL). The revision covers the permissions too;
	// they are compared on their own because a session started with
	// other permissions is never claimed, so it is not worth keeping
	// through a roll.
	//
	// A session on an agent the autoscaler drains is stale too: the roll
	// replaces it on an active agent (placement passes draining ones over)
	// before it is destroyed, so the pool keeps its size while the agent
	// empties.
	if err := tx.SelectContext(ctx, &rows, `SELECT id, status, COALESCE(staged_at, created_at) AS since,
			revision = $3 AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = sessions.agent_id AND a.lifecycle <> 'active') AS current,
			permissions = $2::jsonb AS claimable
		FROM sessions
		WHERE staging_config_id = $1 AND status IN ('provisioning', 'staged', 'destroying')`, c.ID, string(perms), c.revision()); err != nil {
		return state, fmt.Errorf("loading sessions of staging config %s: %w", c.ID, err)
	}
	for _, r := range rows {
		if r.Status == sessions.Destroying {
			state.Destroying++
			continue
		}
		state.Members = append(state.Members, domain.PoolMember{
			ID: r.ID, Staged: r.Status == sessions.Staged, Since: r.Since,
			Stale: !r.Current || !r.Claimable, Unclaimable: !r.Claimable,
		})
	}
	// Failures since the pool last had a healthy session staged: the
	// backoff, and what the last one says about the pool. A staged session
	// whose container died young (within DiedYoungWithin of being staged)
	// is a failed creation too, not a success: otherwise a workspace that
	// answers its probe and then crashes would be re-created forever with
	// no backoff and no shortfall. A container removed behind Greenroom's
	// back (make down, an operator) did not die: its session is neither a
	// failure nor the end of a run of them.
	var last sql.NullString
	var lastAt sql.NullTime
	if err := tx.QueryRowxContext(ctx, `WITH died_young AS (
			SELECT id FROM sessions
			WHERE staging_config_id = $1 AND status = 'failed' AND staged_at IS NOT NULL
			  AND failure_reason LIKE 'container_gone%' AND failure_reason <> ALL($4)
			  AND destroyed_at < staged_at + $2::interval
		), healthy AS (
			-- removed young says nothing either way: not a success either
			SELECT max(staged_at) AS at FROM sessions
			WHERE staging_config_id = $1 AND staged_at IS NOT NULL AND id NOT IN (SELECT id FROM died_young)
			  AND NOT (status = 'failed' AND failure_reason = ANY($4) AND destroyed_at < staged_at + $2::interval)
		)
		SELECT count(*), max(destroyed_at), (array_agg(failure_reason ORDER BY destroyed_at DESC))[1]
		FROM sessions, healthy
		WHERE staging_config_id = $1 AND status = 'failed'
		  AND (staged_at IS NULL OR id IN (SELECT id FROM died_young))
		  AND created_at > COALESCE(healthy.at, '-infinity')
		  -- a disabled workspace that is enabled again no longer holds the pool back
		  AND NOT ($3 AND failure_reason LIKE 'workspace_disabled%')`,
		c.ID, fmt.Sprintf("%d milliseconds", domain.DiedYoungWithin.Milliseconds()), c.WorkspaceEnabled,
		pq.Array(containerRemovedFailures())).Scan(&state.Failures.Consecutive, &lastAt, &last); err != nil {
		return state, fmt.Errorf("reading failures of staging config %s: %w", c.ID, err)
	}
	state.Failures.LastAt, state.Failures.Last = lastAt.Time, last.String
	return state, nil
}

// containerRemovedFailures are the failure_reason values of sessions
// whose container was removed rather than died.
func containerRemovedFailures() []string {
	out := make([]string, len(domain.ContainerRemovedSightings))
	for i, seen := range domain.ContainerRemovedSightings {
		out[i] = events.RecordedFailure(events.ReasonContainerGone, seen)
	}
	return out
}

// refillBudget is how many more staged sessions may start provisioning
// now. It takes the refill lock for the rest of the transaction.
func refillBudget(ctx context.Context, tx *sqlx.Tx, limit int) (int, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, refillLockKey); err != nil {
		return 0, fmt.Errorf("taking the refill lock: %w", err)
	}
	var inFlight int
	if err := tx.GetContext(ctx, &inFlight, `SELECT count(*) FROM sessions
		WHERE status = 'provisioning' AND origin = 'staged'`); err != nil {
		return 0, fmt.Errorf("counting refills in flight: %w", err)
	}
	return max(0, limit-inFlight), nil
}

// roomInZone counts how many more sessions of c, up to limit, fit on the
// enabled agents of c's zone, after the sessions of the zone not placed
// yet, counting no room on agents whose engine outages knows to be down
// (as placement puts nothing there). Called under the refill lock, it sees
// the sessions every other pass inserted before it; placement itself stays
// the authority (it locks the agents), this only keeps a pass from
// inserting rows that could only fail.
func roomInZone(ctx context.Context, tx *sqlx.Tx, c stagingConfigRow, limit int, outages engineOutages) (int, string, error) {
	// Pending sessions first: one placed between the two reads then counts
	// twice (too little room, corrected by the next pass) rather than not
	// at all.
	var pending []struct {
		Cores    float64 `db:"cores"`
		MemoryMB int64   `db:"memory_mb"`
	}
	// Sessions of a server-pool workspace never take an agent.
	if err := tx.SelectContext(ctx, &pending, `SELECT s.cores, s.memory_mb FROM sessions s
		JOIN workspaces w ON w.id = s.workspace_id
		WHERE s.zone_id = $1 AND s.status = 'provisioning' AND s.agent_id IS NULL AND w.server_pool_id IS NULL
		ORDER BY s.created_at`, c.ZoneID); err != nil {
		return 0, "", fmt.Errorf("reading sessions waiting for an agent in zone %s: %w", c.Zone, err)
	}
	zones, err := loadZones(ctx, tx, []string{c.Zone}, readAgentsOnly, outages)
	if err != nil {
		return 0, "", err
	}
	need := make([]domain.Resources, len(pending))
	for i, p := range pending {
		need[i] = domain.Resources{MilliCores: domain.MilliCores(p.Cores), MemoryMB: p.MemoryMB}
	}
	room, short := domain.RoomInZone(zones[0], need, domain.Demand{
		Need:          domain.Resources{MilliCores: domain.MilliCores(c.Cores), MemoryMB: int64(c.MemoryMB)},
		IncludeLabels: c.IncludeLabels, ExcludeLabels: c.ExcludeLabels,
	}, limit)
	return room, short, nil
}

// requestStagedSession inserts a staged session of c in provisioning and
// asks for its container.
func (s *Store) requestStagedSession(ctx context.Context, tx *sqlx.Tx, c stagingConfigRow) (string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := sessions.Insert(ctx, tx, sessions.New{
		ID: id, WorkspaceID: c.WorkspaceID, ZoneID: c.ZoneID, StagingConfigID: c.ID,
		Origin: sessions.OriginStaged, Permissions: c.Permissions, Cores: c.Cores, MemoryMB: c.MemoryMB,
		Revision: c.revision(),
	}); err != nil {
		return "", err
	}
	err := s.emit(ctx, tx, events.TypeProvisionRequested, events.ProvisionRequested{
		SessionID: id, Workspace: c.Workspace, Zones: []string{c.Zone},
		Origin: sessions.OriginStaged, StagingConfigID: c.ID,
	}, "")
	return id, err
}

// writePoolStatus records the pool's status when it changed. A shortfall
// whose kind differs from the one on the config (or a pool entering
// shortfall) is written with last_error and last_error_at and announced by
// staging.shortfall, and returned so the caller logs it: once per change
// of cause, not per retry, however many replicas retry. The same kind with
// other words (fewer free cores, another container) only refreshes
// last_error. A pool leaving shortfall keeps its last_error as history.
func (s *Store) writePoolStatus(ctx context.Context, tx *sqlx.Tx, c stagingConfigRow, state domain.PoolState, plan domain.PoolPlan) (*domain.Shortfall, bool, error) {
	wasShort := c.Status == string(domain.PoolShortfall)
	if sf := plan.Shortfall; sf != nil {
		msg := sf.Message()
		if wasShort && domain.ShortfallKindOf(c.LastError) == sf.Kind {
			if c.LastError == msg {
				return nil, false, nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE staging_configs SET last_error = $2, last_error_at = now() WHERE id = $1`, c.ID, msg); err != nil {
				return nil, false, fmt.Errorf("writing last error of staging config %s: %w", c.ID, err)
			}
			return nil, false, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staging_configs SET status = 'shortfall', last_error = $2, last_error_at = now() WHERE id = $1`, c.ID, msg); err != nil {
			return nil, false, fmt.Errorf("writing status of staging config %s: %w", c.ID, err)
		}
		err := s.emit(ctx, tx, events.TypeStagingShortfall, events.StagingShortfall{
			StagingConfigID: c.ID, Zone: c.Zone, Workspace: c.Workspace,
			Desired: c.Desired, Current: state.Current(), Reason: msg, Permanent: sf.Permanent,
		}, "")
		return sf, false, err
	}
	if c.Status == string(plan.Status) {
		return nil, false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE staging_configs SET status = $2 WHERE id = $1`, c.ID, string(plan.Status)); err != nil {
		return nil, false, fmt.Errorf("writing status of staging config %s: %w", c.ID, err)
	}
	return nil, wasShort, nil
}
