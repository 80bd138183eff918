package command

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// DestroySession removes a session's container and ends the session
// (greenroom.session.destroy, greenroom.session.expired): a live session
// goes through destroying to destroyed with session.destroyed; a failed
// one stays failed but loses its container; a destroyed one is left alone.
// A session destroyed before it was ready for its request (provisioning,
// or assigning a staged one) also fails that request with reason
// destroyed as it enters destroying, so its requester is answered rather
// than left to time out. The container is looked up both by the recorded
// id and by the session label, since a container being created right now
// may not be recorded yet (its provisioning then finds the session gone
// and removes it too). A staged session's pool is then reconciled, so it
// is refilled at once.
func (p *Provisioner) DestroySession(ctx context.Context, sessionID, reason string) error {
	log := p.log.With(zap.String("session_id", sessionID), zap.String("reason", reason))
	sc, err := p.store.BeginDestroy(ctx, sessionID, reason)
	if err != nil {
		return fmt.Errorf("destroying session %s: %w", sessionID, err)
	}
	if sc.Agent != nil {
		eng, err := p.engines.For(sc.Agent.DockerEndpoint)
		if err != nil {
			return fmt.Errorf("destroying session %s: agent %s: %w", sessionID, sc.Agent.Name, err)
		}
		n, err := eng.RemoveSession(ctx, sc.Session.ID, sc.Session.ContainerID)
		p.metrics.ContainersRemoved.Add(float64(n))
		if err != nil {
			return fmt.Errorf("destroying session %s: %w", sessionID, err) // retried
		}
	}
	switch sc.Session.Status {
	case sessions.Destroying:
		err = p.store.FinishDestroy(ctx, &sc, reason)
		if errors.Is(err, sessions.ErrStale) {
			err = nil // another delivery finished it
		}
	case sessions.Failed:
		err = p.store.AnnounceFailedRemoved(ctx, &sc, reason)
	}
	if err != nil {
		return fmt.Errorf("destroying session %s: %w", sessionID, err)
	}
	log.Info("session destroyed", zap.String("status", string(sc.Session.Status)),
		zap.String("request_id", sc.RequestID()), zap.String("failure_reason", sc.Session.FailureReason))
	p.poolChanged(sc)
	return nil
}
