package command

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// AssignSession hands a claimed staged session to its user
// (greenroom.session.assigned): it runs the workspace's assign command,
// if it has one, inside the already running container, then moves the
// session to running and emits session.ready. A failing command fails the
// session (assign_failed) and removes its container. A session no longer
// assigning (redelivery, or destroyed meanwhile) is left alone.
func (p *Provisioner) AssignSession(ctx context.Context, ev events.SessionAssigned) error {
	// The claim took the session out of its pool: start its replacement
	// now, alongside the assign, not on the next tick.
	p.pools(ev.StagingConfigID)

	log := p.log.With(zap.String("session_id", ev.SessionID), zap.String("request_id", ev.RequestID), zap.String("user", ev.User))
	sc, err := p.store.LoadSession(ctx, ev.SessionID)
	if err != nil {
		return fmt.Errorf("loading assigned session %s: %w", ev.SessionID, err)
	}
	if sc.Session.Status != sessions.Assigning {
		log.Debug("session no longer assigning; nothing to do", zap.String("status", string(sc.Session.Status)))
		return nil
	}
	if sc.Agent == nil || sc.Session.ContainerID == "" {
		return p.failAssign(ctx, sc, "the staged session has no container", log)
	}
	if sc.Username == "" {
		sc.Username = ev.User
	}
	userID := sc.Session.UserID.String
	if userID == "" {
		userID = ev.UserID
	}
	execCfg, err := domain.ParseExecConfig(sc.Workspace.DockerExecConfig)
	if err != nil {
		return p.failAssign(ctx, sc, fmt.Sprintf("workspace %s: %v", sc.Workspace.Name, err), log)
	}
	if spec, ok := domain.RenderAssign(execCfg, domain.Tokens{Username: sc.Username, UserID: userID, SessionID: sc.Session.ID}); ok {
		eng, err := p.engines.For(sc.Agent.DockerEndpoint)
		if err != nil {
			return p.failAssign(ctx, sc, fmt.Sprintf("agent %s: %v", sc.Agent.Name, err), log)
		}
		ectx, cancel := context.WithTimeout(ctx, p.cfg.AssignTimeout)
		start := p.now()
		res, err := eng.Exec(ectx, sc.Session.ContainerID, spec)
		took := p.now().Sub(start)
		cancel()
		p.metrics.AssignExecSeconds.Observe(took.Seconds())
		if err != nil {
			return p.failAssign(ctx, sc, fmt.Sprintf("assign command %q: %v", spec.Cmd, err), log)
		}
		if res.ExitCode != 0 {
			return p.failAssign(ctx, sc, fmt.Sprintf("assign command %q exited with code %d: %s", spec.Cmd, res.ExitCode, trimOutput(res.Output)), log)
		}
		log = log.With(zap.Duration("assign_exec", took))
	}
	err = p.store.CompleteAssign(ctx, &sc)
	if errors.Is(err, sessions.ErrStale) {
		log.Info("session left assigning while its assign command ran", zap.Error(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("completing assignment of session %s: %w", sc.Session.ID, err)
	}
	log.Info("staged session assigned", zap.String("url", sc.Session.URL))
	return nil
}

// failAssign fails a session whose assignment failed (assign_failed),
// announcing session.failed to the requester, and removes its container.
func (p *Provisioner) failAssign(ctx context.Context, sc postgres.SessionContext, detail string, log *zap.Logger) error {
	err := p.store.FailSession(ctx, &sc, sessions.Assigning, postgres.Failure{Reason: events.ReasonAssignFailed, Detail: detail})
	if errors.Is(err, sessions.ErrStale) {
		p.abandon(ctx, sc, err, log)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failing session %s (%s): %w", sc.Session.ID, detail, err)
	}
	p.removeContainers(ctx, sc, log)
	p.metrics.Failures.WithLabelValues(events.ReasonAssignFailed).Inc()
	log.Warn("session failed", zap.String("reason", events.ReasonAssignFailed), zap.String("detail", detail))
	return nil
}
