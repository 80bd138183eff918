// Package app holds the assigner's one use case: serve a session request.
// It reaches the database only through the Store and ClaimTx of store.go,
// which package adapters implements.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/assigner/domain"
)

// Outcome says how a request was served.
type Outcome string

// Outcomes of RequestSession.
const (
	OutcomeStaged    Outcome = "staged"
	OutcomeOnDemand  Outcome = "on_demand"
	OutcomeFailed    Outcome = "failed"
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeInvalid: the request was invalid and answered
	// invalid_request.
	OutcomeInvalid Outcome = "invalid"
	// OutcomeExpired: the request was older than MaxAge and was not
	// served; answered expired unless its request_id already had a session
	// (a replay of a request served long ago, whose outcome was announced
	// then).
	OutcomeExpired Outcome = "expired"
)

// Result of one request.
type Result struct {
	Outcome   Outcome
	SessionID string
	Miss      domain.MissReason
	// OnDemandReason is what an on-demand session records about why it
	// was not served staged.
	OnDemandReason string
	// Zone is the zone of the staged session claimed, or the zone
	// requested for an on-demand one.
	Zone string
	// Workspace is the workspace requested, when it exists.
	Workspace string
}

// RequestSession serves greenroom.session.requested: in one transaction it
// either claims a staged session (and announces session.assigned) or
// creates an on-demand session row saying why it is on demand (and asks
// for provisioning), recording each incompatible setting as a violation.
// Either way the session gets the limits of the user's effective group. A request_id yields one session
// however often it is delivered. A request older than MaxAge is never
// served (a recreated consumer may replay days of them): it is answered
// greenroom.session.failed, reason expired.
type RequestSession struct {
	Store Store
	Log   *zap.Logger
	// MaxAge is the age past which a request is not served
	// (GREENROOM_REQUEST_MAX_AGE); zero is MaxAgeDefault.
	MaxAge time.Duration
	// Now is the clock requests are aged by; nil is time.Now.
	Now func() time.Time
}

// MaxAgeDefault is RequestSession.MaxAge's default: far longer than any
// caller waits (60 s by default), far shorter than the stream keeps
// requests.
const MaxAgeDefault = 5 * time.Minute

// Handle serves one request made at at (its CloudEvents time, or when the
// stream stored it); a zero at is not aged.
func (h RequestSession) Handle(ctx context.Context, req events.SessionRequested, at time.Time) (Result, error) {
	if field, problem := invalid(req); field != "" {
		return Result{Outcome: OutcomeInvalid}, h.RefuseInvalid(ctx, req.Requester, req.RequestID, field+": "+problem)
	}
	var res Result
	err := h.Store.InTx(ctx, func(ctx context.Context, tx ClaimTx) error {
		var err error
		res, err = h.serve(ctx, tx, req, at)
		return err
	})
	if errors.Is(err, ErrRequestAlreadyServed) {
		// A concurrent delivery of the same request won the race.
		return Result{Outcome: OutcomeDuplicate}, nil
	}
	return res, err
}

// RefuseInvalid answers a request that cannot be served as it is:
// greenroom.session.failed, reason invalid_request, detail saying which
// field is wrong and how; to requester, the requesting service the
// request's subject names ("" for the unqualified subject).
func (h RequestSession) RefuseInvalid(ctx context.Context, requester, requestID, detail string) error {
	return h.Store.InTx(ctx, func(ctx context.Context, tx ClaimTx) error {
		return h.failAs(ctx, tx, "invalid", requester, requestID, events.ReasonInvalidRequest, "invalid request: "+detail)
	})
}

// invalid names the first field of req a request cannot be served without
// (the schema says the same; this holds whoever decoded req).
func invalid(req events.SessionRequested) (field, problem string) {
	for _, f := range []struct{ name, value string }{
		{"data.user", req.User}, {"data.workspace", req.Workspace}, {"data.zone", req.Zone},
	} {
		if f.value == "" {
			return f.name, "missing or empty"
		}
	}
	return "", ""
}

// age is how old a request made at at is, and whether that is past MaxAge.
func (h RequestSession) age(at time.Time) (time.Duration, bool) {
	if at.IsZero() {
		return 0, false
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	age := now().Sub(at)
	return age, age > cmp.Or(h.MaxAge, MaxAgeDefault)
}

func (h RequestSession) serve(ctx context.Context, tx ClaimTx, req events.SessionRequested, at time.Time) (Result, error) {
	rc, err := tx.Load(ctx, req)
	age, expired := h.age(at)
	if expired && rc.ExistingSessionID != "" {
		// A replay of a request served long ago: its outcome was
		// announced then, and nobody waits for it now.
		h.Log.Info("expired request already served; not announced again",
			zap.String("request_id", req.RequestID), zap.String("session_id", rc.ExistingSessionID),
			zap.Duration("age", age))
		return Result{Outcome: OutcomeExpired, SessionID: rc.ExistingSessionID}, nil
	}
	if expired {
		return Result{Outcome: OutcomeExpired}, h.failAs(ctx, tx, "expired", req.Requester, req.RequestID, events.ReasonExpired,
			fmt.Sprintf("the request, made at %s, was %s old when read: past the maximum request age of %s; it was not served",
				at.UTC().Format(time.RFC3339), age.Round(time.Second), cmp.Or(h.MaxAge, MaxAgeDefault)))
	}
	if rc.ExistingSessionID != "" {
		existing, err := tx.Session(ctx, req.RequestID)
		if err != nil {
			return Result{}, err
		}
		return h.repeated(ctx, tx, req, existing)
	}
	var unknown *UnknownReferenceError
	if errors.As(err, &unknown) {
		return Result{Outcome: OutcomeFailed}, h.fail(ctx, tx, req, events.ReasonUnknownReference, unknown.Error())
	} else if err != nil {
		return Result{}, err
	}
	if !rc.Workspace.Enabled {
		return Result{Outcome: OutcomeFailed}, h.fail(ctx, tx, req, events.ReasonWorkspaceDisabled,
			fmt.Sprintf("workspace %q is disabled", rc.Workspace.Name))
	}

	plan := domain.PlanRequest(rc.Workspace, rc.Zone, rc.Zones, rc.Groups, rc.Configs)
	limits := sessions.Limits{TimeLimit: plan.Limits.SessionTimeLimit, KeepaliveExpiration: plan.Limits.KeepaliveExpiration}
	for _, cfg := range plan.StagedCandidates {
		s, err := tx.Claim(ctx, sessions.Claim{StagingConfigID: cfg.ID, UserID: rc.UserID, RequestID: req.RequestID,
			Permissions: plan.Permissions, Limits: limits, Requester: req.Requester})
		if errors.Is(err, sessions.ErrNoneStaged) {
			continue
		} else if err != nil {
			return Result{}, err
		}
		zone := rc.ZoneName(s.ZoneID)
		// The claims tried the candidates in zone search order
		// (plan.OnDemandZones), so the claimed session's zone says which
		// step of the search served the request.
		err = tx.Emit(ctx, events.TypeSessionAssigned, events.TypeSessionAssigned, events.SessionAssigned{
			RequestID: req.RequestID, SessionID: s.ID, User: req.User, UserID: rc.UserID,
			Workspace: rc.Workspace.Name, Zone: zone, StagingConfigID: cfg.ID,
			RequestedZone: rc.Zone.Name, ZoneSearchStep: domain.ZoneSearchStep(plan.OnDemandZones, s.ZoneID),
		}, req.RequestID)
		return Result{Outcome: OutcomeStaged, SessionID: s.ID, Zone: zone, Workspace: rc.Workspace.Name}, err
	}
	if plan.Miss == domain.MissNone {
		plan.Miss = domain.MissNoneStaged
	}

	reason := domain.OnDemandReason(plan)

	sessionID := uuid.Must(uuid.NewV7()).String()
	s, err := tx.CreateOnDemand(ctx, sessions.New{
		ID: sessionID, RequestID: req.RequestID, WorkspaceID: rc.Workspace.ID, ZoneID: rc.Zone.ID,
		UserID: rc.UserID, Origin: sessions.OriginOnDemand, Permissions: plan.Permissions,
		Cores: rc.Cores, MemoryMB: rc.MemoryMB, OnDemandReason: reason, Limits: limits, Requester: req.Requester,
	})
	if err != nil {
		return Result{}, err
	}
	for _, setting := range plan.Violations {
		v := events.StagingViolation{RequestID: req.RequestID, User: req.User, Workspace: rc.Workspace.Name,
			Zone: rc.Zone.Name, Setting: string(setting), SessionID: s.ID}
		if err := tx.RecordViolation(ctx, uuid.NewString(), v, rc.UserID, rc.Workspace.ID); err != nil {
			return Result{}, err
		}
		if err := tx.Emit(ctx, events.TypeStagingViolation, events.TypeStagingViolation, v, req.RequestID); err != nil {
			return Result{}, err
		}
		h.Log.Warn("incompatible setting forces an on-demand session",
			zap.String("request_id", req.RequestID), zap.String("user", req.User),
			zap.String("workspace", rc.Workspace.Name), zap.String("setting", string(setting)))
	}

	zones := make([]string, 0, len(plan.OnDemandZones))
	for _, z := range plan.OnDemandZones {
		zones = append(zones, z.Name)
	}
	err = tx.Emit(ctx, events.TypeProvisionRequested, events.TypeProvisionRequested, events.ProvisionRequested{
		RequestID: req.RequestID, SessionID: s.ID, Workspace: rc.Workspace.Name, Zones: zones,
		Origin: sessions.OriginOnDemand, OnDemandReason: reason, RequestedZone: rc.Zone.Name,
	}, req.RequestID)
	return Result{Outcome: OutcomeOnDemand, SessionID: s.ID, Miss: plan.Miss, OnDemandReason: reason, Zone: rc.Zone.Name,
		Workspace: rc.Workspace.Name}, err
}

// repeated answers a request whose request_id already has a session. The
// same request again gets the outcome repeated, so a caller who asks again
// after the stream's duplicate window still gets an answer (a session still
// in progress announces its outcome by itself; a destroyed one is reported
// as failed, reason destroyed). A request_id reused for another user or
// workspace is refused: it must never hand over someone else's session.
func (h RequestSession) repeated(ctx context.Context, tx ClaimTx, req events.SessionRequested, s sessions.Session) (Result, error) {
	ready, err := tx.Outcome(ctx, s.ID)
	if err != nil {
		return Result{}, err
	}
	if ready.User != req.User || ready.Workspace != req.Workspace {
		return Result{Outcome: OutcomeFailed}, h.fail(ctx, tx, req, events.ReasonRequestConflict,
			fmt.Sprintf("request_id %q was already used for user %q and workspace %q", req.RequestID, ready.User, ready.Workspace))
	}
	if s.Requester != req.Requester {
		// Another requesting service's request: its session is not this
		// one's to hear about.
		return Result{Outcome: OutcomeFailed}, h.fail(ctx, tx, req, events.ReasonRequestConflict,
			fmt.Sprintf("request_id %q was already used by another requesting service", req.RequestID))
	}
	return Result{Outcome: OutcomeDuplicate, SessionID: s.ID}, h.reannounce(ctx, tx, req.Requester, s, ready)
}

// reannounce repeats s's outcome to requester, the one asking again.
func (h RequestSession) reannounce(ctx context.Context, tx ClaimTx, requester string, s sessions.Session, ready events.SessionReady) error {
	readySubject, failedSubject := events.SubjectFor(events.TypeSessionReady, requester), events.SubjectFor(events.TypeSessionFailed, requester)
	switch s.Status {
	case sessions.Running:
		return tx.EmitWithID(ctx, "ready-again-"+s.ID+"-"+bucket(), readySubject, events.TypeSessionReady, ready, ready.RequestID)
	case sessions.Failed:
		reason, detail := events.ParseRecordedFailure(s.FailureReason)
		return tx.EmitWithID(ctx, "failed-again-"+s.ID+"-"+bucket(), failedSubject, events.TypeSessionFailed, events.SessionFailed{
			RequestID: s.RequestID.String, SessionID: s.ID, Reason: reason, Detail: detail,
		}, s.RequestID.String)
	case sessions.Destroying, sessions.Destroyed:
		// Its own announcement is session.destroyed, which answers no
		// request: say that it is gone, and why when it never got ready.
		detail := fmt.Sprintf("session %s was destroyed", s.ID)
		if s.Status == sessions.Destroying {
			detail = fmt.Sprintf("session %s is being destroyed", s.ID)
		}
		if reason, d := events.ParseRecordedFailure(s.FailureReason); s.FailureReason != "" && reason == events.ReasonDestroyed {
			detail = d
		}
		return tx.EmitWithID(ctx, "failed-again-"+s.ID+"-"+bucket(), failedSubject, events.TypeSessionFailed, events.SessionFailed{
			RequestID: s.RequestID.String, SessionID: s.ID, Reason: events.ReasonDestroyed, Detail: detail,
		}, s.RequestID.String)
	}
	return nil
}

func (h RequestSession) fail(ctx context.Context, tx ClaimTx, req events.SessionRequested, reason, detail string) error {
	return h.failAs(ctx, tx, "failed", req.Requester, req.RequestID, reason, detail)
}

// failAs announces a failed request with an event id made of kind, the
// request_id and the minute, so that a redelivery is stored once; on the
// subject of requester's outcomes.
func (h RequestSession) failAs(ctx context.Context, tx ClaimTx, kind, requester, requestID, reason, detail string) error {
	h.Log.Info("session request refused", zap.String("request_id", requestID), zap.String("reason", reason), zap.String("detail", detail))
	return tx.EmitWithID(ctx, kind+"-"+requestID+"-"+bucket(), events.SubjectFor(events.TypeSessionFailed, requester), events.TypeSessionFailed, events.SessionFailed{
		RequestID: requestID, Reason: reason, Detail: detail,
	}, requestID)
}

// bucket is a coarse time slot: repeats of the same announcement within one
// minute share an event id and are stored once.
func bucket() string { return fmt.Sprint(time.Now().Unix() / 60) }
