package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// A request repeated after its session was destroyed is answered: its
// session's own announcement, session.destroyed, answers no request, so the
// assigner says it failed with reason destroyed — with the recorded cause
// when the session was destroyed before it was ready.
func TestRepeatedRequestOfADestroyedSessionFailsAsDestroyed(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		path       []sessions.Status // from assigning
		recorded   string            // failure_reason the provisioner wrote, if any
		wantDetail func(sessionID string) string
	}{
		{"destroyed after it ran", []sessions.Status{sessions.Running, sessions.Destroying, sessions.Destroyed}, "",
			func(id string) string { return "session " + id + " was destroyed" }},
		{"being destroyed", []sessions.Status{sessions.Running, sessions.Destroying}, "",
			func(id string) string { return "session " + id + " is being destroyed" }},
		{"destroyed before it was ready", []sessions.Status{sessions.Destroying, sessions.Destroyed},
			events.RecordedFailure(events.ReasonDestroyed, "destroyed before it was ready: api"),
			func(string) string { return "destroyed before it was ready: api" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.stage("zone-a")
			req := client.Request{RequestID: "again-" + uuid.NewString(), User: "alice", Workspace: "demo", Zone: "zone-a"}
			if _, _, err := w.client.Publish(ctx, req); err != nil {
				t.Fatal(err)
			}
			var assigned events.SessionAssigned
			if err := w.rec.Wait(t, events.TypeSessionAssigned, req.RequestID, 10*time.Second).Event.DecodeData(&assigned); err != nil {
				t.Fatal(err)
			}
			from := sessions.Assigning
			for _, to := range tc.path {
				ch := sessions.Change{}
				if to == sessions.Destroying && tc.recorded != "" {
					ch.FailureReason = &tc.recorded
				}
				if _, err := sessions.Transition(ctx, w.db, assigned.SessionID, from, to, ch); err != nil {
					t.Fatal(err)
				}
				from = to
			}

			// The same request again, past the stream's duplicate window.
			ev, _ := events.NewWithID(uuid.NewString(), "test", events.TypeSessionRequested, events.SessionRequested{
				RequestID: req.RequestID, User: req.User, Workspace: req.Workspace, Zone: req.Zone})
			raw, _ := ev.Marshal()
			if _, err := w.pub.PublishRaw(ctx, events.TypeSessionRequested, ev.ID, raw, req.RequestID); err != nil {
				t.Fatal(err)
			}
			f := decode[events.SessionFailed](t, w.rec.Wait(t, events.TypeSessionFailed, req.RequestID, 10*time.Second))
			if f != (events.SessionFailed{RequestID: req.RequestID, SessionID: assigned.SessionID, Reason: events.ReasonDestroyed,
				Detail: tc.wantDetail(assigned.SessionID)}) {
				t.Errorf("session.failed = %+v", f)
			}
			var n int
			if err := w.db.Get(&n, `SELECT count(*) FROM sessions WHERE request_id = $1`, req.RequestID); err != nil || n != 1 {
				t.Fatalf("sessions for the request: %d %v", n, err)
			}
		})
	}
}
