package chaos

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestChaosShort is the short form of `make chaos`, part of `make test`:
// 2 replicas of every service and 3 assigners as processes, steady load
// through the bus and the HTTP API, and three faults — kill -9 of an
// assigner, kill -9 and restart of nats-server, poison messages — after
// each of which every invariant must hold.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault matrix runs processes and containers for minutes; not with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 9*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Short: true, Log: testWriter{t}})
	if rep != nil {
		rep.Table(testWriter{t})
		if err := rep.WriteJSON(filepath.Join(t.TempDir(), "chaos.json")); err != nil {
			t.Error(err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Phases {
		if p.Error != "" {
			t.Errorf("%s: %s", p.Fault, p.Error)
		}
		for _, v := range p.Violations {
			t.Errorf("%s: %s %s: %s", p.Fault, v.Invariant, v.Subject, v.Detail)
		}
		if p.Sent == 0 || p.Ready == 0 {
			t.Errorf("%s: %d requests sent, %d ready: the load did not run", p.Fault, p.Sent, p.Ready)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}
