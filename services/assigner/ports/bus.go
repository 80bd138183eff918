// Package ports connects the assigner to the bus: it consumes
// greenroom.session.requested and hands each request to app.RequestSession.
package ports

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/assigner/app"
)

// Metrics of the assigner.
type Metrics struct {
	Requests *prometheus.CounterVec
	Misses   *prometheus.CounterVec
	Duration *prometheus.HistogramVec
}

// NewMetrics registers the assigner's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_assigner_requests_total",
			Help: "Session requests by outcome (staged, on_demand, failed, duplicate).",
		}, []string{"outcome"}),
		Misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_assigner_staged_misses_total",
			Help: "Requests not served from a staged pool, by reason.",
		}, []string{"reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greenroom_assigner_decision_seconds",
			Help:    "Time to decide and commit a request (claim or on-demand row), by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.Requests, m.Misses, m.Duration)
	return m
}

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
		m.Requests.WithLabelValues(string(res.Outcome)).Inc()
		m.Duration.WithLabelValues(string(res.Outcome)).Observe(time.Since(start).Seconds())
		if res.Miss != "" {
			m.Misses.WithLabelValues(string(res.Miss)).Inc()
		}
		log.Info("session request served",
			zap.String("request_id", req.RequestID), zap.String("user", req.User),
			zap.String("workspace", req.Workspace), zap.String("zone", req.Zone),
			zap.String("outcome", string(res.Outcome)), zap.String("session_id", res.SessionID),
			zap.String("miss", string(res.Miss)), zap.String("on_demand_reason", res.OnDemandReason),
			zap.Duration("took", time.Since(start)))
		return nil
	}
}
