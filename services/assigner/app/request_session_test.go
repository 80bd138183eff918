package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/assigner/domain"
)

// These tests run RequestSession's own logic over an in-memory ClaimTx;
// the service's component tests run it against PostgreSQL and JetStream.

// fakeStore runs fn on tx, then fails with err as a commit would.
type fakeStore struct {
	tx  *fakeTx
	err error
}

func (s *fakeStore) InTx(ctx context.Context, fn func(ctx context.Context, tx ClaimTx) error) error {
	if err := fn(ctx, s.tx); err != nil {
		return err
	}
	return s.err
}

// emitted is an event a use case wrote to the outbox.
type emitted struct {
	eventType string
	data      any
}

// fakeTx answers Load with rc and loadErr, and Claim with the sessions
// staged for each staging config id; it records what is written.
type fakeTx struct {
	rc      RequestContext
	loadErr error
	staged  map[string]sessions.Session

	claims  []sessions.Claim
	created []sessions.New
	events  []emitted
}

func (t *fakeTx) Load(context.Context, events.SessionRequested) (RequestContext, error) {
	return t.rc, t.loadErr
}

func (t *fakeTx) Session(context.Context, string) (sessions.Session, error) {
	return sessions.Session{}, errors.New("fakeTx: no existing sessions")
}

func (t *fakeTx) Claim(_ context.Context, c sessions.Claim) (sessions.Session, error) {
	t.claims = append(t.claims, c)
	s, ok := t.staged[c.StagingConfigID]
	if !ok {
		return sessions.Session{}, sessions.ErrNoneStaged
	}
	return s, nil
}

func (t *fakeTx) CreateOnDemand(_ context.Context, n sessions.New) (sessions.Session, error) {
	t.created = append(t.created, n)
	return sessions.Session{ID: n.ID, ZoneID: n.ZoneID}, nil
}

func (t *fakeTx) RecordViolation(context.Context, string, events.StagingViolation, string, string) error {
	return nil
}

func (t *fakeTx) Emit(_ context.Context, _, eventType string, data any, _ string) error {
	t.events = append(t.events, emitted{eventType, data})
	return nil
}

func (t *fakeTx) EmitWithID(ctx context.Context, _, subject, eventType string, data any, requestID string) error {
	return t.Emit(ctx, subject, eventType, data, requestID)
}

func (t *fakeTx) Outcome(context.Context, string) (events.SessionReady, error) {
	return events.SessionReady{}, errors.New("fakeTx: no outcomes")
}

func (t *fakeTx) eventTypes() []string {
	var types []string
	for _, e := range t.events {
		types = append(types, e.eventType)
	}
	return types
}

var (
	zoneEU = domain.Zone{ID: "z-eu", Name: "eu", SearchAlternateZones: true, Priority: 1}
	zoneUS = domain.Zone{ID: "z-us", Name: "us", Priority: 2}
	ws     = domain.Workspace{ID: "w-1", Name: "firefox", Enabled: true}
	req    = events.SessionRequested{RequestID: "r-1", User: "alice", Workspace: "firefox", Zone: "eu"}
)

// planned is a request context in which alice may be served from staging
// configs in eu and then us.
func planned() RequestContext {
	return RequestContext{UserID: "u-1", Workspace: ws, Zone: zoneEU, Zones: []domain.Zone{zoneUS, zoneEU},
		Configs: []domain.StagingConfig{
			{ID: "sc-us", ZoneID: zoneUS.ID, WorkspaceID: ws.ID},
			{ID: "sc-eu", ZoneID: zoneEU.ID, WorkspaceID: ws.ID},
		}}
}

func handle(t *testing.T, tx *fakeTx, commitErr error) Result {
	t.Helper()
	uc := RequestSession{Store: &fakeStore{tx: tx, err: commitErr}, Log: zap.NewNop()}
	res, err := uc.Handle(context.Background(), req, time.Time{})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return res
}

func TestRequestForUnknownWorkspaceFailsWithoutClaiming(t *testing.T) {
	tx := &fakeTx{rc: RequestContext{UserID: "u-1"}, loadErr: &UnknownReferenceError{Field: "workspace", Name: "firefox"}}
	res := handle(t, tx, nil)
	if res.Outcome != OutcomeFailed || res.SessionID != "" {
		t.Errorf("result = %+v, want failed without a session", res)
	}
	if len(tx.claims) != 0 || len(tx.created) != 0 {
		t.Errorf("claims %v, sessions created %v: want none", tx.claims, tx.created)
	}
	want := []emitted{{events.TypeSessionFailed, events.SessionFailed{RequestID: req.RequestID,
		Reason: events.ReasonUnknownReference, Detail: `unknown workspace "firefox"`}}}
	if fmt.Sprint(tx.events) != fmt.Sprint(want) {
		t.Errorf("events = %+v, want %+v", tx.events, want)
	}
}

func TestStagedClaimTriesZonesInSearchOrderAndAnnouncesTheClaimedZoneAndItsStep(t *testing.T) {
	tx := &fakeTx{rc: planned(), staged: map[string]sessions.Session{"sc-us": {ID: "s-us", ZoneID: zoneUS.ID}}}
	res := handle(t, tx, nil)
	if res.Outcome != OutcomeStaged || res.SessionID != "s-us" || res.Zone != "us" {
		t.Errorf("result = %+v, want staged s-us in us", res)
	}
	var tried []string
	for _, c := range tx.claims {
		tried = append(tried, c.StagingConfigID)
	}
	if !slices.Equal(tried, []string{"sc-eu", "sc-us"}) {
		t.Errorf("claimed from %v, want the requested zone's config first: [sc-eu sc-us]", tried)
	}
	if len(tx.created) != 0 {
		t.Errorf("sessions created %v: a claimed request creates none", tx.created)
	}
	want := []emitted{{events.TypeSessionAssigned, events.SessionAssigned{RequestID: req.RequestID, SessionID: "s-us",
		User: "alice", UserID: "u-1", Workspace: "firefox", Zone: "us", StagingConfigID: "sc-us",
		RequestedZone: "eu", ZoneSearchStep: 2}}}
	if fmt.Sprint(tx.events) != fmt.Sprint(want) {
		t.Errorf("events = %+v, want %+v", tx.events, want)
	}
}

func TestRequestGoesOnDemandWhenEveryClaimFindsNoneStaged(t *testing.T) {
	tx := &fakeTx{rc: planned()}
	res := handle(t, tx, nil)
	if res.Outcome != OutcomeOnDemand || res.Miss != domain.MissNoneStaged || res.OnDemandReason != events.OnDemandNoneStaged {
		t.Errorf("result = %+v, want on demand, miss and reason none_staged", res)
	}
	if len(tx.claims) != 2 {
		t.Errorf("claims = %v, want one per staging config", tx.claims)
	}
	if len(tx.created) != 1 || tx.created[0].OnDemandReason != events.OnDemandNoneStaged ||
		tx.created[0].Origin != sessions.OriginOnDemand || tx.created[0].ZoneID != zoneEU.ID {
		t.Fatalf("sessions created = %+v, want one on-demand session in eu, reason none_staged", tx.created)
	}
	if got := tx.eventTypes(); !slices.Equal(got, []string{events.TypeProvisionRequested}) {
		t.Fatalf("events = %v, want only %s", got, events.TypeProvisionRequested)
	}
	p := tx.events[0].data.(events.ProvisionRequested)
	if p.SessionID != tx.created[0].ID || !slices.Equal(p.Zones, []string{"eu", "us"}) || p.RequestedZone != "eu" {
		t.Errorf("provision request = %+v, want the created session in zones [eu us], requested in eu", p)
	}
}

func TestConcurrentlyServedRequestIsDuplicate(t *testing.T) {
	tx := &fakeTx{rc: planned()}
	res := handle(t, tx, fmt.Errorf("committing: %w", ErrRequestAlreadyServed))
	if res != (Result{Outcome: OutcomeDuplicate}) {
		t.Errorf("result = %+v, want a bare duplicate", res)
	}
}

// handleAt serves req made at at, judged by a clock that reads now.
func handleAt(t *testing.T, tx *fakeTx, r events.SessionRequested, at, now time.Time) Result {
	t.Helper()
	uc := RequestSession{Store: &fakeStore{tx: tx}, Log: zap.NewNop(), MaxAge: 5 * time.Minute,
		Now: func() time.Time { return now }}
	res, err := uc.Handle(context.Background(), r, at)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return res
}

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRequestOlderThanMaxAgeIsFailedExpiredWithoutClaiming(t *testing.T) {
	tx := &fakeTx{rc: planned(), staged: map[string]sessions.Session{"sc-eu": {ID: "s-eu", ZoneID: zoneEU.ID}}}
	res := handleAt(t, tx, req, now.Add(-6*time.Minute), now)
	if res.Outcome != OutcomeExpired || res.SessionID != "" {
		t.Errorf("result = %+v, want expired without a session", res)
	}
	if len(tx.claims) != 0 || len(tx.created) != 0 {
		t.Errorf("claims %v, sessions created %v: an expired request is never served", tx.claims, tx.created)
	}
	if len(tx.events) != 1 {
		t.Fatalf("events = %+v, want one session.failed", tx.events)
	}
	f, _ := tx.events[0].data.(events.SessionFailed)
	if tx.events[0].eventType != events.TypeSessionFailed || f.Reason != events.ReasonExpired || f.RequestID != req.RequestID ||
		!strings.Contains(f.Detail, "6m0s old") || !strings.Contains(f.Detail, "5m0s") {
		t.Errorf("event = %+v", tx.events[0])
	}
}

func TestRequestWithinMaxAgeIsServed(t *testing.T) {
	for name, at := range map[string]time.Time{
		"younger":                  now.Add(-4 * time.Minute),
		"from a clock ahead":       now.Add(time.Minute),
		"of unknown age (no time)": {},
	} {
		t.Run(name, func(t *testing.T) {
			tx := &fakeTx{rc: planned(), staged: map[string]sessions.Session{"sc-eu": {ID: "s-eu", ZoneID: zoneEU.ID}}}
			if res := handleAt(t, tx, req, at, now); res.Outcome != OutcomeStaged {
				t.Errorf("result = %+v, want staged", res)
			}
		})
	}
}

// A recreated consumer replays requests served long ago: their outcome was
// announced then; they are neither served again nor announced again.
func TestExpiredReplayOfAServedRequestIsNotAnnouncedAgain(t *testing.T) {
	rc := planned()
	rc.ExistingSessionID = "s-old"
	tx := &fakeTx{rc: rc}
	res := handleAt(t, tx, req, now.Add(-30*24*time.Hour), now)
	if res.Outcome != OutcomeExpired || res.SessionID != "s-old" {
		t.Errorf("result = %+v, want expired, naming the existing session", res)
	}
	if len(tx.events) != 0 || len(tx.claims) != 0 || len(tx.created) != 0 {
		t.Errorf("events %v, claims %v, created %v: want none", tx.events, tx.claims, tx.created)
	}
}

func TestRequestWithoutAUserIsRefusedAsInvalid(t *testing.T) {
	tx := &fakeTx{rc: planned()}
	r := req
	r.User = ""
	res := handleAt(t, tx, r, now, now)
	if res.Outcome != OutcomeInvalid {
		t.Errorf("result = %+v, want invalid", res)
	}
	want := []emitted{{events.TypeSessionFailed, events.SessionFailed{RequestID: req.RequestID,
		Reason: events.ReasonInvalidRequest, Detail: "invalid request: data.user: missing or empty"}}}
	if fmt.Sprint(tx.events) != fmt.Sprint(want) {
		t.Errorf("events = %+v, want %+v", tx.events, want)
	}
}
