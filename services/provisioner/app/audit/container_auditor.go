// Package audit checks that the containers Greenroom's sessions rely on
// still exist. The ContainerAuditor fails a staged, assigning or running
// session whose container is missing or no longer running (reason
// container_gone), removes the dead container and refills the session's
// staging pool. It is the answer to containers that go behind Greenroom's
// back: `make down`, an operator's `docker rm`, an engine restart, an
// out-of-memory kill. Without it a staged session without a container
// would be handed to the next user, whose assign would then fail.
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/testsignal"
)

// Defaults of ContainerAuditorConfig.
const (
	// ContainerAuditorIntervalDefault is the time between passes. A pass
	// costs one query per Docker endpoint and one container list per
	// endpoint that hosts live sessions, so it may run often; a lost staged
	// session is then replaced within about this long.
	ContainerAuditorIntervalDefault = 30 * time.Second
	// ContainerAuditorGracePeriodDefault is how long a session is left
	// alone after its row last changed (staged, claimed, running), so that
	// nothing the provisioner is doing with it right now is judged.
	ContainerAuditorGracePeriodDefault = 30 * time.Second
)

// ContainerAuditorConfig tunes a ContainerAuditor; zero values take the
// defaults.
type ContainerAuditorConfig struct {
	// Interval is the time between passes; the first pass runs at Start.
	Interval time.Duration
	// GracePeriod leaves out sessions whose row changed more recently than
	// this. A negative value leaves out none (tests).
	GracePeriod time.Duration
}

func (c *ContainerAuditorConfig) withDefaults() {
	if c.Interval <= 0 {
		c.Interval = ContainerAuditorIntervalDefault
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = ContainerAuditorGracePeriodDefault
	}
}

// AuditResult counts what a pass did.
type AuditResult struct {
	// Endpoints is the number of Docker endpoints whose containers were
	// listed; an endpoint with no session to check is not asked.
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
	// Removed is the number of dead containers removed.
	Removed int
}

func (r *AuditResult) add(o AuditResult) {
	r.Endpoints += o.Endpoints
	r.Unreachable += o.Unreachable
	r.Checked += o.Checked
	r.Failed += o.Failed
	r.Skipped += o.Skipped
	r.Removed += o.Removed
}

// ContainerAuditorTestSignals fire when the auditor's loop finishes a pass.
type ContainerAuditorTestSignals struct {
	// PassDone receives each pass's result.
	PassDone testsignal.Signal[AuditResult]
}

// Init enables the signals; without it they cost nothing.
func (ts *ContainerAuditorTestSignals) Init() { ts.PassDone.Init() }

// ContainerAuditor fails the sessions whose container is gone. Any number
// of replicas may run one: each session is failed in a transaction that
// skips rows another replica holds, so it is failed, announced and counted
// once.
type ContainerAuditor struct {
	cfg     ContainerAuditorConfig
	store   *postgres.Store
	engines *docker.Engines
	metrics *command.Metrics
	pools   command.PoolTrigger
	log     *zap.Logger

	// TestSignals fire as passes finish; tests wait on them instead of
	// sleeping. Call TestSignals.Init to enable them.
	TestSignals ContainerAuditorTestSignals
}

// NewContainerAuditor returns a ContainerAuditor; call Start to run it.
// pools is told the staging config of each staged session failed, so that
// its pool is refilled at once.
func NewContainerAuditor(cfg ContainerAuditorConfig, store *postgres.Store, engines *docker.Engines,
	metrics *command.Metrics, log *zap.Logger, pools command.PoolTrigger) *ContainerAuditor {
	cfg.withDefaults()
	if pools == nil {
		pools = func(string) {}
	}
	return &ContainerAuditor{cfg: cfg, store: store, engines: engines, metrics: metrics, pools: pools,
		log: log.Named("container_auditor")}
}

// Start runs a pass at once, then one every Interval, until ctx is done.
func (a *ContainerAuditor) Start(ctx context.Context) {
	ticker := time.NewTicker(a.cfg.Interval)
	defer ticker.Stop()
	for {
		res, err := a.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("container audit pass failed", zap.Error(err))
		}
		a.TestSignals.PassDone.Signal(res)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// RunOnce audits every enabled agent's Docker endpoint once. An error of
// one endpoint or session is reported after the others were audited.
func (a *ContainerAuditor) RunOnce(ctx context.Context) (AuditResult, error) {
	agents, err := a.store.ListEnabledAgents(ctx)
	if err != nil {
		return AuditResult{}, fmt.Errorf("error auditing containers: %w", err)
	}
	var res AuditResult
	var errs []error
	for _, ep := range byEndpoint(agents) {
		one, err := a.auditEndpoint(ctx, ep)
		res.add(one)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if res.Failed > 0 || res.Unreachable > 0 {
		a.log.Info("container audit pass", zap.Int("checked", res.Checked), zap.Int("failed", res.Failed),
			zap.Int("removed", res.Removed), zap.Int("skipped", res.Skipped), zap.Int("unreachable", res.Unreachable))
	}
	return res, errors.Join(errs...)
}

// endpoint is one Docker engine and the agents that use it.
type endpoint struct {
	address string
	agents  map[string]postgres.Agent // by id
	ids     []string
}

func byEndpoint(agents []postgres.Agent) []*endpoint {
	var out []*endpoint
	index := map[string]*endpoint{}
	for _, ag := range agents {
		ep := index[ag.DockerEndpoint]
		if ep == nil {
			ep = &endpoint{address: ag.DockerEndpoint, agents: map[string]postgres.Agent{}}
			index[ag.DockerEndpoint] = ep
			out = append(out, ep)
		}
		ep.agents[ag.ID] = ag
		ep.ids = append(ep.ids, ag.ID)
	}
	return out
}

// auditEndpoint checks the sessions on one Docker endpoint against one
// list of its Greenroom containers.
func (a *ContainerAuditor) auditEndpoint(ctx context.Context, ep *endpoint) (AuditResult, error) {
	var res AuditResult
	// Sessions first, containers second: every session judged had its
	// container recorded before the list was taken, so a container made
	// meanwhile can never be the one found missing.
	candidates, err := a.store.ListContainerAuditCandidates(ctx, postgres.ListContainerAuditCandidatesParams{
		AgentIDs: ep.ids, GracePeriod: a.cfg.GracePeriod,
	})
	if err != nil {
		return res, fmt.Errorf("error auditing containers on %s: %w", ep.address, err)
	}
	if len(candidates) == 0 {
		return res, nil
	}
	eng, err := a.engines.For(ep.address)
	var list []docker.Container
	if err == nil {
		list, err = eng.ListByLabels(ctx, map[string]string{domain.LabelManaged: "true"})
	}
	if err != nil {
		res.Unreachable = 1
		return res, fmt.Errorf("error auditing containers on %s; its %d sessions were not checked: %w", ep.address, len(candidates), err)
	}
	res.Endpoints = 1
	listed := make(map[string]docker.Container, len(list))
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
		if err := a.failSession(ctx, eng, ep.agents[c.AgentID], c, verdict, &res); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// failSession fails a session whose container is gone, then removes the
// dead container and asks for the session's replacement in its pool. The
// failure is committed first: a crash in between leaves a dead container
// of a failed session, which the orphan collector removes, never a
// session without a container.
func (a *ContainerAuditor) failSession(ctx context.Context, eng *docker.Engine, agent postgres.Agent,
	c postgres.ContainerAuditCandidate, verdict domain.ContainerVerdict, res *AuditResult) error {
	sc, failed, err := a.store.FailContainerGone(ctx, postgres.FailContainerGoneParams{
		Candidate: c,
		Failure: postgres.Failure{Reason: events.ReasonContainerGone, Observed: verdict.Seen,
			Detail: fmt.Sprintf("container %s of the %s session on agent %s: %s",
				docker.ShortID(c.ContainerID), c.Status, agent.Name, verdict.Seen)},
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
		zap.String("agent", agent.Name), zap.String("container_id", docker.ShortID(c.ContainerID)))
	if rid := sc.RequestID(); rid != "" {
		log = log.With(zap.String("request_id", rid))
	}
	log.Warn("session failed: its container is gone", zap.String("reason", events.ReasonContainerGone), zap.String("seen", verdict.Seen))
	if verdict.Remove {
		if err := eng.Remove(ctx, c.ContainerID); err != nil {
			log.Warn("could not remove the dead container; leaving it to the orphan collector", zap.Error(err))
		} else {
			res.Removed++
			a.metrics.ContainersRemoved.Inc()
		}
	}
	if c.Status == sessions.Staged && c.StagingConfigID.Valid {
		a.pools(c.StagingConfigID.String)
	}
	return nil
}
