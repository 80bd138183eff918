package command

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the provisioner's Prometheus metrics.
type Metrics struct {
	// ContainersCreated counts containers created and started, by origin.
	ContainersCreated *prometheus.CounterVec
	// ContainersRemoved counts containers removed.
	ContainersRemoved prometheus.Counter
	// CreateSeconds is create + start + inspect of one container.
	CreateSeconds prometheus.Histogram
	// ReadinessSeconds is from start until the readiness probe answered.
	ReadinessSeconds prometheus.Histogram
	// AssignExecSeconds is the assign command of a claimed staged session.
	AssignExecSeconds prometheus.Histogram
	// Failures counts sessions failed, by reason.
	Failures *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ContainersCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_containers_created_total",
			Help: "Session containers created and started, by origin (staged, on_demand).",
		}, []string{"origin"}),
		ContainersRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greenroom_provisioner_containers_removed_total",
			Help: "Session containers removed.",
		}),
		CreateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greenroom_provisioner_container_create_seconds",
			Help:    "Time to create, start and inspect a session container.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		ReadinessSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greenroom_provisioner_readiness_seconds",
			Help:    "Time from a container's start until its readiness probe answered.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60},
		}),
		AssignExecSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greenroom_provisioner_assign_exec_seconds",
			Help:    "Duration of the assign command run in a claimed staged session.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_session_failures_total",
			Help: "Sessions failed by the provisioner, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.ContainersCreated, m.ContainersRemoved, m.CreateSeconds, m.ReadinessSeconds, m.AssignExecSeconds, m.Failures)
	return m
}
