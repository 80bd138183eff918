// Package service assembles the provisioner from its parts: the bus
// consumer (ports/bus) feeding the use cases (app/command), the staging
// pool reconciler (app/staging), the container auditor and engine
// watcher (app/audit), and the outbox relay publishing the events they
// write, as one startstop.Group. main.go and the component tests both
// start it through New and Start, so the tests run exactly what
// production runs.
package service

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/probe"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/enginehealth"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/poolstate"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/ports/bus"
)

// Config configures the provisioner; zero values take each part's
// defaults.
type Config struct {
	// ConsumerName is the durable JetStream consumer (bus.ConsumerName).
	ConsumerName string
	// Concurrency is how many events one replica handles at once
	// (bus.ConcurrencyDefault).
	Concurrency int
	// ProvisionConcurrency is how many containers one replica creates at
	// once (bus.ProvisionConcurrencyDefault).
	ProvisionConcurrency int
	// Provision tunes readiness and assign timeouts and extra labels.
	Provision command.Config
	// Probe tunes the readiness probe.
	Probe probe.Config
	// Reconciler tunes the staging pool reconciler.
	Reconciler staging.ReconcilerConfig
	// ContainerAudit tunes the auditor that fails sessions whose container
	// is gone and removes orphan containers. OrphanLabels defaults to
	// Provision.ExtraLabels, which always hold greenroom.deployment.
	ContainerAudit audit.ContainerAuditorConfig
	// EngineWatcher tunes the watcher of the engines' container events.
	EngineWatcher audit.EngineWatcherConfig
	// Engines tunes the first contact with each Docker engine and how long
	// one that did not answer is remembered as failed.
	Engines docker.EnginesConfig
	// EngineOutageMemory is how long an engine that could not be reached
	// is passed over by placement without a newer failure
	// (enginehealth.RememberDefault, and never less than twice the
	// engine watcher's longest wait between two attempts, so that an
	// engine it keeps failing to reach stays passed over).
	EngineOutageMemory time.Duration
	// Autoscale tunes the autoscaler; AutoscaleImageSource is the engine
	// new agents' images are copied from (AutoscaleImageSourceDefault).
	Autoscale            autoscale.Config
	AutoscaleImageSource string
	// ShutdownTimeout bounds how long the service waits, once stopping,
	// for its parts and the events in flight; unfinished events are
	// redelivered (GREENROOM_SHUTDOWN_TIMEOUT by default).
	ShutdownTimeout time.Duration
}

// AutoscaleImageSourceDefault is the engine new agents' images are copied
// from: this host's.
const AutoscaleImageSourceDefault = "unix:///var/run/docker.sock"

// DeploymentLabel names the deployment a container belongs to.
const DeploymentLabel = "greenroom.deployment"

// Service is a provisioner replica.
type Service struct {
	*startstop.Group

	// Provisioner carries out the use cases.
	Provisioner *command.Provisioner
	// Reconciler keeps staging pools at their desired size.
	Reconciler *staging.Reconciler
	// Autoscaler adds and removes the agents of pools with an autoscale
	// config.
	Autoscaler *autoscale.Autoscaler
	// ContainerAuditor fails the sessions whose container is gone and
	// removes orphan containers.
	ContainerAuditor *audit.ContainerAuditor
	// EngineWatcher acts on containers that die or are removed as the
	// engines report it.
	EngineWatcher *audit.EngineWatcher
	// EngineHealth is the engines known not to answer, whose agents
	// placement passes over.
	EngineHealth *enginehealth.Board
	// Relay publishes the events written to the outbox.
	Relay *outbox.Relay
}

// New wires a provisioner on deps. Nothing runs until Start, which
// creates the durable consumer and runs every part until its context is
// done or Stop; the Docker clients are released once all have stopped.
func New(deps *app.Deps, cfg Config) (*Service, error) {
	if deps == nil || deps.DB == nil || deps.JS == nil {
		return nil, errors.New("provisioner: deps need a database and JetStream")
	}
	if err := cfg.Engines.TLS.Check(); err != nil {
		return nil, err
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = deps.Settings.ShutdownTimeout
	}
	// Every container carries this deployment's id, and only containers
	// carrying it are reaped as orphans: deployments and test runs may
	// share one Docker engine.
	var deployment string
	if err := deps.DB.Get(&deployment, `SELECT id FROM deployment`); err != nil {
		return nil, fmt.Errorf("provisioner: reading the deployment id (run greenroom migrate): %w", err)
	}
	cfg.Provision.ExtraLabels = maps.Clone(cfg.Provision.ExtraLabels)
	if cfg.Provision.ExtraLabels == nil {
		cfg.Provision.ExtraLabels = map[string]string{}
	}
	cfg.Provision.ExtraLabels[DeploymentLabel] = deployment
	s := &Service{EngineHealth: enginehealth.NewBoard(engineOutageMemory(cfg), deps.Log)}
	store := postgres.New(deps.DB, deps.Source()).PublishOutcomesDirectly(deps.NewDirect())
	if cfg.Engines.TLSFor == nil {
		cfg.Engines.TLSFor = store.EngineTLS
	}
	engines := docker.NewEnginesWith(cfg.Engines)
	metrics := command.NewMetrics(deps.Ops.Registry)
	s.Reconciler = staging.NewReconciler(cfg.Reconciler, store, deps.Log, deps.Ops.Registry).UseEngineOutages(s.EngineHealth)
	s.Provisioner = command.New(cfg.Provision, store, engines.AsCommandEngines(), probe.New(cfg.Probe),
		metrics, deps.Log, command.Pools{Changed: s.Reconciler.Trigger, Claimed: s.Reconciler.Claimed}).
		UseEngineHealth(s.EngineHealth)
	if cfg.ContainerAudit.OrphanLabels == nil {
		cfg.ContainerAudit.OrphanLabels = cfg.Provision.ExtraLabels
	}
	s.ContainerAuditor = audit.NewContainerAuditor(cfg.ContainerAudit, store, engines.AsAuditEngines(), metrics, deps.Ops.Registry, deps.Log, s.Reconciler.Trigger)
	s.EngineWatcher = audit.NewEngineWatcher(cfg.EngineWatcher, store, engines.AsAuditEngines(), s.ContainerAuditor, deps.Ops.Registry, deps.Log).
		ReportEngineHealth(s.EngineHealth)
	cfg.Autoscale.Labels = maps.Clone(cfg.Provision.ExtraLabels)
	cfg.Autoscale.Forget = engines.Forget
	cfg.Autoscale.Owner = cmp.Or(cfg.Autoscale.Owner, deps.Source()+"/"+uuid.NewString())
	s.Autoscaler = autoscale.New(cfg.Autoscale, store, vm.Providers{}, engines.MachineDialer(cmp.Or(cfg.AutoscaleImageSource, AutoscaleImageSourceDefault)),
		s.EngineHealth, deps.Log, deps.Ops.Registry, func() { s.configChanged("") })
	s.Relay = deps.NewRelay()
	// The pools' state, read from PostgreSQL at each scrape: every replica
	// reports the same values (aggregate with max, not sum).
	if err := deps.Ops.Registry.Register(poolstate.NewCollector(store, 0, deps.Log)); err != nil {
		return nil, fmt.Errorf("provisioner: registering the pool state metrics: %w", err)
	}
	consumer, err := bus.NewConsumer(deps.JS, deps.Validator, deps.Log,
		bus.Config{Name: cfg.ConsumerName, Concurrency: cfg.Concurrency, ProvisionConcurrency: cfg.ProvisionConcurrency,
			Source: deps.Source(), ShutdownTimeout: cfg.ShutdownTimeout, Registerer: deps.Ops.Registry},
		s.Provisioner, s.configChanged)
	if err != nil {
		return nil, fmt.Errorf("provisioner: %w", err)
	}
	s.Group = startstop.NewGroup(cfg.ShutdownTimeout).
		Add("consumer", consumer).
		Add("staging reconciler", s.Reconciler).
		Add("container auditor", s.ContainerAuditor).
		Add("engine watcher", s.EngineWatcher).
		Add("autoscaler", s.Autoscaler).
		Add("outbox relay", s.Relay).
		AfterStop(engines.Close)
	deps.Log.Info("provisioner ready", zap.Strings("subjects", bus.Subjects))
	return s, nil
}

// engineOutageMemory is how long the engine health board believes a
// failure: cfg.EngineOutageMemory, at least twice the longest the engine
// watcher may take between two attempts to reach an engine (its longest
// backoff with jitter, then a contact and a ping, each bounded by their
// timeouts).
func engineOutageMemory(cfg Config) time.Duration {
	backoffMax := cmp.Or(cfg.EngineWatcher.BackoffMax, audit.EngineWatcherBackoffMaxDefault)
	contact := cmp.Or(cfg.Engines.PingTimeout, docker.PingTimeoutDefault)
	ping := cmp.Or(cfg.EngineWatcher.PingTimeout, audit.EngineWatcherPingTimeoutDefault)
	between := backoffMax + backoffMax/5 + contact + ping
	return max(cmp.Or(cfg.EngineOutageMemory, enginehealth.RememberDefault), 2*between)
}

// configChanged reconciles the staging config that changed, or every
// pool and the set of watched engines when something else changed (an
// agent, zone, pool or workspace: stagingConfigID is ""). A pool short
// for a cause the change may have removed tries again at once.
func (s *Service) configChanged(stagingConfigID string) {
	s.Reconciler.ConfigChanged(stagingConfigID)
	if stagingConfigID == "" {
		s.EngineWatcher.Trigger()
	}
}
