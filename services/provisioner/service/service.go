// Package service assembles the provisioner from its parts: the bus
// consumer (ports/bus) feeding the use cases (app/command), the staging
// pool reconciler (app/staging), the container auditor and engine
// watcher (app/audit), and the outbox relay publishing the events they
// write. main.go and the component tests both start it through New and
// Start, so the tests run exactly what production runs.
package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/app"
	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/probe"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
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
	// ShutdownTimeout bounds how long Run waits, once its context is done,
	// for events in flight; unfinished ones are redelivered.
	ShutdownTimeout time.Duration
}

// DeploymentLabel names the deployment a container belongs to.
const DeploymentLabel = "greenroom.deployment"

// Service is a running provisioner replica.
type Service struct {
	deps    *app.Deps
	cfg     Config
	log     *zap.Logger
	engines *docker.Engines

	// Provisioner carries out the use cases.
	Provisioner *command.Provisioner
	// Reconciler keeps staging pools at their desired size.
	Reconciler *staging.Reconciler
	// ContainerAuditor fails the sessions whose container is gone and
	// removes orphan containers.
	ContainerAuditor *audit.ContainerAuditor
	// EngineWatcher acts on containers that die or are removed as the
	// engines report it.
	EngineWatcher *audit.EngineWatcher
	// Relay publishes the events written to the outbox.
	Relay *outbox.Relay

	consumer *libbus.Consumer
	wg       sync.WaitGroup
	errMu    sync.Mutex
	err      error
}

// New wires a provisioner on deps. Nothing runs until Start.
func New(deps *app.Deps, cfg Config) (*Service, error) {
	if deps == nil || deps.DB == nil || deps.JS == nil {
		return nil, errors.New("provisioner: deps need a database and JetStream")
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
	s := &Service{deps: deps, cfg: cfg, log: deps.Log, engines: docker.NewEngines()}
	store := postgres.New(deps.DB, deps.Source()).PublishOutcomesDirectly(deps.NewDirect())
	metrics := command.NewMetrics(deps.Ops.Registry)
	s.Reconciler = staging.NewReconciler(cfg.Reconciler, store, deps.Log, deps.Ops.Registry)
	s.Provisioner = command.New(cfg.Provision, store, s.engines, probe.New(cfg.Probe),
		metrics, deps.Log, command.Pools{Changed: s.Reconciler.Trigger, Claimed: s.Reconciler.Claimed})
	if cfg.ContainerAudit.OrphanLabels == nil {
		cfg.ContainerAudit.OrphanLabels = cfg.Provision.ExtraLabels
	}
	s.ContainerAuditor = audit.NewContainerAuditor(cfg.ContainerAudit, store, s.engines, metrics, deps.Ops.Registry, deps.Log, s.Reconciler.Trigger)
	s.EngineWatcher = audit.NewEngineWatcher(cfg.EngineWatcher, store, s.engines, s.ContainerAuditor, deps.Ops.Registry, deps.Log)
	s.Relay = deps.NewRelay()
	return s, nil
}

// Start creates the consumer and runs the consumer, the reconciler, the
// container auditor and the relay in the background until ctx is done;
// Wait waits for them.
func (s *Service) Start(ctx context.Context) error {
	var err error
	s.consumer, err = bus.NewConsumer(ctx, s.deps.JS, s.deps.Validator, s.log,
		bus.Config{Name: s.cfg.ConsumerName, Concurrency: s.cfg.Concurrency, ProvisionConcurrency: s.cfg.ProvisionConcurrency, Source: s.deps.Source(),
			ShutdownTimeout: s.deps.Settings.ShutdownTimeout},
		s.Provisioner, s.configChanged)
	if err != nil {
		return fmt.Errorf("starting provisioner: %w", err)
	}
	s.goRun(func() error { return s.consumer.Run(ctx) })
	s.goRun(func() error { s.Reconciler.Start(ctx); return nil })
	s.goRun(func() error { s.ContainerAuditor.Start(ctx); return nil })
	s.goRun(func() error { s.EngineWatcher.Start(ctx); return nil })
	s.goRun(func() error { s.Relay.Start(ctx); return nil })
	s.log.Info("provisioner started", zap.Strings("subjects", bus.Subjects))
	return nil
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

func (s *Service) goRun(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.errMu.Lock()
			s.err = errors.Join(s.err, err)
			s.errMu.Unlock()
		}
	}()
}

// Wait waits until everything Start runs has stopped (after its context is
// done), at most ShutdownTimeout when that is set, and releases the Docker
// clients.
func (s *Service) Wait() error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	if s.cfg.ShutdownTimeout > 0 {
		select {
		case <-done:
		case <-time.After(s.cfg.ShutdownTimeout):
			s.log.Warn("shutdown timed out; events in flight will be redelivered", zap.Duration("timeout", s.cfg.ShutdownTimeout))
		}
	} else {
		<-done
	}
	s.engines.Close()
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Run starts the provisioner and returns once ctx is done and it stopped.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Wait()
}
