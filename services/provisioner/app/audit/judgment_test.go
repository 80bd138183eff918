package audit_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/fakeengine"
)

// A staged session whose container exited is failed as container_gone
// with what was seen, its dead container removed (and the removal
// announced), and its pool refilled.
func TestAuditFailsAStagedSessionWhoseContainerExitedAndRefillsItsPool(t *testing.T) {
	store, engine, refilled := &fakeSessions{}, fakeengine.New(fakeEndpoint), []string{}
	store.add("s1", "c1", sessions.Staged, "pool-1")
	putContainer(engine, "c1", "s1", "exited", 137, time.Hour)

	res, err := newFakeAuditor(t, store, engine, &refilled).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (audit.AuditResult{Endpoints: 1, Checked: 1, Failed: 1, Removed: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if len(store.failed) != 1 || store.failed[0].Failure.Recorded() != containerGone("exited (code 137)") {
		t.Errorf("failed %+v, want s1 failed as container_gone: exited (code 137)", store.failed)
	}
	if engine.Has("c1") {
		t.Error("the dead container is still there")
	}
	if !slices.Equal(store.removedFailed, []string{events.ReasonContainerGone}) {
		t.Errorf("removals announced with reasons %v, want one, container_gone", store.removedFailed)
	}
	if !slices.Equal(refilled, []string{"pool-1"}) {
		t.Errorf("pools refilled %v, want pool-1", refilled)
	}
}

// A managed container whose session ended, or never had a row, is removed
// once older than the grace period, and its removal announced
// (container.removed, cause orphan); one of a live session, or a young
// one whose row may not be visible yet, stays.
func TestAuditRemovesContainersWhoseSessionEnded(t *testing.T) {
	store, engine, refilled := &fakeSessions{}, fakeengine.New(fakeEndpoint), []string{}
	store.add("destroyed", "c-destroyed", sessions.Destroyed, "")
	store.add("running", "c-running", sessions.Running, "")
	putContainer(engine, "c-destroyed", "destroyed", "exited", 0, time.Hour)
	putContainer(engine, "c-running", "running", "running", 0, time.Hour)
	putContainer(engine, "c-unknown", "no-such-session", "running", 0, time.Hour)
	putContainer(engine, "c-young", "not-committed-yet", "running", 0, time.Second)

	res, err := newFakeAuditor(t, store, engine, &refilled).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (audit.AuditResult{Endpoints: 1, Checked: 1, OrphansRemoved: 2}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	for id, kept := range map[string]bool{"c-destroyed": false, "c-unknown": false, "c-running": true, "c-young": true} {
		if engine.Has(id) != kept {
			t.Errorf("container %s kept: %v, want %v", id, engine.Has(id), kept)
		}
	}
	if len(store.failed) != 0 {
		t.Errorf("failed %+v, want none", store.failed)
	}
	// The fake's session ids are no UUIDs, so no session_id is said.
	got := slices.SortedFunc(slices.Values(store.removedOrphans), func(a, b events.ContainerRemoved) int {
		return strings.Compare(a.ContainerID, b.ContainerID)
	})
	want := []events.ContainerRemoved{
		{ContainerID: "c-destroyed", Agent: "agent-1", Cause: events.CauseOrphan},
		{ContainerID: "c-unknown", Agent: "agent-1", Cause: events.CauseOrphan},
	}
	if !slices.Equal(got, want) {
		t.Errorf("container.removed announced %+v, want %+v", got, want)
	}
	if len(store.removedFailed) != 0 {
		t.Errorf("session.destroyed announced for %v: an orphan's session is not failed by the collector", store.removedFailed)
	}
}

// An engine event ends only the session that records that very container:
// the death of a container it no longer relies on changes nothing.
func TestAnEngineEventFailsOnlyTheSessionThatRecordsThatContainer(t *testing.T) {
	store, engine, refilled := &fakeSessions{}, fakeengine.New(fakeEndpoint), []string{}
	store.add("s1", "c1", sessions.Running, "")
	a := newFakeAuditor(t, store, engine, &refilled)
	removed := domain.JudgeContainerEvent(domain.ContainerEvent{Action: domain.ContainerDestroyed})

	res, err := a.ContainerGone(context.Background(), fakeEndpoint, "s1", "c-replaced", removed)
	if err != nil || res != (audit.AuditResult{}) || len(store.failed) != 0 {
		t.Errorf("event of another container: %+v (err %v), failed %+v; want nothing done", res, err, store.failed)
	}
	res, err = a.ContainerGone(context.Background(), fakeEndpoint, "s1", "c1", removed)
	if err != nil || res != (audit.AuditResult{Checked: 1, Failed: 1}) {
		t.Errorf("event of its container: %+v (err %v), want the session failed", res, err)
	}
	if len(store.failed) != 1 || store.failed[0].Failure.Recorded() != containerGone("removed") {
		t.Errorf("failed %+v, want s1 failed as container_gone: removed", store.failed)
	}
	if len(refilled) != 0 {
		t.Errorf("pools refilled %v: a running session belongs to no pool any more", refilled)
	}
	if len(store.removedFailed) != 0 {
		t.Errorf("removals announced %v: a container already removed was not the audit's to remove", store.removedFailed)
	}
}
