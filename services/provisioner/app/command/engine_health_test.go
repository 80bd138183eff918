package command_test

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/enginehealth"
)

// Placement is given what is known of the engines, and an engine the
// provisioner cannot reach is put on the board, so that the next
// placements pass its agents over.
func TestProvisionReportsAnEngineItCannotReach(t *testing.T) {
	sc := newSession("")
	const gone = "tcp://10.9.0.2:2375"
	sc.Agent.DockerEndpoint = gone
	w := newFakeWorld(t, sc)
	board := enginehealth.NewBoard(0, zap.NewNop())
	w.prov.UseEngineHealth(board)

	if err := w.provision(t); err != nil {
		t.Fatal(err)
	}
	if w.store.outages != board {
		t.Errorf("PlaceSession was given %v, want the engine health board", w.store.outages)
	}
	if st := w.store.status(); st != sessions.Failed {
		t.Errorf("session is %s, want failed", st)
	}
	o := board.Outage(gone)
	if o == nil || !strings.Contains(o.Err, "does not answer") {
		t.Errorf("outage of %s = %+v, want the engine's error", gone, o)
	}
}

// An engine that made a container answers: its agents host sessions
// again.
func TestProvisionReportsAnEngineThatAnswered(t *testing.T) {
	w := newFakeWorld(t, newSession(""))
	board := enginehealth.NewBoard(0, zap.NewNop())
	board.Failed(fakeEndpoint, errors.New("connection refused"))
	w.prov.UseEngineHealth(board)

	if err := w.provision(t); err != nil {
		t.Fatal(err)
	}
	if st := w.store.status(); st != sessions.Running {
		t.Fatalf("session is %s, want running", st)
	}
	if o := board.Outage(fakeEndpoint); o != nil {
		t.Errorf("engine still down after making a container: %+v", o)
	}
}
