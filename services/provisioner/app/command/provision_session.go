package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// ProvisionSession makes the container of a session in provisioning
// (greenroom.provision.requested), or, for a workspace with a server
// pool, assigns the session to a server (provision_server.go): place it on
// an agent with capacity,
// create and start the container, record it, wait until it answers, then
// stage it (origin staged) or hand it to its user (on demand, emitting
// session.ready). Any failure fails the session with session.failed and
// leaves no container behind.
//
// It is idempotent: a session that left provisioning is not touched, a
// session placed by an earlier delivery keeps its agent, and a running
// container made for it earlier is reused rather than duplicated.
//
// A session may leave provisioning while its container is being made: a
// staging pool shrinking moves it to destroying, the expiry service fails
// it. Each step after placement is a transition from provisioning, so the
// next one finds it stale and removes the container (abandon): nothing
// outlives such a session.
func (p *Provisioner) ProvisionSession(ctx context.Context, req events.ProvisionRequested) error {
	start := p.now()
	log := p.log.With(zap.String("session_id", req.SessionID), zap.String("origin", req.Origin), zap.String("request_id", req.RequestID))
	targets, onServer, err := p.store.ServerPoolTargets(ctx, req.SessionID, req.Zones)
	if err != nil {
		return fmt.Errorf("provisioning session %s: %w", req.SessionID, err)
	}
	search := domain.OnDemandZoneSearch(req.RequestedZone, req.Zones)
	if onServer {
		return p.provisionOnServer(ctx, req, search, targets, log)
	}
	sc, failure, err := p.store.PlaceSession(ctx, req.SessionID, req.Zones, p.health)
	if errors.Is(err, ErrNotProvisioning) {
		log.Debug("session no longer provisioning; nothing to do", zap.String("status", string(sc.Session.Status)))
		switch {
		case sc.Session.Status == sessions.Failed:
			// Left by an attempt that failed the session and was
			// interrupted before it removed the container.
			reason, _ := events.ParseRecordedFailure(sc.Session.FailureReason)
			p.removeFailedContainers(ctx, sc, Failure{Reason: reason}, log)
		case sc.Session.Status.Terminal():
			p.removeContainers(ctx, sc, log) // left by an attempt that was interrupted
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("placing session %s: %w", req.SessionID, err)
	}
	if failure != nil {
		p.placementFailed(sc, *failure, log)
		return nil
	}
	log = log.With(zap.String("agent", sc.Agent.Name), zap.String("zone", sc.Zone), zap.String("workspace", sc.Workspace.Name))
	// The config service refuses a readiness_path that is not an HTTP
	// path; one stored before it did would send the probe elsewhere
	// ("@host/…" after http://agent:port), so it fails the session.
	if problem := containerconfig.CheckReadinessPath(sc.Workspace.ReadinessPath); problem != "" {
		return p.failProvisioning(ctx, sc, CauseSettings, fmt.Sprintf("workspace %s: readiness_path: %s", sc.Workspace.Name, problem), log)
	}

	eng, err := p.engines.For(sc.Agent.DockerEndpoint)
	if err != nil {
		// Placement passes the agent over from now on, until its engine
		// answers again.
		p.health.Failed(sc.Agent.DockerEndpoint, err)
		return p.failProvisioning(ctx, sc, CauseEngine, fmt.Sprintf("agent %s: %v", sc.Agent.Name, err), log)
	}
	// The user an on-demand container is made for, with their effective
	// group: a database that does not answer now is retried (redelivery),
	// the placement stands.
	var user *SessionUser
	if sc.Session.UserID.Valid {
		u, err := p.store.LoadSessionUser(ctx, sc.Session.UserID.String)
		if err != nil {
			return fmt.Errorf("provisioning session %s: %w", sc.Session.ID, err)
		}
		user = &u
	}
	createStart := p.now()
	c, err := p.startContainer(ctx, eng, sc, user)
	if errors.Is(err, domain.ErrContainerNameInUse) {
		// Another delivery of this request is making the container right
		// now; retry later, when it has either finished or given up.
		return fmt.Errorf("provisioning session %s: %w", sc.Session.ID, err)
	}
	if errors.Is(err, domain.ErrImageNotFound) {
		return p.failProvisioning(ctx, sc, CauseImageMissing, domain.ImageMissingDetail(sc.Workspace.Image, sc.Agent.Name), log)
	}
	if errors.Is(err, errSettings) {
		return p.failProvisioning(ctx, sc, CauseSettings, fmt.Sprintf("workspace %s: %v", sc.Workspace.Name, err), log)
	}
	if err != nil {
		return p.failProvisioning(ctx, sc, CauseEngine, fmt.Sprintf("agent %s: %v", sc.Agent.Name, err), log)
	}
	p.health.Answered(sc.Agent.DockerEndpoint)
	created := p.now().Sub(createStart)
	p.metrics.CreateSeconds.Observe(created.Seconds())
	hostPort := c.HostPorts[sc.Workspace.Port]
	if hostPort == 0 {
		return p.failProvisioning(ctx, sc, CauseEngine, fmt.Sprintf("agent %s: container %s has no published port for %d", sc.Agent.Name, c.ID[:12], sc.Workspace.Port), log)
	}
	host, err := sc.Agent.Address()
	if err != nil {
		return p.failProvisioning(ctx, sc, CauseEngine, fmt.Sprintf("agent %s: %v", sc.Agent.Name, err), log)
	}
	err = p.store.RecordContainer(ctx, &sc, c.ID, hostPort,
		domain.GatewaySessionURL(*p.cfg.GatewayURL, sc.ZoneDomains.AllowOriginDomain, sc.Session.ID), domain.SessionURL(host, hostPort))
	if errors.Is(err, sessions.ErrStale) {
		p.abandon(ctx, sc, err, log)
		return nil
	}
	if err != nil {
		// Retried: the next delivery finds and reuses this container.
		return fmt.Errorf("recording container of session %s: %w", sc.Session.ID, err)
	}

	readyStart := p.now()
	rctx, cancel := context.WithTimeout(ctx, p.cfg.ReadinessTimeout)
	err = p.prober.WaitReady(rctx, domain.ProbeTarget{Host: host, Port: hostPort, Path: sc.Workspace.ReadinessPath}, containerAlive(eng, c.ID))
	cancel()
	if err != nil {
		return p.failProvisioning(ctx, sc, CauseNotReady, fmt.Sprintf("container %s on agent %s did not become ready within %s: %v",
			c.ID[:12], sc.Agent.Name, p.cfg.ReadinessTimeout, err), log)
	}
	ready := p.now().Sub(readyStart)
	p.metrics.ReadinessSeconds.Observe(ready.Seconds())

	if sc.Session.Origin == sessions.OriginStaged {
		p.warmAssignHook(ctx, sc.Workspace, host, hostPort)
		err = p.store.MarkStaged(ctx, &sc, p.now())
	} else {
		if failure := p.firstLaunch(ctx, eng, &sc, sessions.Provisioning, log); failure != "" {
			return p.failProvisioning(ctx, sc, CauseFirstLaunch, failure, log)
		}
		// The zone placement chose says which step of the request's
		// zone search served it.
		err = p.store.MarkRunning(ctx, &sc, search.Served(sc.Zone))
	}
	if errors.Is(err, sessions.ErrStale) {
		p.abandon(ctx, sc, err, log)
		return nil
	}
	if err != nil {
		return fmt.Errorf("completing session %s: %w", sc.Session.ID, err)
	}
	p.metrics.ContainersCreated.WithLabelValues(sc.Session.Origin).Inc()
	p.metrics.ProvisionSeconds.WithLabelValues(sc.Session.Origin).Observe(p.now().Sub(start).Seconds())
	log.Info("session container ready", zap.String("status", string(sc.Session.Status)), zap.String("url", sc.Session.URL),
		zap.Duration("create", created), zap.Duration("readiness", ready))
	p.poolChanged(sc)
	return nil
}

// startContainer returns the running container of sc, creating and
// starting it unless an earlier delivery already did.
func (p *Provisioner) startContainer(ctx context.Context, eng Engine, sc SessionContext, user *SessionUser) (domain.Container, error) {
	existing, err := eng.SessionContainers(ctx, sc.Session.ID)
	if err != nil {
		return domain.Container{}, err
	}
	for _, c := range existing {
		if c.Running {
			return eng.Inspect(ctx, c.ID)
		}
		// Created but never started, or exited: start afresh.
		if err := eng.Remove(ctx, c.ID); err != nil {
			return domain.Container{}, err
		}
	}
	perms, err := sc.Session.Permissions()
	if err != nil {
		return domain.Container{}, fmt.Errorf("permissions of session %s: %w", sc.Session.ID, err)
	}
	address, err := sc.Agent.Address()
	if err != nil {
		return domain.Container{}, err
	}
	c := domain.SessionContainer{
		SessionID: sc.Session.ID, StagingConfigID: sc.StagingConfigID(),
		Workspace: sc.Workspace.Name, Zone: sc.Zone, Agent: sc.Agent.Name,
		Image: sc.Workspace.Image, Port: sc.Workspace.Port,
		Need:              domain.Resources{MilliCores: domain.MilliCores(sc.Session.Cores), MemoryMB: int64(sc.Session.MemoryMB)},
		Permissions:       perms,
		AllowOriginDomain: sc.ZoneDomains.AllowOriginDomain, UpstreamAuthAddress: sc.ZoneDomains.UpstreamAuthAddress,
		InternalAddress: address, ExtraLabels: p.cfg.ExtraLabels,
	}
	if err := applySettings(&c, sc, user); err != nil {
		return domain.Container{}, fmt.Errorf("%w: %v", errSettings, err)
	}
	if sc.Session.Origin == sessions.OriginStaged {
		// The container's own secret for its assign hook, stored before
		// the container exists so that a redelivery reusing the container
		// knows it.
		if sc.Session.AssignSecret == "" {
			secret, err := newSecret()
			if err != nil {
				return domain.Container{}, err
			}
			if err := p.store.SetAssignSecret(ctx, &sc, secret); err != nil {
				return domain.Container{}, err
			}
		}
		c.AssignSecret = sc.Session.AssignSecret.Reveal()
	}
	spec := domain.BuildContainerSpec(c)
	id, err := eng.Create(ctx, spec)
	if err != nil {
		return domain.Container{}, err
	}
	for _, u := range spec.Uploads {
		if err := eng.Upload(ctx, id, u); err != nil {
			return domain.Container{}, err
		}
	}
	if err := eng.Start(ctx, id); err != nil {
		return domain.Container{}, err
	}
	return eng.Inspect(ctx, id)
}

// newSecret is 32 random bytes, hex: a staged container's assign secret.
func newSecret() (sessions.Secret, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making an assign secret: %w", err)
	}
	return sessions.Secret(hex.EncodeToString(b)), nil
}

// errSettings: the workspace's or the group's settings cannot be applied
// (the config service validates them, so this is a value stored before
// that, or a user whose name makes a path unusable).
var errSettings = errors.New("settings cannot be applied")

// containerAlive tells the prober to give up once the container has
// exited or is gone: it will never answer.
func containerAlive(eng Engine, id string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := eng.Inspect(ctx, id)
		switch {
		case errors.Is(err, domain.ErrContainerNotFound):
			return errors.New("container was removed")
		case err != nil:
			return nil // the engine hiccuped; keep probing until the timeout
		case !c.Running:
			return fmt.Errorf("container exited with code %d", c.ExitCode)
		}
		return nil
	}
}

// failProvisioning fails sc (provisioning_failed, with detail kept in its
// failure_reason, where a staging pool reads why it is short) and then
// removes whatever container it has. Failing first means a crash in
// between leaves a container of a failed session, which a redelivery (or
// the orphan collector) removes, never a container of a session still
// provisioning that nobody will take care of. A session that moved on
// meanwhile is handled by abandon.
func (p *Provisioner) failProvisioning(ctx context.Context, sc SessionContext, cause, detail string, log *zap.Logger) error {
	err := p.store.FailCreation(ctx, &sc, Failure{Reason: events.ReasonProvisioningFailed, Detail: detail, Observed: detail})
	if errors.Is(err, sessions.ErrStale) {
		p.abandon(ctx, sc, err, log)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failing session %s (%s): %w", sc.Session.ID, detail, err)
	}
	p.removeFailedContainers(ctx, sc, Failure{Reason: events.ReasonProvisioningFailed}, log)
	p.metrics.Failures.WithLabelValues(events.ReasonProvisioningFailed).Inc()
	p.metrics.ProvisioningFailures.WithLabelValues(sc.Session.Origin, cause).Inc()
	failureLog(log, sc)("session failed", zap.String("reason", events.ReasonProvisioningFailed), zap.String("detail", detail))
	p.poolChanged(sc)
	return nil
}

// failureLog is how a failed creation is logged: a warning for a user's
// session; for a staged one, information only, since its pool warns once
// per cause however often its creations fail (app/staging).
func failureLog(log *zap.Logger, sc SessionContext) func(string, ...zap.Field) {
	if sc.StagingConfigID() != "" {
		return log.Info
	}
	return log.Warn
}
