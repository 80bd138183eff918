package ports

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/services/assigner/app"
)

// Metrics of the assigner. Each replica counts the requests it served:
// sum them over replicas. Labels are bounded by the configuration (zone
// and workspace names that exist); never a user, a session or a request,
// nor a staging config's id: zone and workspace name the one live staging
// config of a pool, and an id would start new series each time a config
// is recreated.
type Metrics struct {
	// Requests counts requests by outcome.
	Requests *prometheus.CounterVec
	// Misses counts requests not served from a staged pool, by the zone
	// requested, the workspace and the reason.
	Misses *prometheus.CounterVec
	// Duration is the time to decide and commit a request, by outcome.
	Duration *prometheus.HistogramVec
	// Claims counts staged sessions claimed, by the staging config they
	// were claimed from (its zone and workspace).
	Claims *prometheus.CounterVec
	// ClaimSeconds is the time from a request's delivery to its claim
	// committed, by the staging config claimed from (zone, workspace).
	ClaimSeconds *prometheus.HistogramVec
}

// decisionBuckets span 0.5 ms to 4 s.
var decisionBuckets = prometheus.ExponentialBuckets(0.0005, 2, 14)

// NewMetrics registers the assigner's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	pool := []string{"zone", "workspace"}
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_assigner_requests_total",
			Help: "Session requests by outcome (staged, on_demand, failed, duplicate, invalid, expired).",
		}, []string{"outcome"}),
		Misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_assigner_staged_misses_total",
			Help: "Requests not served from a staged pool, by zone requested, workspace and reason (no_staging_config, permissions_differ, incompatible_setting, none_staged, server_pool).",
		}, []string{"zone", "workspace", "reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greenroom_assigner_decision_seconds",
			Help:    "Time to decide and commit a request (claim or on-demand row), by outcome.",
			Buckets: decisionBuckets,
		}, []string{"outcome"}),
		Claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_assigner_claims_total",
			Help: "Staged sessions claimed for a request, by the staging config (zone, workspace) they were claimed from.",
		}, pool),
		ClaimSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greenroom_assigner_claim_seconds",
			Help:    "Time from a request's delivery to the assigner until its staged session's claim committed, by the staging config (zone, workspace) claimed from.",
			Buckets: decisionBuckets,
		}, pool),
	}
	reg.MustRegister(m.Requests, m.Misses, m.Duration, m.Claims, m.ClaimSeconds)
	return m
}

// served counts one request served with res, which took took.
func (m *Metrics) served(res app.Result, took time.Duration) {
	m.Requests.WithLabelValues(string(res.Outcome)).Inc()
	m.Duration.WithLabelValues(string(res.Outcome)).Observe(took.Seconds())
	if res.Outcome == app.OutcomeStaged {
		m.Claims.WithLabelValues(res.Zone, res.Workspace).Inc()
		m.ClaimSeconds.WithLabelValues(res.Zone, res.Workspace).Observe(took.Seconds())
	}
	if res.Miss != "" {
		m.Misses.WithLabelValues(res.Zone, res.Workspace, string(res.Miss)).Inc()
	}
}
