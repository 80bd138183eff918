package command

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// AssignSession hands a claimed staged session to its user
// (greenroom.session.assigned): it runs the workspace's assign command,
// if it has one, inside the already running container, then moves the
// session to running and emits session.ready. A failing command fails the
// session (assign_failed) and removes its container; a container that
// no longer exists or no longer runs fails it as container_gone. A session
// no longer assigning (redelivery, or destroyed meanwhile) is left alone.
// Once the assign step has run (the hook, the exec, or nothing when the
// workspace has neither), session.assign_ran records how it went, in the
// transaction that moves the session to running or fails it.
func (p *Provisioner) AssignSession(ctx context.Context, ev events.SessionAssigned) error {
	// The claim took the session out of its pool: its replacement is
	// made once the pool's claims pause (domain.ClaimBurst), never before
	// this assign is done: creating and starting a container loads the
	// engine and the CPU the hand-off waits on.
	defer p.claimed(ev.StagingConfigID)

	log := p.log.With(zap.String("session_id", ev.SessionID), zap.String("request_id", ev.RequestID), zap.String("user", ev.User))
	start := p.now()
	sc, err := p.store.LoadSession(ctx, ev.SessionID)
	loaded := p.now().Sub(start)
	if err != nil {
		return fmt.Errorf("loading assigned session %s: %w", ev.SessionID, err)
	}
	if sc.Session.Status != sessions.Assigning {
		log.Debug("session no longer assigning; nothing to do", zap.String("status", string(sc.Session.Status)))
		return nil
	}
	if sc.Agent == nil || sc.Session.ContainerID == "" {
		return p.failAssign(ctx, sc, assignFailed("the staged session has no container"), log)
	}
	if sc.Username == "" {
		sc.Username = ev.User
	}
	userID := sc.Session.UserID.String
	if userID == "" {
		userID = ev.UserID
	}
	execCfg, err := domain.ParseExecConfig(sc.Workspace.DockerExecConfig)
	if err != nil {
		return p.failAssign(ctx, sc, assignFailed(fmt.Sprintf("workspace %s: %v", sc.Workspace.Name, err)), log)
	}
	tokens := domain.Tokens{Username: sc.Username, UserID: userID, Workspace: sc.Workspace.Name, SessionID: sc.Session.ID}
	hook, hooked, errs := containerconfig.ParseAssignHook(sc.Workspace.AssignHook)
	if len(errs) > 0 {
		return p.failAssign(ctx, sc, assignFailed(fmt.Sprintf("workspace %s: assign_hook: %v", sc.Workspace.Name, errs)), log)
	}
	// From here on the assign step runs: every way out says how it went.
	ran := events.AssignRan{SessionID: sc.Session.ID, RequestID: cmp.Or(ev.RequestID, sc.RequestID()), User: sc.Username,
		Method: events.AssignMethodNone, OK: true}
	failed := func(f Failure, took time.Duration) Failure {
		r := ran
		r.OK, r.Detail, r.DurationMS = false, domain.AssignDetail(f.Detail), int(took.Milliseconds())
		f.AssignRan = &r
		return f
	}
	// A container made before Greenroom gave containers a secret (before
	// migration 00005) cannot check the hook's request: it gets the exec,
	// until its pool's roll replaces it.
	if hooked && sc.Session.AssignSecret != "" {
		// The hook replaces the exec: one HTTP request on a kept-alive
		// connection instead of a process spawned through the engine.
		ran.Method = events.AssignMethodHook
		took, answer, failure := p.callAssignHook(ctx, sc, hook, execCfg, tokens)
		if failure != nil {
			return p.failAssign(ctx, sc, failed(*failure, took), log)
		}
		ran.Detail, ran.DurationMS = domain.AssignDetail(answer), int(took.Milliseconds())
		log = log.With(zap.Duration("assign_hook", took))
	} else if spec, ok := domain.RenderAssign(execCfg, tokens); ok {
		ran.Method = events.AssignMethodExec
		eng, err := p.engines.For(sc.Agent.DockerEndpoint)
		if err != nil {
			return p.failAssign(ctx, sc, failed(assignFailed(fmt.Sprintf("agent %s: %v", sc.Agent.Name, err)), 0), log)
		}
		ectx, cancel := context.WithTimeout(ctx, p.cfg.AssignTimeout)
		start := p.now()
		res, err := eng.Exec(ectx, sc.Session.ContainerID, spec)
		took := p.now().Sub(start)
		cancel()
		p.metrics.AssignExecSeconds.Observe(took.Seconds())
		if seen, gone := containerGone(ctx, eng, sc.Session.ContainerID, err); gone {
			return p.failAssign(ctx, sc, failed(Failure{Reason: events.ReasonContainerGone, Observed: seen,
				Detail: fmt.Sprintf("container %s of the assigning session on agent %s: %s; the assign command could not run",
					domain.ShortID(sc.Session.ContainerID), sc.Agent.Name, seen)}, took), log)
		}
		if err != nil {
			return p.failAssign(ctx, sc, failed(assignFailed(fmt.Sprintf("assign command %q: %v", spec.Cmd, err)), took), log)
		}
		if res.ExitCode != 0 {
			return p.failAssign(ctx, sc, failed(assignFailed(fmt.Sprintf("assign command %q exited with code %d: %s",
				spec.Cmd, res.ExitCode, trimOutput(res.Output))), took), log)
		}
		ran.Detail, ran.DurationMS = domain.AssignDetail(res.Output), int(took.Milliseconds())
		log = log.With(zap.Duration("assign_exec", took))
	}
	// The assign step succeeded: a failure from here on (first_launch)
	// is the session's, announced with the step's success.
	if sc.Agent != nil {
		if eng, err := p.engines.For(sc.Agent.DockerEndpoint); err != nil {
			f := assignFailed(fmt.Sprintf("agent %s: %v", sc.Agent.Name, err))
			f.AssignRan = &ran
			return p.failAssign(ctx, sc, f, log)
		} else if failure := p.firstLaunch(ctx, eng, &sc, sessions.Assigning, log); failure != "" {
			f := assignFailed(failure)
			f.AssignRan = &ran
			return p.failAssign(ctx, sc, f, log)
		}
	}
	committing := p.now()
	err = p.store.CompleteAssign(ctx, &sc, domain.ZoneServed{RequestedZone: ev.RequestedZone, Step: ev.ZoneSearchStep}, ran)
	if errors.Is(err, sessions.ErrStale) {
		log.Info("session left assigning while its assign command ran", zap.Error(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("completing assignment of session %s: %w", sc.Session.ID, err)
	}
	// The hand-off's own split (the bench reads it): loading the session,
	// the hook or exec above, and committing running with session.ready.
	end := p.now()
	log.Info("staged session assigned", zap.String("url", sc.Session.URL), zap.Duration("load", loaded),
		zap.Duration("commit", end.Sub(committing)), zap.Duration("handled", end.Sub(start)))
	return nil
}

func assignFailed(detail string) Failure {
	return Failure{Reason: events.ReasonAssignFailed, Detail: detail}
}

// containerGone tells, from the error of the assign exec, whether the
// container no longer exists or no longer runs, and what was seen. Only
// then is it worth an inspect, for the exit code.
func containerGone(ctx context.Context, eng Engine, id string, execErr error) (string, bool) {
	switch {
	case errors.Is(execErr, domain.ErrContainerNotFound):
		v := domain.JudgeContainer(domain.ContainerSighting{})
		return v.Seen, v.Gone
	case errors.Is(execErr, domain.ErrContainerNotRunning):
		seen, gone, err := judgeContainerOf(ctx, eng, id)
		if err != nil {
			return "not running", true
		}
		return seen, gone
	}
	return "", false
}

// judgeContainerOf inspects container id and says, as the container audit
// would, whether it is gone (missing, or no longer running) and what was
// seen; err when the engine did not answer.
func judgeContainerOf(ctx context.Context, eng Engine, id string) (string, bool, error) {
	var sighting domain.ContainerSighting
	c, err := eng.Inspect(ctx, id)
	switch {
	case errors.Is(err, domain.ErrContainerNotFound):
	case err != nil:
		return "", false, err
	default:
		sighting = domain.ContainerSighting{Listed: true, State: c.State, ExitCode: c.ExitCode}
	}
	v := domain.JudgeContainer(sighting)
	return v.Seen, v.Gone, nil
}

// failAssign fails a session whose assignment failed (f.Reason is
// assign_failed or container_gone), announcing session.failed to the
// requester, and removes its container (session.destroyed, cause failed).
func (p *Provisioner) failAssign(ctx context.Context, sc SessionContext, f Failure, log *zap.Logger) error {
	err := p.store.FailSession(ctx, &sc, sessions.Assigning, f)
	if errors.Is(err, sessions.ErrStale) {
		p.abandon(ctx, sc, err, log)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failing session %s (%s): %w", sc.Session.ID, f.Detail, err)
	}
	p.removeFailedContainers(ctx, sc, f, log)
	p.metrics.SessionFailed(f.Reason, sessions.Assigning)
	log.Warn("session failed", zap.String("reason", f.Reason), zap.String("detail", f.Detail))
	return nil
}

// firstLaunch runs the workspace's first_launch command once for a session
// that has just become its user's (in status `in`: assigning for a staged
// one, provisioning for an on-demand one), and records that it ran, so a
// redelivery never runs it again. It returns why it failed, "" when it ran
// or there is none to run.
func (p *Provisioner) firstLaunch(ctx context.Context, eng Engine, sc *SessionContext, in sessions.Status, log *zap.Logger) string {
	if sc.Session.FirstLaunchAt.Valid {
		return ""
	}
	execCfg, err := domain.ParseExecConfig(sc.Workspace.DockerExecConfig)
	if err != nil {
		return fmt.Sprintf("workspace %s: %v", sc.Workspace.Name, err)
	}
	spec, ok := domain.RenderFirstLaunch(execCfg, domain.Tokens{Username: sc.Username, UserID: sc.Session.UserID.String,
		Workspace: sc.Workspace.Name, SessionID: sc.Session.ID})
	if !ok {
		return ""
	}
	ectx, cancel := context.WithTimeout(ctx, p.cfg.AssignTimeout)
	start := p.now()
	res, err := eng.Exec(ectx, sc.Session.ContainerID, spec)
	cancel()
	switch {
	case err != nil:
		return fmt.Sprintf("first_launch command %q: %v", spec.Cmd, err)
	case res.ExitCode != 0:
		return fmt.Sprintf("first_launch command %q exited with code %d: %s", spec.Cmd, res.ExitCode, trimOutput(res.Output))
	}
	switch err := p.store.MarkFirstLaunched(ctx, sc, in, p.now()); {
	case errors.Is(err, sessions.ErrStale):
		// The session moved on (destroyed meanwhile): what comes next
		// finds it stale and says so.
		log.Info("first_launch ran but the session moved on", zap.Error(err))
	case err != nil:
		// It ran; only its record is missing, so a redelivery would run
		// it again.
		log.Warn("first_launch ran but could not be recorded", zap.Error(err))
	}
	log.Info("first_launch ran", zap.Duration("took", p.now().Sub(start)))
	return ""
}
