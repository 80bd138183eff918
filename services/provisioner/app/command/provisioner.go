// Package command holds the provisioner's use cases, one file each:
// making a session's container (provision_session.go), running the assign
// command of a claimed staged session (assign_session.go) and destroying a
// session (destroy_session.go). Each is idempotent: a redelivered event
// never makes a second container for a session nor announces a second
// outcome, because every outcome is a conditional status transition.
//
// The use cases act through the interfaces this package declares, each
// listing only what they call: SessionStore (sessions.go) for placements
// and lifecycle transitions, Engines (engines.go) for Docker and
// ReadinessProbe for the readiness probe; adapters/ implements them.
// EngineHealth (app/enginehealth) is what is known of which engines do
// not answer, so that placement passes their agents over.
package command

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// Defaults of Config.
const (
	// ReadinessTimeoutDefault bounds how long a new container may take to
	// answer its readiness probe before its session fails.
	ReadinessTimeoutDefault = 60 * time.Second
	// AssignTimeoutDefault bounds the assign command of a staged session.
	AssignTimeoutDefault = 60 * time.Second
	// failureOutputLimit bounds the command output quoted in a failure.
	failureOutputLimit = 512
)

// Config tunes the use cases; zero values take the defaults.
type Config struct {
	ReadinessTimeout time.Duration
	AssignTimeout    time.Duration
	// ExtraLabels are put on every container besides Greenroom's own.
	ExtraLabels map[string]string
	// GatewayURL is the gateway's address, which container sessions' URLs
	// point at (GREENROOM_GATEWAY_URL; GatewayURLDefault).
	GatewayURL *url.URL
}

// GatewayURLDefault is where make up's gateway listens.
const GatewayURLDefault = "http://127.0.0.1:8090"

// PoolTrigger asks for a reconcile of one staging config soon.
type PoolTrigger func(stagingConfigID string)

// Pools is told when staging pools change, so that they are refilled.
type Pools struct {
	// Changed: the pool lost or gained a session; reconcile it soon.
	Changed PoolTrigger
	// Claimed: a session was claimed from the pool; refill it once its
	// claims pause (staging.Reconciler.Claimed).
	Claimed PoolTrigger
}

// Provisioner carries out the provisioner's use cases.
type Provisioner struct {
	cfg     Config
	store   SessionStore
	engines Engines
	prober  ReadinessProbe
	metrics *Metrics
	log     *zap.Logger
	pools   PoolTrigger
	claimed PoolTrigger
	now     func() time.Time
	// hooks calls assign hooks, keeping connections alive.
	hooks *http.Client
	// health is what is known of the agents' engines; placement reads it.
	health EngineHealth
}

// New returns a Provisioner. pools is told whenever a staging pool lost or
// gained a session, so that it is refilled.
func New(cfg Config, store SessionStore, engines Engines, prober ReadinessProbe, metrics *Metrics, log *zap.Logger, pools Pools) *Provisioner {
	if cfg.ReadinessTimeout == 0 {
		cfg.ReadinessTimeout = ReadinessTimeoutDefault
	}
	if cfg.AssignTimeout == 0 {
		cfg.AssignTimeout = AssignTimeoutDefault
	}
	if cfg.GatewayURL == nil {
		cfg.GatewayURL, _ = url.Parse(GatewayURLDefault)
	}
	if pools.Changed == nil {
		pools.Changed = func(string) {}
	}
	if pools.Claimed == nil {
		pools.Claimed = pools.Changed
	}
	return &Provisioner{cfg: cfg, store: store, engines: engines, prober: prober, metrics: metrics, log: log,
		pools: pools.Changed, claimed: pools.Claimed, now: time.Now, hooks: newHookClient(), health: noEngineHealth{}}
}

// UseEngineHealth has placement pass over the agents whose engine health
// knows to be down, and reports to it the engines the use cases could or
// could not reach. Call it before the use cases run; without it every
// engine is taken to answer.
func (p *Provisioner) UseEngineHealth(health EngineHealth) *Provisioner {
	p.health = health
	return p
}

// poolChanged triggers the reconcile of sc's staging config, if it has one.
func (p *Provisioner) poolChanged(sc SessionContext) {
	if id := sc.StagingConfigID(); id != "" {
		p.pools(id)
	}
}

// placementFailed reports a session its placement failed (the store has
// failed it and emitted session.failed) and has its pool, if any, refilled.
func (p *Provisioner) placementFailed(sc SessionContext, f Failure, log *zap.Logger) {
	p.metrics.Failures.WithLabelValues(f.Reason).Inc()
	p.metrics.ProvisioningFailures.WithLabelValues(sc.Session.Origin, f.Reason).Inc()
	failureLog(log, sc)("session failed", zap.String("reason", f.Reason), zap.String("detail", f.Detail))
	p.poolChanged(sc)
}

// removeContainers removes whatever container session sc has on its agent,
// logging rather than failing: the orphan collector is the safety net. It
// returns how many it removed.
func (p *Provisioner) removeContainers(ctx context.Context, sc SessionContext, log *zap.Logger) int {
	if sc.Agent == nil {
		return 0
	}
	eng, err := p.engines.For(sc.Agent.DockerEndpoint)
	var n int
	if err == nil {
		n, err = eng.RemoveSession(ctx, sc.Session.ID, sc.Session.ContainerID)
		p.metrics.ContainersRemoved.Add(float64(n))
	}
	if err != nil {
		log.Warn("could not remove the session's container", zap.Error(err))
	}
	return n
}

// removeFailedContainers removes the containers of a session the
// provisioner has just failed (f), and announces that they went
// (session.destroyed, cause failed; reason the failure's), so that the
// audit log ends every container it says was created. Nothing is
// announced when there was no container: a creation that failed before
// Docker made one.
func (p *Provisioner) removeFailedContainers(ctx context.Context, sc SessionContext, f Failure, log *zap.Logger) {
	if p.removeContainers(ctx, sc, log) == 0 {
		return
	}
	if err := p.store.AnnounceFailedRemoved(ctx, &sc, f.Reason); err != nil {
		log.Warn("the failed session's container was removed, but its removal could not be announced", zap.Error(err))
	}
}

// abandon handles a session that moved on while the provisioner worked on
// it (its transition found it stale). When it was failed (say, by the
// expiry service's provisioning timeout) or is being destroyed, its
// container must not outlive it; when another delivery of the same event
// completed it, the container is that session's and stays.
func (p *Provisioner) abandon(ctx context.Context, sc SessionContext, stale error, log *zap.Logger) {
	cur, err := p.store.LoadSession(ctx, sc.Session.ID)
	if err != nil {
		log.Warn("session moved on and could not be reloaded; leaving its container to the orphan collector", zap.Error(err))
		return
	}
	log = log.With(zap.String("status", string(cur.Session.Status)))
	switch cur.Session.Status {
	case sessions.Failed, sessions.Destroying, sessions.Destroyed:
		log.Info("session ended meanwhile; removing its container", zap.NamedError("cause", stale))
		if cur.Agent == nil {
			cur.Agent = sc.Agent
		}
		p.removeContainers(ctx, cur, log)
		p.poolChanged(cur)
	default:
		log.Info("session was completed by another delivery", zap.NamedError("cause", stale))
	}
}

// trimOutput keeps the end of a command's output, where errors are, on
// one line.
func trimOutput(s string) string {
	// Control characters (a NUL above all) cannot be stored in the jsonb
	// outbox; the output is only a hint for the operator.
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > failureOutputLimit {
		s = "…" + s[len(s)-failureOutputLimit:]
	}
	return s
}
