// Package audit checks that the containers Greenroom's sessions rely on
// still exist, and that every container Greenroom made still has a
// session. The ContainerAuditor fails a staged, assigning or running
// session whose container is missing or no longer running (reason
// container_gone), removes the dead container and refills the session's
// staging pool; in the same pass it removes orphan containers, those
// whose session has no row or ended. The EngineWatcher follows each
// Docker engine's event stream, so that a container that dies or is
// removed is acted on at once rather than at the next pass. They are the
// answer to containers that go behind Greenroom's back: `make down`, an
// operator's `docker rm`, an engine restart, an out-of-memory kill.
// Without them a staged session without a container would be handed to
// the next user, whose assign would then fail. They reach PostgreSQL and
// the engines through AuditedSessions (store.go) and Engines (engines.go),
// which adapters/ implements.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/testsignal"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Defaults of ContainerAuditorConfig.
const (
	// ContainerAuditorIntervalDefault is the time between passes. A pass
	// costs one query per Docker endpoint and two container lists per
	// endpoint, so it may run often. The engine watcher notices most
	// losses at once; the pass is the safety net for what its streams
	// missed.
	ContainerAuditorIntervalDefault = 30 * time.Second
	// ContainerAuditorGracePeriodDefault is how long a session is left
	// alone after its row last changed (staged, claimed, running), so that
	// nothing the provisioner is doing with it right now is judged; and
	// how old a container without a live session must be before it is
	// removed as an orphan.
	ContainerAuditorGracePeriodDefault = 30 * time.Second
	// ContainerAuditorEndpointConcurrencyDefault is how many endpoints a
	// pass audits at once.
	ContainerAuditorEndpointConcurrencyDefault = 8
	// ContainerAuditorEndpointTimeoutDefault bounds the audit of one
	// endpoint in a pass; what it did not get to, the next pass does.
	ContainerAuditorEndpointTimeoutDefault = 2 * time.Minute
)

// eventRetries and eventRetryDelay: a session an engine event names may
// be locked for a moment by whatever else is moving it (a claim, another
// replica failing it); it is looked at again after 50, 100, 200 and 400
// ms before the next pass is left to judge it.
const (
	eventRetries    = 4
	eventRetryDelay = 50 * time.Millisecond
)

// ContainerAuditorConfig tunes a ContainerAuditor; zero values take the
// defaults.
type ContainerAuditorConfig struct {
	// Interval is the time between passes; the first pass runs at Start.
	Interval time.Duration
	// GracePeriod leaves out sessions whose row changed more recently than
	// this, and orphan containers created more recently than this. A
	// negative value leaves out none (tests).
	GracePeriod time.Duration
	// OrphanLabels are labels a container must carry, besides
	// greenroom.managed=true, to be removed as an orphan: the labels the
	// provisioner adds to every container it makes (command.Config's
	// ExtraLabels). Deployments, or tests, that share a Docker engine and
	// mark their containers so never remove each other's.
	OrphanLabels map[string]string
	// EndpointConcurrency is how many endpoints a pass audits at once, so
	// that an engine that does not answer holds up only its own audit
	// (ContainerAuditorEndpointConcurrencyDefault).
	EndpointConcurrency int
	// EndpointTimeout bounds the audit of one endpoint in a pass, so that
	// an engine that stops answering mid-call does not hold up the next
	// passes (ContainerAuditorEndpointTimeoutDefault).
	EndpointTimeout time.Duration
}

func (c *ContainerAuditorConfig) withDefaults() {
	if c.Interval <= 0 {
		c.Interval = ContainerAuditorIntervalDefault
	}
	if c.EndpointConcurrency <= 0 {
		c.EndpointConcurrency = ContainerAuditorEndpointConcurrencyDefault
	}
	if c.EndpointTimeout <= 0 {
		c.EndpointTimeout = ContainerAuditorEndpointTimeoutDefault
	}
	c.GracePeriod = cmp.Or(c.GracePeriod, ContainerAuditorGracePeriodDefault)
}

// AuditResult counts what a pass, or the judgment of one engine event,
// did.
type AuditResult struct {
	// Endpoints is the number of Docker endpoints whose containers were
	// listed.
	Endpoints int
	// Unreachable is the number of endpoints that could not be listed;
	// their sessions were left alone, since nothing was seen of them.
	Unreachable int
	// Checked is the number of sessions whose container was looked for.
	Checked int
	// Failed is the number of sessions failed as container_gone.
	Failed int
	// Skipped counts sessions whose container was gone but which another
	// replica was failing, or which changed since they were read; the next
	// pass judges them again.
	Skipped int
	// Removed is the number of dead containers of failed sessions removed.
	Removed int
	// OrphansRemoved is the number of orphan containers removed: managed
	// containers whose session has no row, or is destroyed or failed,
	// created more than the grace period ago.
	OrphansRemoved int
	// ReapHeld counts endpoints whose orphans another replica was reaping
	// at the time; it removes them.
	ReapHeld int
}

func (r *AuditResult) add(o AuditResult) {
	r.Endpoints += o.Endpoints
	r.Unreachable += o.Unreachable
	r.Checked += o.Checked
	r.Failed += o.Failed
	r.Skipped += o.Skipped
	r.Removed += o.Removed
	r.OrphansRemoved += o.OrphansRemoved
	r.ReapHeld += o.ReapHeld
}

// ContainerAuditorTestSignals fire when the auditor's loop finishes a pass.
type ContainerAuditorTestSignals struct {
	// PassDone receives each pass's result.
	PassDone testsignal.Signal[AuditResult]
}

// Init enables the signals; without it they cost nothing.
func (ts *ContainerAuditorTestSignals) Init() { ts.PassDone.Init() }

// ContainerAuditor fails the sessions whose container is gone and removes
// the containers whose session is gone. Any number of replicas may run
// one: each session is failed in a transaction that skips rows another
// replica holds, so it is failed, announced and counted once; and one
// replica at a time reaps an endpoint's orphans, under an advisory lock.
type ContainerAuditor struct {
	// Loop runs a pass at once, then one every Interval (startstop:
	// Start, Stop).
	*startstop.Loop
	cfg     ContainerAuditorConfig
	store   AuditedSessions
	engines Engines
	metrics *command.Metrics
	orphans prometheus.Counter
	pools   command.PoolTrigger
	log     *zap.Logger

	// TestSignals fire as passes finish; tests wait on them instead of
	// sleeping. Call TestSignals.Init to enable them.
	TestSignals ContainerAuditorTestSignals
}

// NewContainerAuditor returns a ContainerAuditor; call Start to run it.
// pools is told the staging config of each staged session failed, so that
// its pool is refilled at once. Its own metrics are registered on reg
// (none when nil).
func NewContainerAuditor(cfg ContainerAuditorConfig, store AuditedSessions, engines Engines,
	metrics *command.Metrics, reg prometheus.Registerer, log *zap.Logger, pools command.PoolTrigger) *ContainerAuditor {
	cfg.withDefaults()
	if pools == nil {
		pools = func(string) {}
	}
	orphans := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "greenroom_provisioner_orphan_containers_removed_total",
		Help: "Managed containers removed because their session has no row, or is destroyed or failed.",
	})
	if reg != nil {
		reg.MustRegister(orphans)
	}
	a := &ContainerAuditor{cfg: cfg, store: store, engines: engines, metrics: metrics, orphans: orphans,
		pools: pools, log: log.Named("container_auditor")}
	a.Loop = startstop.NewLoop(startstop.LoopConfig{Interval: cfg.Interval, Pass: a.pass})
	return a
}

func (a *ContainerAuditor) pass(ctx context.Context) {
	res, err := a.RunOnce(ctx)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("container audit pass failed", zap.Error(err))
	}
	a.TestSignals.PassDone.Signal(res)
}

// RunOnce audits every watched agent's Docker endpoint once (enabled, or
// still hosting live sessions). An error of
// one endpoint or session is reported after the others were audited.
func (a *ContainerAuditor) RunOnce(ctx context.Context) (AuditResult, error) {
	return a.run(ctx, "")
}

// AuditEndpoint audits one Docker endpoint, if an enabled agent uses it:
// the engine watcher runs it whenever it (re)subscribes to the endpoint's
// events, for what happened while it was not listening.
func (a *ContainerAuditor) AuditEndpoint(ctx context.Context, endpoint string) (AuditResult, error) {
	return a.run(ctx, endpoint)
}

// run audits every endpoint, or only the one given.
func (a *ContainerAuditor) run(ctx context.Context, only string) (AuditResult, error) {
	agents, err := a.store.ListWatchedAgents(ctx)
	if err != nil {
		return AuditResult{}, fmt.Errorf("error auditing containers: %w", err)
	}
	// The endpoints are audited at once (up to EndpointConcurrency), each
	// within EndpointTimeout: an engine that does not answer holds up its
	// own audit only.
	var (
		mu   sync.Mutex
		res  AuditResult
		errs []error
		wg   sync.WaitGroup
	)
	slots := make(chan struct{}, a.cfg.EndpointConcurrency)
	for _, ep := range byEndpoint(agents) {
		if only != "" && ep.address != only {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			ectx, cancel := context.WithTimeout(ctx, a.cfg.EndpointTimeout)
			defer cancel()
			one, err := a.auditEndpoint(ectx, ep)
			mu.Lock()
			defer mu.Unlock()
			res.add(one)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if res.Failed > 0 || res.Unreachable > 0 || res.OrphansRemoved > 0 {
		a.log.Info("container audit pass", zap.Int("checked", res.Checked), zap.Int("failed", res.Failed),
			zap.Int("removed", res.Removed), zap.Int("skipped", res.Skipped), zap.Int("unreachable", res.Unreachable),
			zap.Int("orphans_removed", res.OrphansRemoved))
	}
	return res, errors.Join(errs...)
}

// endpoint is one Docker engine and the agents that use it.
type endpoint struct {
	address string
	ids     []string // agent ids
}

func byEndpoint(agents []command.Agent) []*endpoint {
	var out []*endpoint
	index := map[string]*endpoint{}
	for _, ag := range agents {
		ep := index[ag.DockerEndpoint]
		if ep == nil {
			ep = &endpoint{address: ag.DockerEndpoint}
			index[ag.DockerEndpoint] = ep
			out = append(out, ep)
		}
		ep.ids = append(ep.ids, ag.ID)
	}
	return out
}

// auditEndpoint fails the sessions on one Docker endpoint whose container
// is gone, then reaps its orphan containers.
func (a *ContainerAuditor) auditEndpoint(ctx context.Context, ep *endpoint) (AuditResult, error) {
	res, err := a.failSessionsWithoutContainer(ctx, ep)
	if res.Unreachable > 0 {
		return res, err
	}
	orphans, oerr := a.reapOrphans(ctx, ep.address)
	res.Endpoints = max(res.Endpoints, orphans.Endpoints)
	res.Unreachable = orphans.Unreachable
	res.OrphansRemoved = orphans.OrphansRemoved
	res.ReapHeld = orphans.ReapHeld
	return res, errors.Join(err, oerr)
}

// failSessionsWithoutContainer checks the sessions on one Docker endpoint
// against one list of its Greenroom containers. An endpoint with no
// session to check is not asked.
func (a *ContainerAuditor) failSessionsWithoutContainer(ctx context.Context, ep *endpoint) (AuditResult, error) {
	var res AuditResult
	// Sessions first, containers second: every session judged had its
	// container recorded before the list was taken, so a container made
	// meanwhile can never be the one found missing.
	candidates, err := a.store.ListContainerAuditCandidates(ctx, ListContainerAuditCandidatesParams{
		AgentIDs: ep.ids, GracePeriod: a.cfg.GracePeriod,
	})
	if err != nil {
		return res, fmt.Errorf("error auditing containers on %s: %w", ep.address, err)
	}
	if len(candidates) == 0 {
		return res, nil
	}
	eng, err := a.engines.For(ep.address)
	var list []domain.Container
	if err == nil {
		// Every managed container, not only those carrying OrphanLabels:
		// one made before those labels were set must not be taken for
		// missing.
		list, err = eng.ListByLabels(ctx, map[string]string{domain.LabelManaged: "true"})
	}
	if err != nil {
		res.Unreachable = 1
		return res, fmt.Errorf("error auditing containers on %s; its %d sessions were not checked: %w", ep.address, len(candidates), err)
	}
	res.Endpoints = 1
	listed := make(map[string]domain.Container, len(list))
	for _, c := range list {
		listed[c.ID] = c
	}
	var errs []error
	for _, c := range candidates {
		res.Checked++
		seen, ok := listed[c.ContainerID]
		verdict := domain.JudgeContainer(domain.ContainerSighting{Listed: ok, State: seen.State, ExitCode: seen.ExitCode})
		if !verdict.Gone {
			continue
		}
		if err := a.failSession(ctx, eng, c, verdict, "audit pass", &res); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// ContainerGone judges at once the session an engine event names (by the
// container's greenroom.session label): when the session is staged,
// assigning or running and records that very container, it is failed as
// container_gone with what the event said (verdict), as a pass would fail
// it, and the dead container removed and the pool refilled. Anything else
// is left alone: Greenroom moves a session to destroying or failed before
// it removes the container itself, a provisioning session is its
// provisioner's, and a container the session does not record is not the
// one it relies on. A session another transaction holds at that moment is
// looked at again shortly; one still held then is left to the next pass.
func (a *ContainerAuditor) ContainerGone(ctx context.Context, endpoint, sessionID, containerID string, verdict domain.ContainerVerdict) (AuditResult, error) {
	var res AuditResult
	if !verdict.Gone {
		return res, nil
	}
	for attempt := 0; ; attempt++ {
		c, found, err := a.store.GetContainerAuditCandidate(ctx, sessionID)
		if err != nil {
			return res, fmt.Errorf("error judging the container event of session %s: %w", sessionID, err)
		}
		if !found || c.ContainerID != containerID || !judged(c.Status) {
			return res, nil
		}
		res.Checked = 1
		eng, err := a.engines.For(endpoint)
		if err != nil {
			eng = nil // the dead container is left to the orphan collector
		}
		var one AuditResult
		if err := a.failSession(ctx, eng, c, verdict, "engine event", &one); err != nil {
			return res, err
		}
		if one.Failed > 0 {
			res.Failed, res.Removed = one.Failed, one.Removed
			return res, nil
		}
		if attempt == eventRetries {
			res.Skipped = 1
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(eventRetryDelay << attempt):
		}
	}
}

// judged reports whether a session in status st relies on its container
// running: a staged, assigning or running one.
func judged(st sessions.Status) bool {
	return st == sessions.Staged || st == sessions.Assigning || st == sessions.Running
}

// failSession fails a session whose container is gone, then asks for the
// session's replacement in its pool and removes the dead container (when
// eng is given). The failure is committed first: a crash in
// between leaves a dead container of a failed session, which the orphan
// collector removes, never a session without a container. noticedBy says
// how the loss was noticed, for the log.
func (a *ContainerAuditor) failSession(ctx context.Context, eng Engine, c ContainerAuditCandidate,
	verdict domain.ContainerVerdict, noticedBy string, res *AuditResult) error {
	sc, failed, err := a.store.FailContainerGone(ctx, FailContainerGoneParams{
		Candidate: c,
		Failure: command.Failure{Reason: events.ReasonContainerGone, Observed: verdict.Seen,
			Detail: fmt.Sprintf("container %s of the %s session on agent %s: %s",
				domain.ShortID(c.ContainerID), c.Status, c.AgentName, verdict.Seen)},
	})
	if err != nil {
		return err
	}
	if !failed {
		res.Skipped++
		return nil
	}
	res.Failed++
	a.metrics.SessionFailed(events.ReasonContainerGone, c.Status)
	log := a.log.With(zap.String("session_id", c.SessionID), zap.String("status", string(c.Status)),
		zap.String("agent", c.AgentName), zap.String("container_id", domain.ShortID(c.ContainerID)))
	if rid := sc.RequestID(); rid != "" {
		log = log.With(zap.String("request_id", rid))
	}
	log.Warn("session failed: its container is gone", zap.String("reason", events.ReasonContainerGone),
		zap.String("seen", verdict.Seen), zap.String("noticed_by", noticedBy))
	// The replacement first: removing the dead container takes a while
	// and holds up nobody.
	if c.Status == sessions.Staged && c.StagingConfigID.Valid {
		a.pools(c.StagingConfigID.String)
	}
	if verdict.Remove && eng != nil {
		if err := eng.Remove(ctx, c.ContainerID); err != nil {
			log.Warn("could not remove the dead container; leaving it to the orphan collector", zap.Error(err))
		} else {
			res.Removed++
			a.metrics.ContainersRemoved.Inc()
			// The audit log ends the container it says was created.
			if err := a.store.AnnounceFailedRemoved(ctx, &sc, events.ReasonContainerGone); err != nil {
				log.Warn("the dead container was removed, but its removal could not be announced", zap.Error(err))
			}
		}
	}
	return nil
}

// reapOrphans removes the orphan containers of one endpoint (see
// domain.JudgeOrphan), holding the endpoint's reaping lock so that one
// replica at a time does it.
func (a *ContainerAuditor) reapOrphans(ctx context.Context, address string) (AuditResult, error) {
	var res AuditResult
	err := a.store.ReapOrphans(ctx, ReapOrphansParams{Endpoint: address}, func(ctx context.Context) error {
		eng, err := a.engines.For(address)
		var list []domain.Container
		if err == nil {
			labels := maps.Clone(a.cfg.OrphanLabels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels[domain.LabelManaged] = "true"
			list, err = eng.ListByLabels(ctx, labels)
		}
		if err != nil {
			res.Unreachable = 1
			return fmt.Errorf("error looking for orphan containers on %s: %w", address, err)
		}
		res.Endpoints = 1
		// Containers first, sessions second: each container listed was
		// created after its session's row was committed, so the row is
		// read here if it exists.
		ids := make([]string, 0, len(list))
		for _, c := range list {
			if id := c.Labels[domain.LabelSession]; id != "" {
				ids = append(ids, id)
			}
		}
		statuses, err := a.store.ListSessionStatuses(ctx, ids)
		if err != nil {
			return fmt.Errorf("error looking for orphan containers on %s: %w", address, err)
		}
		status := make(map[string]sessions.Status, len(statuses))
		for _, s := range statuses {
			status[s.SessionID] = s.Status
		}
		now := time.Now()
		var errs []error
		for _, c := range list {
			id := c.Labels[domain.LabelSession]
			st, found := status[id]
			verdict := domain.JudgeOrphan(domain.ContainerOwnership{
				SessionLabel: id, SessionFound: found, SessionLive: found && st.Live(), SessionStatus: string(st),
				Age: now.Sub(c.Created),
			}, a.cfg.GracePeriod)
			if !verdict.Orphan {
				continue
			}
			if err := eng.Remove(ctx, c.ID); err != nil {
				errs = append(errs, fmt.Errorf("error removing orphan container %s on %s: %w", domain.ShortID(c.ID), address, err))
				continue
			}
			res.OrphansRemoved++
			a.orphans.Inc()
			a.metrics.ContainersRemoved.Inc()
			// The session's own session.destroyed, if it has one, may
			// be long past: the audit log says when its container went.
			if err := a.store.AnnounceContainerRemoved(ctx, domain.OrphanRemoved(c)); err != nil {
				errs = append(errs, fmt.Errorf("error announcing the removal of orphan container %s on %s: %w", domain.ShortID(c.ID), address, err))
			}
			a.log.Info("orphan container removed", zap.String("container_id", domain.ShortID(c.ID)),
				zap.String("session_id", id), zap.String("why", verdict.Why), zap.String("endpoint", address),
				zap.Duration("age", now.Sub(c.Created).Round(time.Second)))
		}
		return errors.Join(errs...)
	})
	if errors.Is(err, ErrOrphanReapHeld) {
		res.ReapHeld = 1
		return res, nil
	}
	return res, err
}
