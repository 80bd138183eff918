package command_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/probe"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/ports/bus"
)

// A session destroyed before it was ready has a requester waiting for an
// outcome that session.destroyed is not: the destroy fails the request
// (session.failed, reason destroyed, carrying its request_id), so the
// waiter is answered instead of timing out. Sessions with nobody waiting —
// staged ones being made, running ones whose requester already got
// session.ready — only get session.destroyed. None of these sessions has
// a container, so no Docker engine is needed: the provisioner runs as
// production runs it, behind its bus consumer, with its outbox relayed to
// an embedded JetStream.
func TestDestroyingASessionBeforeItIsReadyFailsItsRequest(t *testing.T) {
	e := newDestroyEnv(t)
	onDemand := e.onDemand("req-provisioning")
	assigning := e.claimed("req-assigning")
	stagedBeingMade := e.stagedProvisioning()
	running := e.onDemand("req-running")
	e.move(running, sessions.Provisioning, sessions.Running)

	for _, id := range []string{onDemand, assigning, stagedBeingMade, running} {
		e.destroy(id, "api")
	}

	for _, tc := range []struct {
		name, session, requestID string
	}{
		{"provisioning on demand", onDemand, "req-provisioning"},
		{"assigning a staged session", assigning, "req-assigning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.rec.Wait(t, events.TypeSessionFailed, tc.requestID, 10*time.Second)
			if err := e.deps.Validator.Validate(got.Raw); err != nil {
				t.Errorf("session.failed does not match its schema: %v", err)
			}
			var f events.SessionFailed
			if err := got.Event.DecodeData(&f); err != nil {
				t.Fatal(err)
			}
			if f != (events.SessionFailed{
				RequestID: tc.requestID, SessionID: tc.session, Reason: events.ReasonDestroyed,
				Detail: "destroyed before it was ready: api",
			}) {
				t.Errorf("session.failed data = %+v", f)
			}
			if got.Event.Source != "greenroom/provisioner" {
				t.Errorf("source %q", got.Event.Source)
			}
			e.waitDestroyed(t, tc.session)
			if s := e.session(tc.session); s.FailureReason != "destroyed: destroyed before it was ready: api" {
				t.Errorf("failure_reason %q, want the failure recorded for a repeated request", s.FailureReason)
			}
		})
	}
	for _, tc := range []struct{ name, session string }{
		{"staged session being made", stagedBeingMade},
		{"running session", running},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.waitDestroyed(t, tc.session)
			if s := e.session(tc.session); s.FailureReason != "" {
				t.Errorf("failure_reason %q, want none", s.FailureReason)
			}
		})
	}
	// Every session.destroyed is relayed after the session.failed written
	// before it, so by now every session.failed there will be is recorded.
	e.waitRelayed(t)
	if n := len(e.rec.Find(events.TypeSessionFailed, "")); n != 2 {
		t.Errorf("%d session.failed published, want 2 (the running and the staged session have nobody waiting)", n)
	}

	// A redelivered destroy finds the session destroyed: no second outcome.
	seq := e.destroy(onDemand, "api")
	e.waitHandled(t, seq)
	e.waitRelayed(t)
	if n := len(e.rec.Find(events.TypeSessionFailed, "req-provisioning")); n != 1 {
		t.Errorf("%d session.failed for req-provisioning after a redelivered destroy, want 1", n)
	}
}

// destroyEnv is a provisioner (consumer, use cases, outbox relay) over a
// fresh database and JetStream server, with one zone, workspace, user and
// staging config.
type destroyEnv struct {
	t                                       *testing.T
	ctx                                     context.Context
	db                                      *sqlx.DB
	deps                                    *app.Deps
	rec                                     *apptest.Recorder
	zoneID, workspaceID, userID, stagingCfg string
}

func newDestroyEnv(t *testing.T) *destroyEnv {
	env := apptest.New(t)
	deps := env.Deps(t, "provisioner")
	e := &destroyEnv{
		t: t, ctx: context.Background(), db: env.DB, deps: deps, rec: apptest.NewRecorder(t, deps.NC),
		zoneID: uuid.NewString(), workspaceID: uuid.NewString(), userID: uuid.NewString(), stagingCfg: uuid.NewString(),
	}
	env.DB.MustExec(`INSERT INTO zones (id, name, allow_origin_domain, upstream_auth_address) VALUES ($1, 'zone-a', 'example.test', 'example.test')`, e.zoneID)
	env.DB.MustExec(`INSERT INTO workspaces (id, name, image) VALUES ($1, 'demo', 'greenroom/demo-workspace:latest')`, e.workspaceID)
	env.DB.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'alice')`, e.userID)
	env.DB.MustExec(`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions) VALUES ($1, $2, $3, 1)`,
		e.stagingCfg, e.zoneID, e.workspaceID)

	store := postgres.New(deps.DB, deps.Source())
	engines := docker.NewEngines()
	t.Cleanup(engines.Close)
	prov := command.New(command.Config{}, store, engines.AsCommandEngines(), probe.New(probe.Config{}),
		command.NewMetrics(prometheus.NewRegistry()), deps.Log, command.Pools{})
	consumer, err := bus.NewConsumer(deps.JS, deps.Validator, deps.Log, bus.Config{Source: deps.Source()}, prov, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, consumer)
	apptest.Start(t, deps.NewRelay())
	return e
}

func (e *destroyEnv) insert(n sessions.New) string {
	e.t.Helper()
	n.ID, n.WorkspaceID, n.ZoneID = uuid.NewString(), e.workspaceID, e.zoneID
	s, err := sessions.Insert(e.ctx, e.db, n)
	if err != nil {
		e.t.Fatal(err)
	}
	return s.ID
}

// onDemand is alice's on-demand session for requestID, in provisioning
// and not yet placed.
func (e *destroyEnv) onDemand(requestID string) string {
	return e.insert(sessions.New{RequestID: requestID, UserID: e.userID, Origin: sessions.OriginOnDemand})
}

// stagedProvisioning is a staged session being made for the pool.
func (e *destroyEnv) stagedProvisioning() string {
	return e.insert(sessions.New{StagingConfigID: e.stagingCfg, Origin: sessions.OriginStaged})
}

// claimed is a staged session the assigner claimed for alice under
// requestID: assigning, its assign command not yet run.
func (e *destroyEnv) claimed(requestID string) string {
	e.t.Helper()
	id := e.stagedProvisioning()
	e.move(id, sessions.Provisioning, sessions.Staged)
	s, err := sessions.ClaimStaged(e.ctx, e.db, e.stagingCfg, e.userID, requestID, events.Permissions{})
	if err != nil || s.ID != id {
		e.t.Fatalf("claim: %s, %v; want %s", s.ID, err, id)
	}
	return id
}

func (e *destroyEnv) move(id string, from, to sessions.Status) {
	e.t.Helper()
	if _, err := sessions.Transition(e.ctx, e.db, id, from, to, sessions.Change{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *destroyEnv) session(id string) sessions.Session {
	e.t.Helper()
	s, err := sessions.Get(e.ctx, e.db, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// destroy publishes greenroom.session.destroy for id, as the config
// service's DELETE does, and returns its stream sequence.
func (e *destroyEnv) destroy(id, reason string) uint64 {
	e.t.Helper()
	ev, err := events.New("greenroom/test", events.TypeSessionDestroy, events.SessionDestroy{SessionID: id, Reason: reason})
	if err != nil {
		e.t.Fatal(err)
	}
	ack, err := e.deps.Publisher.Publish(e.ctx, events.TypeSessionDestroy, ev, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// waitDestroyed waits for session id's session.destroyed.
func (e *destroyEnv) waitDestroyed(t *testing.T, id string) {
	t.Helper()
	apptest.Eventually(t, 10*time.Second, "session.destroyed of "+id, func() bool {
		for _, r := range e.rec.Find(events.TypeSessionDestroyed, "") {
			var d events.SessionDestroyed
			if r.Event.DecodeData(&d) == nil && d.SessionID == id {
				return true
			}
		}
		return false
	})
	if s := e.session(id); s.Status != sessions.Destroyed {
		t.Errorf("session %s is %s, want destroyed", id, s.Status)
	}
}

// waitHandled waits until the provisioner's consumer has acknowledged
// every message up to stream sequence seq.
func (e *destroyEnv) waitHandled(t *testing.T, seq uint64) {
	t.Helper()
	cons, err := e.deps.JS.Consumer(e.ctx, libbus.StreamName, bus.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 10*time.Second, "the provisioner to handle the destroy", func() bool {
		info, err := cons.Info(e.ctx)
		return err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0
	})
}

// waitRelayed waits until the outbox is empty and what it held has
// reached the recorder: each relayed event is in the stream, and the
// recorder saw the stream's last message.
func (e *destroyEnv) waitRelayed(t *testing.T) {
	t.Helper()
	apptest.Eventually(t, 10*time.Second, "the outbox to drain", func() bool {
		var n int
		return e.db.Get(&n, `SELECT count(*) FROM outbox`) == nil && n == 0
	})
	stream, err := e.deps.JS.Stream(e.ctx, libbus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetMsg(e.ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	lastID := last.Header.Get(jetstream.MsgIDHeader)
	apptest.Eventually(t, 10*time.Second, "the recorder to see the stream's last message", func() bool {
		for _, r := range e.rec.All() {
			if r.Event.ID == lastID {
				return true
			}
		}
		return false
	})
}
