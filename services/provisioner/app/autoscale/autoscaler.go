// Package autoscale is the provisioner's autoscaler: for each autoscale
// config, a decision (domain.DecideScale) taken under the config's row
// lock, so that one replica at a time decides for it, and the work that
// follows it, outside any transaction: making an agent's machine (VM
// provider), waiting for its engine to answer over TLS, loading the
// workspaces' images into it and giving it a DNS record before it takes
// sessions; and deleting a drained agent's machine and record.
//
// Every step is recorded on the agent's row first (lifecycle
// provisioning or deleting) and leased by the replica that works on it; a
// replica that dies leaves a lease that runs out, and another replica
// picks the work up where the row says it is: providers' Create and
// Delete are safe to call again.
package autoscale

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/pki"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// ErrBusy is returned by Store.Decide when another replica holds the
// config's lock: it is deciding for it now.
var ErrBusy = errors.New("another replica is deciding for this autoscale config")

// ErrLeaseLost is returned by the Store's leased writes when the work on
// the agent is no longer this replica's: its lease ran out and another
// took it over, or the agent moved on.
var ErrLeaseLost = errors.New("the work on this agent is no longer this replica's")

// Store is what the autoscaler reads and writes (adapters/postgres).
type Store interface {
	// ListAutoscaleConfigs returns the ids of every autoscale config.
	ListAutoscaleConfigs(ctx context.Context) ([]string, error)
	// Decide locks config id (ErrBusy when another replica holds it),
	// reads its state and the pool's agents in its zone, asks in.Decide,
	// and records the outcome in the same transaction: new agents rows
	// (provisioning, sized by in.Size), an agent drained, taken back or
	// marked for deletion, the decision and, for a change of agents, the
	// config's last_scale_at.
	Decide(ctx context.Context, id string, in DecideInput) (domain.ScaleDecision, error)
	// ClaimWork leases to owner, for lease, up to limit agents being made
	// or deleted whose lease is free (none, or run out).
	ClaimWork(ctx context.Context, owner string, lease time.Duration, limit int) ([]Work, error)
	// RenewLease extends owner's lease on agent id; an error means it lost
	// it.
	RenewLease(ctx context.Context, id, owner string, lease time.Duration) error
	// MachineMade records the machine of agent id: its provider id, and
	// its endpoint and address; ErrLeaseLost when owner no longer holds
	// the work.
	MachineMade(ctx context.Context, id, owner string, m Machine) error
	// AgentReady makes agent id active: it takes sessions from now.
	AgentReady(ctx context.Context, id, owner string) error
	// AgentGone records that agent id's machine is deleted: it is kept as
	// history (its sessions refer to it) but belongs to nothing.
	AgentGone(ctx context.Context, id, owner string) error
	// AgentFailed records why work on agent id failed, on the agent (and
	// on its config when it was being made), and leaves the work alone
	// for retryAfter; abandon also moves a provisioning agent to
	// deleting, so its machine goes.
	AgentFailed(ctx context.Context, id, owner string, cause error, abandon bool, retryAfter time.Duration) error
	// Images lists the images of the enabled workspaces that have one:
	// a new agent has them before it takes sessions.
	Images(ctx context.Context) ([]string, error)
}

// DecideInput is what Store.Decide needs from the autoscaler.
type DecideInput struct {
	// Outages tell which engines do not answer.
	Outages EngineOutages
	// Size is the size of a new agent of a provider.
	Size func(ProviderConfig) (domain.Resources, int, error)
	// Decide is the decision (domain.DecideScale).
	Decide func(domain.ScaleState) domain.ScaleDecision
	// RetryAfter keeps a config whose last step failed less than this ago
	// from adding agents (the failure's cause would fail them too).
	RetryAfter time.Duration
}

// EngineOutages tells which engines are known not to answer
// (app/enginehealth).
type EngineOutages interface {
	Outage(endpoint string) *domain.EngineOutage
}

// ProviderConfig is a VM or DNS provider as the database holds it.
type ProviderConfig struct {
	ID, Name, Type string
	Settings       json.RawMessage
	Secrets        json.RawMessage
	// A VM provider's certificate authority and the provisioners' client
	// certificate (PEM).
	CACert, CAKey, ClientCert, ClientKey string
}

// EngineServerName is the name every autoscaled agent's engine
// certificate carries and the provisioners verify: the VM provider's CA
// vouches that the engine is one of its machines, whatever address the
// machine got (a new machine may reuse a deleted one's).
const EngineServerName = "greenroom-engine"

// ClientTLS is the TLS configuration the provisioners reach the engines of
// the provider's machines with: the provider's client certificate, and
// the engine's certificate verified against the provider's CA for
// EngineServerName.
func (p ProviderConfig) ClientTLS() (*tls.Config, error) {
	cfg, err := pki.ClientTLSConfig([]byte(p.CACert), []byte(p.ClientCert), []byte(p.ClientKey))
	if err != nil {
		return nil, fmt.Errorf("TLS settings of VM provider %s: %w", p.Name, err)
	}
	cfg.ServerName = EngineServerName
	return cfg, nil
}

// Work is an agent being made or deleted, leased to this replica.
type Work struct {
	AgentID, Name, Lifecycle string
	ConfigID, ConfigName     string
	// MachineID is its machine's provider id and Endpoint its engine,
	// "" until the machine is made.
	MachineID, Endpoint string
	Size                domain.Resources
	GPUs                int
	// Since is when it entered its lifecycle, Started when a replica first
	// took up this step (the boot timeout counts from it).
	Since, Started time.Time
	VM             ProviderConfig
	// DNS is its config's DNS provider, nil when none.
	DNS *ProviderConfig
}

// Providers makes the VM and DNS providers of their configurations
// (adapters/vm, adapters/dns).
type Providers interface {
	VM(ProviderConfig) (Provider, error)
	DNS(ProviderConfig) (DNS, error)
	// Size is the size of a new machine of a provider.
	Size(ProviderConfig) (domain.Resources, int, error)
}

// Finder finds a machine by the name it was made for (a crash between
// Create and recording its id).
type Finder interface {
	Find(ctx context.Context, name string) (Machine, bool, error)
}

// Engine is a new agent's Docker engine, reached with its provider's TLS
// settings.
type Engine interface {
	// Ping asks the engine whether it answers.
	Ping(ctx context.Context) error
	// LoadImages copies the images refs it lacks from the source engine.
	LoadImages(ctx context.Context, refs []string) ([]string, error)
	Close() error
}

// Dial reaches the engine at endpoint with tlsConfig.
type Dial func(endpoint string, tlsConfig *tls.Config) (Engine, error)

// Config tunes the autoscaler; zero values take the defaults.
type Config struct {
	// Interval is the time between two decisions for every config
	// (GREENROOM_AUTOSCALE_INTERVAL).
	Interval time.Duration
	// BootTimeout bounds the making of an agent, from the decision to its
	// engine answering with the images loaded; past it the machine is
	// deleted (GREENROOM_AUTOSCALE_BOOT_TIMEOUT).
	BootTimeout time.Duration
	// Lease is how long a replica holds the work on an agent without
	// renewing it; another replica takes it over once it runs out.
	Lease time.Duration
	// Workers bounds the agents one replica makes or deletes at once.
	Workers int
	// RetryAfter keeps a config whose last step failed from adding agents
	// for this long.
	RetryAfter time.Duration
	// Owner names this replica in leases.
	Owner string
	// Labels go on every machine (the deployment's).
	Labels map[string]string
	// Forget, when set, is told the endpoint of an agent whose machine is
	// gone (docker.Engines.Forget).
	Forget func(endpoint string)
}

// Defaults of Config.
const (
	IntervalDefault    = 10 * time.Second
	BootTimeoutDefault = 10 * time.Minute
	LeaseDefault       = time.Minute
	WorkersDefault     = 4
	RetryAfterDefault  = time.Minute
)

func (c *Config) withDefaults() {
	if c.Interval <= 0 {
		c.Interval = IntervalDefault
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = BootTimeoutDefault
	}
	if c.Lease <= 0 {
		c.Lease = LeaseDefault
	}
	if c.Workers <= 0 {
		c.Workers = WorkersDefault
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = RetryAfterDefault
	}
}

// Autoscaler decides for every autoscale config and carries its decisions
// out; Start runs it (startstop).
type Autoscaler struct {
	*startstop.Loop

	cfg       Config
	store     Store
	providers Providers
	dial      Dial
	outages   EngineOutages
	log       *zap.Logger
	metrics   *metrics
	// changed is called once an agent takes sessions or is gone, so that
	// pools waiting for room try again at once.
	changed func()

	mu      sync.Mutex
	working map[string]bool // agent ids this replica works on
	wg      sync.WaitGroup
}

// New returns an autoscaler; changed (may be nil) is called when an agent
// starts or stops taking sessions.
func New(cfg Config, store Store, providers Providers, dial Dial, outages EngineOutages, log *zap.Logger,
	reg prometheus.Registerer, changed func()) *Autoscaler {
	cfg.withDefaults()
	a := &Autoscaler{cfg: cfg, store: store, providers: providers, dial: dial, outages: outages,
		log: log.Named("autoscaler"), metrics: newMetrics(reg), changed: changed, working: map[string]bool{}}
	if a.changed == nil {
		a.changed = func() {}
	}
	a.Loop = startstop.NewLoop(startstop.LoopConfig{Interval: cfg.Interval, Pass: a.pass,
		Stopping: a.wg.Wait})
	return a
}

// pass decides once for every config, then starts work on the agents
// waiting for it.
func (a *Autoscaler) pass(ctx context.Context) {
	if _, err := a.RunOnce(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("autoscale pass failed", zap.Error(err))
	}
	a.startWork(ctx)
}

// RunOnce decides once for every autoscale config and returns the
// decisions by config id (a config another replica was deciding for is
// left out).
func (a *Autoscaler) RunOnce(ctx context.Context) (map[string]domain.ScaleDecision, error) {
	ids, err := a.store.ListAutoscaleConfigs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]domain.ScaleDecision{}
	var errs []error
	for _, id := range ids {
		d, err := a.Decide(ctx, id)
		switch {
		case errors.Is(err, ErrBusy):
		case err != nil:
			errs = append(errs, err)
		default:
			out[id] = d
		}
	}
	return out, errors.Join(errs...)
}

// Decide takes one decision for config id and records it.
func (a *Autoscaler) Decide(ctx context.Context, id string) (domain.ScaleDecision, error) {
	d, err := a.store.Decide(ctx, id, DecideInput{Outages: a.outages, Size: a.providers.Size,
		Decide: domain.DecideScale, RetryAfter: a.cfg.RetryAfter})
	if err != nil {
		return d, err
	}
	a.metrics.decisions.WithLabelValues(string(d.Action)).Inc()
	if d.Action != domain.ScaleNone {
		a.log.Info("autoscale decision", zap.String("config", id), zap.String("action", string(d.Action)),
			zap.Int("count", d.Count), zap.String("agent", d.Agent), zap.String("reason", d.Reason))
		if d.Action != domain.ScaleUp {
			// Placement, the pools and the engine watcher see the
			// agent's new lifecycle at once (a drained agent's staged
			// sessions are replaced; a deleted one is no longer watched).
			a.changed()
		}
	}
	return d, nil
}

// startWork leases the agents waiting to be made or deleted, up to the
// free workers, and works on each in its own goroutine.
func (a *Autoscaler) startWork(ctx context.Context) {
	a.mu.Lock()
	free := a.cfg.Workers - len(a.working)
	a.mu.Unlock()
	if free <= 0 {
		return
	}
	works, err := a.store.ClaimWork(ctx, a.cfg.Owner, a.cfg.Lease, free)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("claiming autoscale work failed", zap.Error(err))
		}
		return
	}
	for _, w := range works {
		a.mu.Lock()
		if a.working[w.AgentID] {
			a.mu.Unlock()
			continue
		}
		a.working[w.AgentID] = true
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer func() {
				a.mu.Lock()
				delete(a.working, w.AgentID)
				a.mu.Unlock()
			}()
			a.Work(ctx, w)
		}()
	}
}

// Work carries out the work on one leased agent, renewing its lease
// meanwhile, and records how it ended.
func (a *Autoscaler) Work(ctx context.Context, w Work) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := make(chan struct{})
	go func() {
		t := time.NewTicker(a.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, rcancel := context.WithTimeout(ctx, a.cfg.Lease/3)
				err := a.store.RenewLease(rctx, w.AgentID, a.cfg.Owner, a.cfg.Lease)
				rcancel()
				if err != nil {
					if ctx.Err() == nil {
						a.log.Warn("lost the lease on an agent's work; leaving it to the replica that took it",
							zap.String("agent", w.Name), zap.Error(err))
					}
					close(lost)
					cancel()
					return
				}
			}
		}
	}()
	start := time.Now()
	var err error
	switch w.Lifecycle {
	case domain.LifecycleProvisioning:
		err = a.provision(ctx, w)
	case domain.LifecycleDeleting:
		err = a.remove(ctx, w)
	default:
		err = fmt.Errorf("agent %s is %s: nothing to do", w.Name, w.Lifecycle)
	}
	if err != nil {
		select {
		case <-lost:
			return
		default:
		}
		if ctx.Err() != nil {
			// Stopping: the lease runs out and a replica picks it up.
			return
		}
	}
	log := a.log.With(zap.String("agent", w.Name), zap.String("config", w.ConfigName), zap.String("step", w.Lifecycle),
		zap.Duration("took", time.Since(start)))
	if err == nil {
		a.metrics.steps.WithLabelValues(w.Lifecycle, "ok").Inc()
		a.metrics.stepSeconds.WithLabelValues(w.Lifecycle).Observe(time.Since(start).Seconds())
		log.Info("autoscale step done")
		a.changed()
		return
	}
	a.metrics.steps.WithLabelValues(w.Lifecycle, "failed").Inc()
	// A machine that did not come up within the boot timeout is given
	// up: deleted, so that a new one is tried.
	abandon := w.Lifecycle == domain.LifecycleProvisioning && time.Since(w.Started) >= a.cfg.BootTimeout
	log.Warn("autoscale step failed", zap.Error(err), zap.Bool("abandoned", abandon))
	if rerr := a.store.AgentFailed(context.WithoutCancel(ctx), w.AgentID, a.cfg.Owner, err, abandon, a.cfg.RetryAfter/2); rerr != nil {
		log.Warn("recording an autoscale failure failed", zap.Error(rerr))
	}
}

// provision makes w's machine, waits for its engine, loads the images,
// registers its name and makes it active.
func (a *Autoscaler) provision(ctx context.Context, w Work) error {
	ctx, cancel := context.WithDeadline(ctx, w.Started.Add(a.cfg.BootTimeout))
	defer cancel()
	vm, err := a.providers.VM(w.VM)
	if err != nil {
		return err
	}
	defer closeProvider(vm)
	serverCert, serverKey, err := pki.Issue([]byte(w.VM.CACert), []byte(w.VM.CAKey), pki.Server, w.Name,
		[]string{EngineServerName, w.Name}, nil, 5*365*24*time.Hour)
	if err != nil {
		return fmt.Errorf("issuing the engine certificate of %s: %w", w.Name, err)
	}
	labels := map[string]string{"greenroom.machine": w.Name, "greenroom.autoscale_config": w.ConfigName}
	for k, v := range a.cfg.Labels {
		labels[k] = v
	}
	m, err := vm.Create(ctx, MachineSpec{Name: w.Name, Cores: float64(w.Size.MilliCores) / 1000, MemoryMB: int(w.Size.MemoryMB),
		GPUs: w.GPUs, Labels: labels, TLS: EngineTLS{CACert: []byte(w.VM.CACert), ServerCert: serverCert, ServerKey: serverKey}})
	if err != nil {
		return fmt.Errorf("making the machine of %s (%s provider %s): %w", w.Name, w.VM.Type, w.VM.Name, err)
	}
	if err := a.store.MachineMade(ctx, w.AgentID, a.cfg.Owner, m); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			// Another replica took the agent over (this one was cut off
			// from the database for a lease): the machine just made is
			// nobody's unless this one deletes it.
			if derr := vm.Delete(context.WithoutCancel(ctx), m.ID); derr != nil {
				return fmt.Errorf("%w; deleting the machine %s it made meanwhile failed too: %v", err, m.ID, derr)
			}
		}
		return err
	}
	tlsConfig, err := w.VM.ClientTLS()
	if err != nil {
		return err
	}
	eng, err := a.dial(m.Endpoint(), tlsConfig)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := waitForEngine(ctx, eng); err != nil {
		return fmt.Errorf("the engine of %s at %s: %w", w.Name, m.Endpoint(), err)
	}
	images, err := a.store.Images(ctx)
	if err != nil {
		return err
	}
	if _, err := eng.LoadImages(ctx, images); err != nil {
		return fmt.Errorf("loading the workspaces' images into %s: %w", w.Name, err)
	}
	if w.DNS != nil {
		dns, err := a.providers.DNS(*w.DNS)
		if err != nil {
			return err
		}
		if err := dns.Register(ctx, w.Name, m.Address); err != nil {
			return fmt.Errorf("registering %s in DNS provider %s: %w", w.Name, w.DNS.Name, err)
		}
	}
	return a.store.AgentReady(ctx, w.AgentID, a.cfg.Owner)
}

// closeProvider releases what a provider holds (the local provider's
// Docker client), if it holds anything.
func closeProvider(p Provider) {
	if c, ok := p.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// waitForEngine pings eng until it answers or ctx is done: a machine's
// engine takes a while to start.
func waitForEngine(ctx context.Context, eng Engine) error {
	wait := 200 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := eng.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("did not answer before the boot timeout: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// remove deletes w's DNS record and machine, then records it gone. A DNS
// record that cannot be removed does not keep the machine: the machine
// goes, and the record is tried again (the agent stays deleting).
func (a *Autoscaler) remove(ctx context.Context, w Work) error {
	var dnsErr error
	if w.DNS != nil {
		dns, err := a.providers.DNS(*w.DNS)
		if err == nil {
			err = dns.Remove(ctx, w.Name)
		}
		if err != nil {
			dnsErr = fmt.Errorf("removing %s from DNS provider %s: %w", w.Name, w.DNS.Name, err)
		}
	}
	vm, err := a.providers.VM(w.VM)
	if err != nil {
		return errors.Join(dnsErr, err)
	}
	defer closeProvider(vm)
	id := w.MachineID
	if id == "" {
		// The machine may have been made by a replica that died before
		// recording it.
		if f, ok := vm.(Finder); ok {
			m, found, err := f.Find(ctx, w.Name)
			if err != nil {
				return errors.Join(dnsErr, fmt.Errorf("looking for the machine of %s: %w", w.Name, err))
			}
			if found {
				id = m.ID
			}
		}
	}
	if id != "" {
		if err := vm.Delete(ctx, id); err != nil {
			return errors.Join(dnsErr, fmt.Errorf("deleting the machine of %s (%s): %w", w.Name, id, err))
		}
	}
	if dnsErr != nil {
		return dnsErr
	}
	if err := a.store.AgentGone(ctx, w.AgentID, a.cfg.Owner); err != nil {
		return err
	}
	if a.cfg.Forget != nil && w.Endpoint != "" {
		a.cfg.Forget(w.Endpoint)
	}
	return nil
}

// metrics are the autoscaler's Prometheus metrics.
type metrics struct {
	decisions   *prometheus.CounterVec
	steps       *prometheus.CounterVec
	stepSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "greenroom_autoscale_decisions_total",
			Help: "Autoscale decisions taken, by action (none, scale_up, drain, undrain, delete)."}, []string{"action"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "greenroom_autoscale_steps_total",
			Help: "Agents made (provisioning) or deleted (deleting) by the autoscaler, by outcome."}, []string{"step", "outcome"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "greenroom_autoscale_step_seconds",
			Help:    "How long making an agent (machine, engine, images, DNS) or deleting one took.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}, []string{"step"}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.steps, m.stepSeconds)
	}
	return m
}
