package command

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

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
	// AssignHookSeconds is the assign hook's request, for a workspace that
	// has one.
	AssignHookSeconds prometheus.Histogram
	// AssignHookConnections counts the assign hooks' requests by whether
	// they went on a connection kept alive since the container was staged
	// (reused) or had to open one.
	AssignHookConnections *prometheus.CounterVec
	// Failures counts sessions failed, by reason.
	Failures *prometheus.CounterVec
	// ContainerGone counts sessions failed as container_gone, by the status
	// they were in: staged losses cost a refill, running ones cost a user
	// their session.
	ContainerGone *prometheus.CounterVec
	// ProvisionSeconds is the whole provisioning of a session's container,
	// from its provision.requested being handled to the session staged or
	// running, by origin.
	ProvisionSeconds *prometheus.HistogramVec
	// ProvisioningFailures counts sessions whose provisioning failed, by
	// origin and by what failed (the placement's reason, or a Cause*).
	ProvisioningFailures *prometheus.CounterVec
}

// Causes of a failed provisioning after placement: the reason label of
// greenroom_provisioner_provisioning_failures_total besides the
// placement's own reasons (no_capacity, workspace_disabled, …).
const (
	// CauseEngine: the agent's engine refused or did not answer, or the
	// agent's address is unusable.
	CauseEngine = "engine"
	// CauseImageMissing: the agent has no such image.
	CauseImageMissing = "image_missing"
	// CauseSettings: the workspace's or group's settings cannot be applied.
	CauseSettings = "settings"
	// CauseNotReady: the container never answered its readiness probe.
	CauseNotReady = "not_ready"
	// CauseFirstLaunch: the workspace's first_launch command failed.
	CauseFirstLaunch = "first_launch"
)

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
		AssignHookSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greenroom_provisioner_assign_hook_seconds",
			Help:    "Duration of the assign hook's HTTP request to a claimed staged session's container.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		AssignHookConnections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_assign_hook_connections_total",
			Help: "Connections the assign hook's requests were sent on, by whether one opened when the container was staged was reused (true) or one was opened (false: another replica staged it, the container closed it, or a resend after it was found closed).",
		}, []string{"reused"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_session_failures_total",
			Help: "Sessions failed by the provisioner, by reason.",
		}, []string{"reason"}),
		ContainerGone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_sessions_container_gone_total",
			Help: "Sessions failed because their container was missing or no longer running, by the status they were in (staged, assigning, running).",
		}, []string{"status"}),
		ProvisionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "greenroom_provisioner_provision_seconds",
			Help:    "Time from a provision request being handled to its session staged (origin staged) or running (on_demand): placement, create, start, readiness.",
			Buckets: []float64{.1, .25, .5, 1, 2, 4, 8, 15, 30, 60, 120},
		}, []string{"origin"}),
		ProvisioningFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_provisioning_failures_total",
			Help: "Sessions whose provisioning failed, by origin and reason (no_capacity, workspace_disabled, engine, image_missing, settings, not_ready, first_launch, …).",
		}, []string{"origin", "reason"}),
	}
	reg.MustRegister(m.ContainersCreated, m.ContainersRemoved, m.CreateSeconds, m.ReadinessSeconds, m.AssignExecSeconds, m.AssignHookSeconds, m.AssignHookConnections, m.Failures, m.ContainerGone,
		m.ProvisionSeconds, m.ProvisioningFailures)
	return m
}

// SessionFailed counts a session failed for reason while in status from.
func (m *Metrics) SessionFailed(reason string, from sessions.Status) {
	m.Failures.WithLabelValues(reason).Inc()
	if reason == events.ReasonContainerGone {
		m.ContainerGone.WithLabelValues(string(from)).Inc()
	}
}
