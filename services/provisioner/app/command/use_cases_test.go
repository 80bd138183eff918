package command_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// A container that cannot be made fails its session at once, with why,
// leaves nothing behind on the agent, and has the pool make another.
func TestProvisionFailsTheSessionWhenTheEngineCannotCreateTheContainer(t *testing.T) {
	for _, tc := range []struct {
		name                string
		createErr, startErr error
		// removed is what the removal of the failed session's
		// containers was announced with: nothing when Docker made none.
		removed []string
	}{
		{"create fails", errors.New("no space left on device"), nil, nil},
		{"start fails", nil, errors.New("no space left on device"), []string{events.ReasonProvisioningFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWorld(t, newSession("pool-1"))
			w.engine.CreateErr, w.engine.StartErr = tc.createErr, tc.startErr

			if err := w.provision(t); err != nil {
				t.Fatalf("ProvisionSession: %v, want the session failed rather than the event retried", err)
			}
			const detail = "agent agent-1: no space left on device"
			want := []command.Failure{{Reason: events.ReasonProvisioningFailed, Detail: detail, Observed: detail}}
			if !slices.Equal(w.store.failures, want) {
				t.Errorf("failures %+v, want %+v", w.store.failures, want)
			}
			if st := w.store.status(); st != sessions.Failed {
				t.Errorf("session is %s, want failed", st)
			}
			if slices.Contains(w.store.calls, "MarkStaged") {
				t.Errorf("calls %v: a session whose container was never made was staged", w.store.calls)
			}
			if left := w.containers(); len(left) != 0 {
				t.Errorf("containers %v left on the agent", left)
			}
			if !slices.Equal(w.store.removedFailed, tc.removed) {
				t.Errorf("container removals announced with reasons %v, want %v", w.store.removedFailed, tc.removed)
			}
			if got := w.refilled(); !slices.Equal(got, []string{"pool-1"}) {
				t.Errorf("pools refilled %v, want pool-1", got)
			}
		})
	}
}

// Images are never pulled: a missing one fails the session saying so,
// which is what makes its pool wait long before trying again.
func TestProvisionFailsAsImageMissingWhenTheAgentLacksTheImage(t *testing.T) {
	w := newFakeWorld(t, newSession("pool-1"))
	w.engine.CreateErr = fmt.Errorf("%w: img", domain.ErrImageNotFound)

	if err := w.provision(t); err != nil {
		t.Fatal(err)
	}
	want := domain.ImageMissingDetail("greenroom/demo-workspace:latest", "agent-1")
	if len(w.store.failures) != 1 || w.store.failures[0].Detail != want {
		t.Errorf("failures %+v, want one saying %q", w.store.failures, want)
	}
}

// A name in use means another delivery of the same request is making the
// container right now: the event is retried, the session is not failed.
func TestProvisionRetriesWhileAnotherDeliveryMakesTheContainer(t *testing.T) {
	w := newFakeWorld(t, newSession(""))
	w.engine.CreateErr = fmt.Errorf("%w: greenroom-session-1", domain.ErrContainerNameInUse)

	if err := w.provision(t); !errors.Is(err, domain.ErrContainerNameInUse) {
		t.Errorf("ProvisionSession: %v, want the name in use returned for a retry", err)
	}
	if st := w.store.status(); st != sessions.Provisioning || len(w.store.failures) != 0 {
		t.Errorf("session is %s with failures %+v, want it provisioning still", st, w.store.failures)
	}
}

// An on-demand session is made, recorded, probed at its published port
// and readiness path, and only then handed to its user (running).
func TestProvisionHandsAnOnDemandSessionToItsUserOnceItsContainerAnswers(t *testing.T) {
	sc := newSession("")
	sc.Session.UserID = sql.NullString{String: "user-1", Valid: true}
	w := newFakeWorld(t, sc)

	if err := w.provision(t); err != nil {
		t.Fatal(err)
	}
	if want := []string{"PlaceSession", "RecordContainer", "MarkRunning"}; !slices.Equal(w.store.calls, want) {
		t.Errorf("calls %v, want %v", w.store.calls, want)
	}
	list := w.containers()
	if len(list) != 1 {
		t.Fatalf("containers %v, want one", list)
	}
	c := list[0]
	got := w.store.sc.Session
	host, _ := containerconfig.PublishAddress("", fakeEndpoint)
	port := c.HostPorts[8080]
	if !c.Running || got.ContainerID != c.ID || got.UpstreamURL != domain.SessionURL(host, port) ||
		got.URL != "http://127.0.0.1:8090/session/"+got.ID+"/" {
		t.Errorf("session records container %q at %q (url %q); want the running container %q at port %d, opened at the gateway",
			got.ContainerID, got.UpstreamURL, got.URL, c.ID, port)
	}
	want := []domain.ProbeTarget{{Host: host, Port: port, Path: "/healthz"}}
	if !slices.Equal(w.probe.targets, want) {
		t.Errorf("probed %v, want %v", w.probe.targets, want)
	}
	if c.Labels[domain.LabelUser] != "alice" {
		t.Errorf("container labels %v, want it made for alice", c.Labels)
	}
	if want := []domain.ZoneServed{{RequestedZone: "zone-a", Step: 1}}; !slices.Equal(w.store.served, want) {
		t.Errorf("session.ready says the zone search served it as %+v, want %+v", w.store.served, want)
	}
}

// An on-demand session placed in the second zone of its request's search
// says so on session.ready: step 2, and the zone the request named.
func TestOnDemandSessionPlacedInTheSecondZoneOfItsSearchIsStep2(t *testing.T) {
	sc := newSession("") // placed in zone-a
	sc.Session.UserID = sql.NullString{String: "user-1", Valid: true}
	w := newFakeWorld(t, sc)
	err := w.prov.ProvisionSession(context.Background(), events.ProvisionRequested{SessionID: sc.Session.ID,
		RequestID: sc.RequestID(), Origin: sessions.OriginOnDemand, RequestedZone: "zone-0", Zones: []string{"zone-0", "zone-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []domain.ZoneServed{{RequestedZone: "zone-0", Step: 2}}; !slices.Equal(w.store.served, want) {
		t.Errorf("session.ready says %+v, want %+v", w.store.served, want)
	}
}

// A session failed meanwhile (the expiry service's provisioning timeout)
// must not keep the container made for it, and its pool is refilled.
func TestProvisionRemovesTheContainerOfASessionFailedMeanwhile(t *testing.T) {
	w := newFakeWorld(t, newSession("pool-1"))
	w.store.staleOnRecord = sessions.Failed

	if err := w.provision(t); err != nil {
		t.Fatal(err)
	}
	if left := w.containers(); len(left) != 0 {
		t.Errorf("containers %v outlive their failed session", left)
	}
	if slices.Contains(w.store.calls, "MarkStaged") || len(w.store.failures) != 0 {
		t.Errorf("calls %v, failures %+v: the session was moved on after it had ended", w.store.calls, w.store.failures)
	}
	if got := w.refilled(); !slices.Equal(got, []string{"pool-1"}) {
		t.Errorf("pools refilled %v, want pool-1", got)
	}
}

// Destroying a session removes its containers, the recorded one and any
// other labelled as its, before the session is destroyed.
func TestDestroyRemovesEveryContainerOfTheSession(t *testing.T) {
	sc := newSession("pool-1")
	sc.Session.Status = sessions.Staged
	w := newFakeWorld(t, sc)
	labels := map[string]string{domain.LabelSession: "session-1"}
	w.store.sc.Session.ContainerID = w.engine.Put(domain.Container{State: "running", Labels: labels})
	w.engine.Put(domain.Container{State: "created", Labels: labels}) // made by an interrupted attempt

	if err := w.prov.DestroySession(context.Background(), "session-1", "api"); err != nil {
		t.Fatal(err)
	}
	if left := w.containers(); len(left) != 0 {
		t.Errorf("containers %v left", left)
	}
	if want := []string{"BeginDestroy", "FinishDestroy"}; !slices.Equal(w.store.calls, want) {
		t.Errorf("calls %v, want %v", w.store.calls, want)
	}
	if st := w.store.status(); st != sessions.Destroyed {
		t.Errorf("session is %s, want destroyed", st)
	}
	if got := w.refilled(); !slices.Equal(got, []string{"pool-1"}) {
		t.Errorf("pools refilled %v, want pool-1", got)
	}
}

// A claimed staged session whose container is gone fails as
// container_gone, not assign_failed: the pool lost a container, the
// workspace's command did not fail.
func TestAssignFailsAsContainerGoneWhenTheContainerNoLongerExists(t *testing.T) {
	sc := newSession("pool-1")
	sc.Session.Status, sc.Session.ContainerID = sessions.Assigning, "0123456789abcdef"
	sc.Workspace.DockerExecConfig = []byte(`{"assign": {"cmd": "/demo-workspace assign --user {username}"}}`)
	w := newFakeWorld(t, sc)

	err := w.prov.AssignSession(context.Background(), events.SessionAssigned{SessionID: "session-1", RequestID: "request-2",
		User: "alice", UserID: "user-1", StagingConfigID: "pool-1"})
	if err != nil {
		t.Fatal(err)
	}
	if execs := w.engine.Execs(); len(execs) != 1 {
		t.Errorf("execs %v, want the assign command tried once", execs)
	}
	if len(w.store.failures) != 1 || w.store.failures[0].Reason != events.ReasonContainerGone || w.store.failures[0].Observed != "missing" {
		t.Errorf("failures %+v, want one container_gone: missing", w.store.failures)
	}
	if len(w.store.ran) != 1 || w.store.ran[0].Method != events.AssignMethodExec || w.store.ran[0].OK ||
		!strings.Contains(w.store.ran[0].Detail, "missing") {
		t.Errorf("assign steps announced %+v, want the exec, failed, saying the container is missing", w.store.ran)
	}
	if st := w.store.status(); st != sessions.Failed {
		t.Errorf("session is %s, want failed", st)
	}
	if got := w.refilled(); !slices.Equal(got, []string{"pool-1"}) {
		t.Errorf("pools refilled %v, want pool-1 (the claim took a session out of it)", got)
	}
}

// The assign step of a claimed staged session is announced however it
// went (session.assign_ran), with the transition that ends assigning:
// with session.ready on success, with session.failed on failure; and
// session.ready says the zone search step the assigner's claim said.
func TestAssignAnnouncesItsStepWithTheTransitionThatEndsIt(t *testing.T) {
	for _, tc := range []struct {
		name       string
		execConfig string
		execErr    error
		want       events.AssignRan
		wantCalls  []string
	}{
		{"the assign command ran", `{"assign": {"cmd": "/demo-workspace assign --user {username}"}}`, nil,
			events.AssignRan{Method: events.AssignMethodExec, OK: true},
			[]string{"LoadSession", "CompleteAssign"}},
		{"nothing to run", ``, nil,
			events.AssignRan{Method: events.AssignMethodNone, OK: true},
			[]string{"LoadSession", "CompleteAssign"}},
		{"the assign command could not run", `{"assign": {"cmd": "/demo-workspace assign --user {username}"}}`, errors.New("exec refused"),
			events.AssignRan{Method: events.AssignMethodExec, OK: false,
				Detail: `assign command ["/demo-workspace" "assign" "--user" "alice"]: exec refused`},
			[]string{"LoadSession", "FailSession", "AnnounceFailedRemoved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newSession("pool-1")
			sc.Session.Status = sessions.Assigning
			sc.Workspace.DockerExecConfig = []byte(tc.execConfig)
			w := newFakeWorld(t, sc)
			w.store.sc.Session.ContainerID = w.engine.Put(domain.Container{State: "running",
				Labels: map[string]string{domain.LabelSession: "session-1"}})
			w.engine.ExecErr = tc.execErr

			err := w.prov.AssignSession(context.Background(), events.SessionAssigned{SessionID: "session-1", RequestID: "request-2",
				User: "alice", UserID: "user-1", StagingConfigID: "pool-1", Zone: "zone-a", RequestedZone: "zone-0", ZoneSearchStep: 2})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.store.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", w.store.calls, tc.wantCalls)
			}
			want := tc.want
			want.SessionID, want.RequestID, want.User = "session-1", "request-2", "alice"
			if len(w.store.ran) != 1 {
				t.Fatalf("assign steps announced %+v, want one", w.store.ran)
			}
			got := w.store.ran[0]
			if got.DurationMS < 0 || (got.Method == events.AssignMethodNone && got.DurationMS != 0) {
				t.Errorf("the step took %d ms", got.DurationMS)
			}
			got.DurationMS = 0 // however long the fake engine took
			if got != want {
				t.Errorf("assign step announced %+v, want %+v", got, want)
			}
			if want.OK {
				if served := []domain.ZoneServed{{RequestedZone: "zone-0", Step: 2}}; !slices.Equal(w.store.served, served) {
					t.Errorf("session.ready says the zone search served it as %+v, want %+v", w.store.served, served)
				}
			} else if !slices.Equal(w.store.removedFailed, []string{events.ReasonAssignFailed}) {
				t.Errorf("removal of the failed session's container announced with %v, want assign_failed", w.store.removedFailed)
			}
		})
	}
}
