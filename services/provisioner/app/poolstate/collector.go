package poolstate

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// TimeoutDefault bounds the queries of one scrape: well under Prometheus's
// default scrape timeout (10 s), so that a slow database costs the scrape
// these gauges, never the whole of /metrics.
const TimeoutDefault = 3 * time.Second

// Statuses of a staging config, each a series of
// greenroom_staging_config_status.
var Statuses = []string{"ok", "filling", "shortfall"}

// shortfallKinds are the values of greenroom_staging_config_shortfall's
// reason label; a last_error that names none of them is "other".
var shortfallKinds = map[domain.ShortfallKind]bool{
	domain.ShortNoCapacity: true, domain.ShortWorkspaceDisabled: true, domain.ShortImageMissing: true,
	domain.ShortProvisioningFailed: true, domain.ShortProvisioningTimeout: true,
}

// Collector is a prometheus.Collector that reads the pools' state at each
// scrape. When the database does not answer within the timeout the gauges
// are left out of that scrape (a missing series rather than a false zero)
// and greenroom_pool_state_errors_total counts it.
type Collector struct {
	reader  Reader
	timeout time.Duration
	log     *zap.Logger
	errors  atomic.Uint64

	desired, current, provisioning, status, shortfall *prometheus.Desc
	members, disabled, sessions                       *prometheus.Desc
	cores, freeCores, memory, freeMemory              *prometheus.Desc
	slots, freeSlots                                  *prometheus.Desc
	failures                                          *prometheus.Desc
}

// NewCollector returns a collector reading through reader, each scrape
// bounded by timeout (TimeoutDefault when 0). Register it on the service's
// registry.
func NewCollector(reader Reader, timeout time.Duration, log *zap.Logger) *Collector {
	if timeout <= 0 {
		timeout = TimeoutDefault
	}
	// A staging config is labelled by its zone and workspace, which name
	// the one live config of a pool (staging_configs_zone_workspace_idx);
	// its id would start new series each time a config is recreated.
	staging := []string{"zone", "workspace"}
	pool := []string{"pool", "type", "zone"}
	return &Collector{
		reader: reader, timeout: timeout, log: log.Named("pool_state"),
		desired: prometheus.NewDesc("greenroom_staging_config_desired_sessions",
			"A staging config's desired sessions now: its schedule's entry in effect, else desired_sessions.", staging, nil),
		current: prometheus.NewDesc("greenroom_staging_config_current_sessions",
			"Sessions of a staging config staged and waiting for a user (its current_sessions).", staging, nil),
		provisioning: prometheus.NewDesc("greenroom_staging_config_provisioning_sessions",
			"Sessions of a staging config being made (status provisioning).", staging, nil),
		status: prometheus.NewDesc("greenroom_staging_config_status",
			"1 for a staging config's status (ok, filling, shortfall), 0 for the others.", append(staging, "status"), nil),
		shortfall: prometheus.NewDesc("greenroom_staging_config_shortfall",
			"1 while a staging config is in shortfall, labelled with the cause its last_error names (no_capacity, workspace_disabled, image_missing, provisioning_failed, provisioning_timeout, other).",
			append(staging, "reason"), nil),
		members: prometheus.NewDesc("greenroom_pool_members",
			"Enabled agents that take sessions (docker_agent pools: not being made, drained or deleted by the autoscaler) or enabled servers (server pools) of a pool in a zone; agents in no pool are pool \"\".", pool, nil),
		disabled: prometheus.NewDesc("greenroom_pool_disabled_members",
			"Disabled agents or servers of a pool in a zone.", pool, nil),
		sessions: prometheus.NewDesc("greenroom_pool_sessions",
			"Live sessions (neither destroyed nor failed) on a pool's members in a zone.", pool, nil),
		cores: prometheus.NewDesc("greenroom_pool_capacity_cores",
			"Cores of a docker_agent pool's enabled agents in a zone.", pool, nil),
		freeCores: prometheus.NewDesc("greenroom_pool_free_cores",
			"Cores of a docker_agent pool's enabled agents in a zone not reserved by live sessions.", pool, nil),
		memory: prometheus.NewDesc("greenroom_pool_capacity_memory_bytes",
			"Memory of a docker_agent pool's enabled agents in a zone.", pool, nil),
		freeMemory: prometheus.NewDesc("greenroom_pool_free_memory_bytes",
			"Memory of a docker_agent pool's enabled agents in a zone not reserved by live sessions.", pool, nil),
		slots: prometheus.NewDesc("greenroom_pool_capacity_sessions",
			"Sessions a server pool's enabled servers in a zone accept at once (their max_sessions).", pool, nil),
		freeSlots: prometheus.NewDesc("greenroom_pool_free_sessions",
			"Sessions a server pool's enabled servers in a zone accept beyond their live ones.", pool, nil),
		failures: prometheus.NewDesc("greenroom_pool_state_errors_total",
			"Scrapes at which the pools' state could not be read from PostgreSQL in time (its gauges were left out).", nil, nil),
	}
}

// Describe sends every description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.desired, c.current, c.provisioning, c.status, c.shortfall,
		c.members, c.disabled, c.sessions, c.cores, c.freeCores, c.memory, c.freeMemory, c.slots, c.freeSlots, c.failures} {
		ch <- d
	}
}

// Collect reads the state and sends it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	staging, err := c.reader.StagingPools(ctx)
	if err == nil {
		var pools []Pool
		if pools, err = c.reader.Pools(ctx); err == nil {
			c.sendStaging(ch, staging)
			c.sendPools(ch, pools)
		}
	}
	if err != nil {
		c.errors.Add(1)
		c.log.Warn("reading the pools' state for /metrics", zap.Error(err))
	}
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(c.errors.Load()))
}

func (c *Collector) sendStaging(ch chan<- prometheus.Metric, pools []StagingPool) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, p := range pools {
		gauge(c.desired, float64(p.Desired), p.Zone, p.Workspace)
		gauge(c.current, float64(p.Staged), p.Zone, p.Workspace)
		gauge(c.provisioning, float64(p.Provisioning), p.Zone, p.Workspace)
		for _, s := range Statuses {
			gauge(c.status, boolValue(p.Status == s), p.Zone, p.Workspace, s)
		}
		if p.Status == "shortfall" {
			gauge(c.shortfall, 1, p.Zone, p.Workspace, ShortfallReason(p.LastError))
		}
	}
}

func (c *Collector) sendPools(ch chan<- prometheus.Metric, pools []Pool) {
	gauge := func(d *prometheus.Desc, v float64, p Pool) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, p.Name, p.Type, p.Zone)
	}
	for _, p := range pools {
		gauge(c.members, float64(p.Members), p)
		gauge(c.disabled, float64(p.Disabled), p)
		gauge(c.sessions, float64(p.Sessions), p)
		if p.Type == "server" {
			gauge(c.slots, float64(p.Slots), p)
			gauge(c.freeSlots, float64(p.FreeSlots), p)
			continue
		}
		gauge(c.cores, p.Cores, p)
		gauge(c.freeCores, p.FreeCores, p)
		gauge(c.memory, float64(p.MemoryMB)*mebibyte, p)
		gauge(c.freeMemory, float64(p.FreeMemoryMB)*mebibyte, p)
	}
}

// mebibyte is what memory_mb counts: Docker's "m".
const mebibyte = 1 << 20

// ShortfallReason is the reason label of a staging config in shortfall
// whose last_error is lastError: the kind it starts with, or "other".
func ShortfallReason(lastError string) string {
	if k := domain.ShortfallKindOf(lastError); shortfallKinds[k] {
		return string(k)
	}
	return "other"
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
