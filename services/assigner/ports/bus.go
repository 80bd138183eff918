// Package ports connects the assigner to the bus: it consumes
// greenroom.session.requested and hands each request to app.RequestSession.
package ports

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/assigner/app"
)

// SessionRequests returns the bus handler for greenroom.session.requested.
func SessionRequests(uc app.RequestSession, m *Metrics, log *zap.Logger) bus.Handler {
	return func(ctx context.Context, msg bus.Message) error {
		var req events.SessionRequested
		if err := msg.Event.DecodeData(&req); err != nil {
			return bus.Permanent(err)
		}
		start := time.Now()
		res, err := uc.Handle(ctx, req)
		if err != nil {
			return err
		}
		m.served(res, time.Since(start))
		log.Info("session request served",
			zap.String("request_id", req.RequestID), zap.String("user", req.User),
			zap.String("workspace", req.Workspace), zap.String("zone", req.Zone),
			zap.String("outcome", string(res.Outcome)), zap.String("session_id", res.SessionID),
			zap.String("miss", string(res.Miss)), zap.String("on_demand_reason", res.OnDemandReason),
			zap.Duration("took", time.Since(start)))
		return nil
	}
}
