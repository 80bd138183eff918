package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// refillLockKey names the transaction-level advisory lock under which a
// reconcile pass counts the refills in flight over every pool, so that
// passes of different pools, on any replica, never exceed the refill
// budget together.
const refillLockKey int64 = 0x6772_6f6f_6d72_6631 // "groomrf1"

// ReasonPoolShrink is the session.destroy reason of staged sessions
// beyond their pool's desired size.
const ReasonPoolShrink = "pool_shrink"

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

// PoolOutcome is what one reconcile of a staging config did.
type PoolOutcome struct {
	Plan domain.PoolPlan
	// Created are the sessions inserted (and their provisioning requested).
	Created []string
	// Destroyed are the staged sessions moved to destroying.
	Destroyed []string
	// Gone is true when the staging config no longer exists.
	Gone bool
}

// stagingConfigRow is a staging config with its workspace and zone.
type stagingConfigRow struct {
	ID               string       `db:"id"`
	ZoneID           string       `db:"zone_id"`
	WorkspaceID      string       `db:"workspace_id"`
	Desired          int          `db:"desired_sessions"`
	Deleted          bool         `db:"deleted"`
	Status           string       `db:"status"`
	LastError        string       `db:"last_error"`
	Workspace        string       `db:"workspace"`
	WorkspaceEnabled bool         `db:"workspace_enabled"`
	Cores            float64      `db:"cores"`
	MemoryMB         int          `db:"memory_mb"`
	Zone             string       `db:"zone"`
	Now              time.Time    `db:"now"`
	LastFailureAt    sql.NullTime `db:"-"`
	Failures         int          `db:"-"`
	events.Permissions
}

// ReconcileStagingConfig brings one staging config towards its desired
// size in one transaction holding the config's row lock, so that any number
// of replicas reconciling it at once act one after the other on what the
// previous one committed and never over-provision. decide is the pure
// decision (domain.PlanPool with the reconciler's settings); refillLimit
// bounds the staged sessions provisioning at once over every pool.
//
// Creating inserts sessions in provisioning and emits
// provision.requested for each; destroying moves the newest staged
// sessions to destroying and emits session.destroy (reason pool_shrink);
// the status (ok, filling, shortfall) is written when it changes.
func (s *Store) ReconcileStagingConfig(ctx context.Context, id string, refillLimit int, decide func(domain.PoolState) domain.PoolPlan) (PoolOutcome, error) {
	var out PoolOutcome
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var c stagingConfigRow
		err := tx.GetContext(ctx, &c, `SELECT c.id, c.zone_id, c.workspace_id, c.desired_sessions,
				c.deleted_at IS NOT NULL AS deleted, c.status, c.last_error,
				c.allow_audio, c.allow_clipboard_down, c.allow_clipboard_up, c.allow_downloads,
				c.allow_microphone, c.allow_uploads, c.allow_gamepad,
				w.name AS workspace, w.enabled AS workspace_enabled, w.cores, w.memory_mb,
				z.name AS zone, now() AS now
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
		// Failures since the pool last had a session staged: the backoff.
		if err := tx.QueryRowxContext(ctx, `SELECT count(*), max(destroyed_at) FROM sessions
			WHERE staging_config_id = $1 AND status = 'failed' AND staged_at IS NULL
			  AND created_at > COALESCE((SELECT max(staged_at) FROM sessions WHERE staging_config_id = $1), '-infinity')`,
			id).Scan(&c.Failures, &c.LastFailureAt); err != nil {
			return fmt.Errorf("reading failures of staging config %s: %w", id, err)
		}
		var rows []struct {
			ID       string          `db:"id"`
			Status   sessions.Status `db:"status"`
			StagedAt sql.NullTime    `db:"staged_at"`
		}
		if err := tx.SelectContext(ctx, &rows, `SELECT id, status, staged_at FROM sessions
			WHERE staging_config_id = $1 AND status IN ('provisioning', 'staged')`, id); err != nil {
			return fmt.Errorf("loading sessions of staging config %s: %w", id, err)
		}
		state := domain.PoolState{
			ConfigID: id, Desired: c.Desired, Deleted: c.Deleted, WorkspaceEnabled: c.WorkspaceEnabled,
			Failures: domain.FailureHistory{Consecutive: c.Failures, LastAt: c.LastFailureAt.Time},
			Now:      c.Now,
		}
		for _, r := range rows {
			if r.Status == sessions.Staged {
				state.Staged = append(state.Staged, domain.StagedSession{ID: r.ID, StagedAt: r.StagedAt.Time})
			} else {
				state.Provisioning++
			}
		}
		if state.Deficit() > 0 {
			if state.RefillBudget, err = refillBudget(ctx, tx, refillLimit); err != nil {
				return err
			}
		}
		out.Plan = decide(state)

		for range out.Plan.Create {
			sid, err := s.requestStagedSession(ctx, tx, c)
			if err != nil {
				return err
			}
			out.Created = append(out.Created, sid)
		}
		for _, sid := range out.Plan.Destroy {
			_, err := sessions.Transition(ctx, tx, sid, sessions.Staged, sessions.Destroying, sessions.Change{})
			if errors.Is(err, sessions.ErrStale) {
				continue // claimed for a user since we read it: no longer ours to shrink
			}
			if err != nil {
				return err
			}
			if err := s.emit(ctx, tx, events.TypeSessionDestroy, events.SessionDestroy{SessionID: sid, Reason: ReasonPoolShrink}, ""); err != nil {
				return err
			}
			out.Destroyed = append(out.Destroyed, sid)
		}
		if c.Deleted {
			return nil
		}
		return s.writePoolStatus(ctx, tx, c, state, out.Plan)
	})
	return out, err
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

// requestStagedSession inserts a staged session of c in provisioning and
// asks for its container.
func (s *Store) requestStagedSession(ctx context.Context, tx *sqlx.Tx, c stagingConfigRow) (string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := sessions.Insert(ctx, tx, sessions.New{
		ID: id, WorkspaceID: c.WorkspaceID, ZoneID: c.ZoneID, StagingConfigID: c.ID,
		Origin: sessions.OriginStaged, Permissions: c.Permissions, Cores: c.Cores, MemoryMB: c.MemoryMB,
	}); err != nil {
		return "", err
	}
	err := s.emit(ctx, tx, events.TypeProvisionRequested, events.ProvisionRequested{
		SessionID: id, Workspace: c.Workspace, Zones: []string{c.Zone},
		Origin: sessions.OriginStaged, StagingConfigID: c.ID,
	}, "")
	return id, err
}

// writePoolStatus records the pool's status when it changed. A disabled
// workspace is put on the status (and announced) here, since the pool then
// creates nothing that could fail and report it.
func (s *Store) writePoolStatus(ctx context.Context, tx *sqlx.Tx, c stagingConfigRow, state domain.PoolState, plan domain.PoolPlan) error {
	if plan.HeldBack == "workspace_disabled" {
		msg := events.ReasonWorkspaceDisabled + ": workspace " + c.Workspace + " is disabled"
		if c.Status == string(domain.PoolShortfall) && c.LastError == msg {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staging_configs SET status = 'shortfall', last_error = $2, last_error_at = now() WHERE id = $1`, c.ID, msg); err != nil {
			return fmt.Errorf("writing status of staging config %s: %w", c.ID, err)
		}
		return s.emit(ctx, tx, events.TypeStagingShortfall, events.StagingShortfall{
			StagingConfigID: c.ID, Zone: c.Zone, Workspace: c.Workspace,
			Desired: c.Desired, Current: state.Current(), Reason: msg, Permanent: true,
		}, "")
	}
	if c.Status == string(plan.Status) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE staging_configs SET status = $2 WHERE id = $1`, c.ID, string(plan.Status)); err != nil {
		return fmt.Errorf("writing status of staging config %s: %w", c.ID, err)
	}
	return nil
}
