package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// RecordContainer stores the container of a session still provisioning,
// so that a destroy or the orphan collector can find it from now on, and
// announces it (container.created) in the same transaction when the
// session did not record it already: a redelivery that reuses the
// container it finds running records it again, and says nothing. The
// event's id is derived from the container, a second line against a
// double announcement. sessions.ErrStale when the session has left
// provisioning.
func (s *Store) RecordContainer(ctx context.Context, sc *command.SessionContext, containerID string, hostPort int, url, upstreamURL string) error {
	if sc.Agent == nil {
		return fmt.Errorf("session %s has no agent", sc.Session.ID)
	}
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var recorded string
		err := tx.GetContext(ctx, &recorded, `SELECT container_id FROM sessions WHERE id = $1 FOR UPDATE`, sc.Session.ID)
		if db.IsNotFound(err) {
			return fmt.Errorf("%w: %s", sessions.ErrNotFound, sc.Session.ID)
		}
		if err != nil {
			return fmt.Errorf("locking session %s: %w", sc.Session.ID, err)
		}
		updated, err := sessions.Update(ctx, tx, sc.Session.ID, sessions.Provisioning, sessions.Change{
			ContainerID: &containerID, HostPort: &hostPort, URL: &url, UpstreamURL: &upstreamURL,
		})
		if err != nil {
			return err
		}
		sc.Session = updated
		if recorded == containerID {
			return nil
		}
		ev, err := events.NewWithID("container-created-"+containerID, s.source, events.TypeContainerCreated, events.ContainerCreated{
			SessionID: sc.Session.ID, RequestID: sc.RequestID(), StagingConfigID: sc.StagingConfigID(),
			Agent: sc.Agent.Name, Zone: sc.Zone, ContainerID: containerID, Image: sc.Workspace.Image,
		})
		if err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, events.TypeContainerCreated, ev, sc.RequestID())
	})
}

// MarkStaged moves a staged session whose container answers to staged,
// expiring after its staging config's expiration_hours, and emits
// session.staged. sessions.ErrStale when it left provisioning meanwhile.
func (s *Store) MarkStaged(ctx context.Context, sc *command.SessionContext, now time.Time) error {
	if sc.StagingConfig == nil || sc.Agent == nil {
		return fmt.Errorf("session %s is not a placed staged session", sc.Session.ID)
	}
	expires := now.Add(time.Duration(sc.StagingConfig.ExpirationHours * float64(time.Hour)))
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		updated, err := sessions.Transition(ctx, tx, sc.Session.ID, sessions.Provisioning, sessions.Staged, sessions.Change{ExpiresAt: &expires})
		if err != nil {
			return err
		}
		sc.Session = updated
		return s.emit(ctx, tx, events.TypeSessionStaged, events.SessionStaged{
			SessionID: sc.Session.ID, StagingConfigID: sc.StagingConfigID(), Workspace: sc.Workspace.Name,
			Zone: sc.Zone, Agent: sc.Agent.Name, ContainerID: sc.Session.ContainerID,
		}, "")
	})
}

// MarkRunning moves an on-demand session whose container answers to
// running and emits session.ready, the outcome its requester waits for,
// saying which step of the request's zone search served it (served).
// sessions.ErrStale when it left provisioning meanwhile.
func (s *Store) MarkRunning(ctx context.Context, sc *command.SessionContext, served domain.ZoneServed) error {
	return s.toRunning(ctx, sc, sessions.Provisioning, sessions.OriginOnDemand, served, nil)
}

// CompleteAssign moves a claimed staged session whose assign command ran
// to running and emits session.ready (served: the zone search step of
// the assigner's claim), then session.assign_ran (ran). The outcome goes
// first: the committer publishes them in order, and the requester waits
// for the one, not for the record. sessions.ErrStale when it left
// assigning meanwhile (destroyed, or failed).
func (s *Store) CompleteAssign(ctx context.Context, sc *command.SessionContext, served domain.ZoneServed, ran events.AssignRan) error {
	return s.toRunning(ctx, sc, sessions.Assigning, sessions.OriginStaged, served, &ran)
}

func (s *Store) toRunning(ctx context.Context, sc *command.SessionContext, from sessions.Status, origin string,
	served domain.ZoneServed, ran *events.AssignRan) error {
	if sc.Agent == nil {
		return fmt.Errorf("session %s has no agent", sc.Session.ID)
	}
	return s.direct.InTx(ctx, s.db, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.running(ctx, tx, sc, from, origin, served); err != nil {
			return err
		}
		if ran == nil {
			return nil
		}
		return s.emit(ctx, tx, events.TypeSessionAssignRan, *ran, ran.RequestID)
	})
}

// running moves sc from `from` to running in tx and emits session.ready,
// which names its agent and container, or its server, and which step of
// the request's zone search served it.
func (s *Store) running(ctx context.Context, tx *sqlx.Tx, sc *command.SessionContext, from sessions.Status, origin string,
	served domain.ZoneServed) error {
	updated, err := sessions.Transition(ctx, tx, sc.Session.ID, from, sessions.Running, sessions.Change{})
	if err != nil {
		return err
	}
	sc.Session = updated
	agent := ""
	if sc.Agent != nil {
		agent = sc.Agent.Name
	}
	return s.emitOutcome(ctx, tx, sc, events.TypeSessionReady, events.SessionReady{
		RequestID: sc.RequestID(), SessionID: sc.Session.ID, User: sc.Username,
		Workspace: sc.Workspace.Name, Zone: sc.Zone, Agent: agent, Server: sc.Server,
		ContainerID: sc.Session.ContainerID, URL: sc.Session.URL, Origin: origin,
		RequestedZone: served.RequestedZone, ZoneSearchStep: served.Step,
	}, sc.RequestID())
}

// FailSession moves a session from `from` to failed and emits
// session.failed (the reconciler reads a staged session's failure_reason
// for its pool's status), then the assign step's session.assign_ran when f
// carries one. sessions.ErrStale when it left `from` meanwhile.
func (s *Store) FailSession(ctx context.Context, sc *command.SessionContext, from sessions.Status, f command.Failure) error {
	return s.direct.InTx(ctx, s.db, func(ctx context.Context, tx *sqlx.Tx) error {
		return s.fail(ctx, tx, sc, from, f)
	})
}

func (s *Store) fail(ctx context.Context, tx *sqlx.Tx, sc *command.SessionContext, from sessions.Status, f command.Failure) error {
	updated, err := sessions.Transition(ctx, tx, sc.Session.ID, from, sessions.Failed, sessions.Change{FailureReason: sessions.Ptr(f.Recorded())})
	if err != nil {
		return err
	}
	sc.Session = updated
	if err := s.emitOutcome(ctx, tx, sc, events.TypeSessionFailed, events.SessionFailed{
		RequestID: sc.RequestID(), SessionID: sc.Session.ID, Reason: f.Reason, Detail: f.Detail,
	}, sc.RequestID()); err != nil || f.AssignRan == nil {
		return err
	}
	return s.emit(ctx, tx, events.TypeSessionAssignRan, *f.AssignRan, f.AssignRan.RequestID)
}

// BeginDestroy moves a live session to destroying (under its row lock, so
// a racing claim or provisioning sees it) and returns it as it is now. A
// session already destroying, destroyed or failed is returned unchanged.
//
// A session still provisioning or assigning for a request has a requester
// waiting for its outcome, which session.destroyed is not: in the same
// transaction it gets session.failed (reason destroyed, the destroy's
// reason in the detail), recorded in failure_reason too so that a repeat
// of the request is answered alike. It is announced once, by the
// transition: a redelivered destroy finds the session destroying.
func (s *Store) BeginDestroy(ctx context.Context, id, reason string) (command.SessionContext, error) {
	var sc command.SessionContext
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := lockSession(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if sc, err = loadContext(ctx, tx, id); err != nil {
			return err
		}
		st := sc.Session.Status
		if !sessions.CanTransition(st, sessions.Destroying) {
			return nil
		}
		waiting := sc.RequestID() != "" && (st == sessions.Provisioning || st == sessions.Assigning)
		var ch sessions.Change
		detail := "destroyed before it was ready: " + reason
		if waiting {
			ch.FailureReason = sessions.Ptr(events.RecordedFailure(events.ReasonDestroyed, detail))
		}
		if sc.Session, err = sessions.Transition(ctx, tx, id, st, sessions.Destroying, ch); err != nil || !waiting {
			return err
		}
		return s.emitOutcome(ctx, tx, &sc, events.TypeSessionFailed, events.SessionFailed{
			RequestID: sc.RequestID(), SessionID: sc.Session.ID, Reason: events.ReasonDestroyed, Detail: detail,
		}, sc.RequestID())
	})
	return sc, err
}

// FinishDestroy moves a destroying session, whose container is gone, to
// destroyed and emits session.destroyed, with reason and its cause
// (events.DestroyCause).
func (s *Store) FinishDestroy(ctx context.Context, sc *command.SessionContext, reason string) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		updated, err := sessions.Transition(ctx, tx, sc.Session.ID, sessions.Destroying, sessions.Destroyed, sessions.Change{})
		if err != nil {
			return err
		}
		sc.Session = updated
		return s.emit(ctx, tx, events.TypeSessionDestroyed, s.destroyed(sc, reason, events.DestroyCause(reason)), "")
	})
}

// AnnounceFailedRemoved emits session.destroyed for a failed session whose
// container was removed: its status stays failed, and the audit log shows
// when its container went, and that its failure ended it
// (events.DestroyCauseOfFailed). The event id is derived from the session, so a
// redelivered request announces it once. What a failed creation means for
// its pool (status, last_error, staging.shortfall) is the reconciler's to
// say, once per change of cause: it reads the session's failure_reason.
func (s *Store) AnnounceFailedRemoved(ctx context.Context, sc *command.SessionContext, reason string) error {
	ev, err := events.NewWithID("destroyed-"+sc.Session.ID, s.source, events.TypeSessionDestroyed,
		s.destroyed(sc, reason, events.DestroyCauseOfFailed(reason)))
	if err != nil {
		return err
	}
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, events.TypeSessionDestroyed, ev, ""); err != nil {
			return err
		}
		return nil
	})
}

func (s *Store) destroyed(sc *command.SessionContext, reason, cause string) events.SessionDestroyed {
	return events.SessionDestroyed{
		SessionID: sc.Session.ID, RequestID: sc.RequestID(), StagingConfigID: sc.StagingConfigID(), Reason: reason, Cause: cause,
	}
}

// MarkFirstLaunched records that the workspace's first_launch command ran
// for the session (still in status `in`), so that it never runs again.
// sessions.ErrStale when it left `in` meanwhile.
func (s *Store) MarkFirstLaunched(ctx context.Context, sc *command.SessionContext, in sessions.Status, at time.Time) error {
	updated, err := sessions.Update(ctx, s.db, sc.Session.ID, in, sessions.Change{FirstLaunchAt: &at})
	if err != nil {
		return err
	}
	sc.Session = updated
	return nil
}

// SetAssignSecret stores the secret of the container about to be made for
// a session still provisioning, before the container exists: a redelivery
// that finds the container reuses it with the same secret.
// sessions.ErrStale when the session left provisioning.
func (s *Store) SetAssignSecret(ctx context.Context, sc *command.SessionContext, secret sessions.Secret) error {
	updated, err := sessions.Update(ctx, s.db, sc.Session.ID, sessions.Provisioning, sessions.Change{AssignSecret: &secret})
	if err != nil {
		return err
	}
	sc.Session = updated
	return nil
}
