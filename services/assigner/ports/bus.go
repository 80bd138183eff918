// Package ports connects the assigner to the bus: it consumes
// greenroom.session.requested and hands each request to app.RequestSession;
// a request that cannot be served as it is gets an answer too
// (InvalidRequests).
package ports

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/assigner/app"
)

// SessionRequests returns the bus handler for greenroom.session.requested.
// A request is aged by its CloudEvents time, or by when the stream stored
// it when it has none.
func SessionRequests(uc app.RequestSession, m *Metrics, log *zap.Logger) bus.Handler {
	return func(ctx context.Context, msg bus.Message) error {
		var req events.SessionRequested
		if err := msg.Event.DecodeData(&req); err != nil || req.RequestID == "" {
			msg.Invalid = orElse(err, fmt.Errorf("%w: missing data.request_id", events.ErrMalformed))
			return InvalidRequests(uc, m, log)(ctx, msg)
		}
		req.Requester = events.RequesterOf(msg.Subject)
		start := time.Now()
		res, err := uc.Handle(ctx, req, msg.Time())
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

func orElse(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// InvalidRequests returns the handler of requests that do not decode or do
// not match the schema (bus.ConsumerConfig.Invalid): one whose request_id
// can be read is answered greenroom.session.failed, reason
// invalid_request, its detail naming the offending fields, so that its
// caller is not left waiting; one without is dead-lettered.
func InvalidRequests(uc app.RequestSession, m *Metrics, log *zap.Logger) bus.Handler {
	return func(ctx context.Context, msg bus.Message) error {
		requestID := events.ReadRequestID(msg.Data)
		if requestID == "" {
			return bus.Permanent(fmt.Errorf("invalid request without a readable request_id, not answered: %w", msg.Invalid))
		}
		start := time.Now()
		detail := InvalidDetail(msg.Invalid)
		if err := uc.RefuseInvalid(ctx, events.RequesterOf(msg.Subject), requestID, detail); err != nil {
			return err
		}
		m.served(app.Result{Outcome: app.OutcomeInvalid}, time.Since(start))
		log.Warn("invalid session request refused", zap.String("request_id", requestID),
			zap.Uint64("stream_seq", msg.StreamSequence), zap.String("detail", detail))
		return nil
	}
}

// maxProblems bounds how many of an invalid request's problems its
// failure lists.
const maxProblems = 10

// InvalidDetail says what is wrong with a request, field by field
// ("data.user: missing property 'user'"), from the consumer's validation
// or decoding error.
func InvalidDetail(err error) string {
	if err == nil {
		return "invalid"
	}
	var se *events.SchemaError
	if errors.As(err, &se) && len(se.Problems) > 0 {
		parts := make([]string, 0, min(len(se.Problems), maxProblems)+1)
		for i, p := range se.Problems {
			if i == maxProblems {
				parts = append(parts, fmt.Sprintf("and %d more", len(se.Problems)-maxProblems))
				break
			}
			field := p.Field
			if field == "" {
				field = "event"
			}
			parts = append(parts, field+": "+p.Message)
		}
		return strings.Join(parts, "; ")
	}
	return strings.TrimPrefix(err.Error(), events.ErrMalformed.Error()+": ")
}
