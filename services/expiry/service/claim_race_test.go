package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// Issue 4, point 3: expiry, claim and shrink race safely — a container is
// never both handed to a user and destroyed. Staged sessions that are all
// past their expiration are, at the same moment, claimed by several
// assigners (the assigner's own statement, sessions.ClaimStagedSQL),
// expired by several sweepers and shrunk by a pool reconciler. Every
// session must end exactly one way: claimed (assigning, with its user and
// request) or destroying (expired or shrunk, never given a user), and
// nobody may see an error but "none staged" (claim) or "stale" (shrink).
func TestClaimExpiryAndShrinkRacingNeverHandOutADestroyedSession(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const (
		rounds    = 10
		perRound  = 40
		claimers  = 4
		replicas  = 2
		shrinkOut = 8 // the newest sessions of a round the shrink asks to remove
	)
	c := newClock(time.Now())
	sweepers := make([]*app.Sweeper, replicas)
	for i := range sweepers {
		sweepers[i] = w.sweeper(c, app.SweeperConfig{BatchSize: 3})
	}

	var (
		mu      sync.Mutex
		all     []string
		claimed = map[string]string{} // session → request it was claimed for
		shrunk  = map[string]bool{}
		fired   app.SweepResult
	)
	for round := range rounds {
		past := time.Now().Add(-time.Minute)
		ids := make([]string, perRound)
		for i := range ids {
			ids[i] = w.staged(&past).ID
		}
		all = append(all, ids...)
		c.Set(time.Now())

		var ready, wg sync.WaitGroup
		start := make(chan struct{})
		run := func(f func()) {
			ready.Add(1)
			wg.Go(func() { ready.Done(); <-start; f() })
		}
		for k := range claimers {
			run(func() {
				for n := 0; ; n++ {
					rid := fmt.Sprintf("req-%d-%d-%d", round, k, n)
					s, err := sessions.ClaimStaged(ctx, w.db, w.stagingConfigID, w.userID, rid, events.Permissions{})
					if errors.Is(err, sessions.ErrNoneStaged) {
						return
					}
					if err != nil {
						t.Errorf("claim %s: %v", rid, err)
						return
					}
					mu.Lock()
					if prev, twice := claimed[s.ID]; twice {
						t.Errorf("session %s claimed twice: for %s and %s", s.ID, prev, rid)
					}
					claimed[s.ID] = rid
					mu.Unlock()
				}
			})
		}
		for _, sw := range sweepers {
			run(func() {
				res, err := sw.RunOnce(ctx)
				if err != nil {
					t.Errorf("sweeper: %v", err)
				}
				mu.Lock()
				fired = fired.Add(res)
				mu.Unlock()
			})
		}
		// What the provisioner's pool shrink does (adapters/postgres/
		// pools.go, which this module cannot import): in one transaction,
		// move chosen staged sessions to destroying with the conditional
		// transition, skipping those claimed or expired meanwhile.
		run(func() {
			var mine []string
			err := db.InTx(ctx, w.db, func(tx *sqlx.Tx) error {
				mine = mine[:0]
				for _, id := range ids[perRound-shrinkOut:] {
					_, err := sessions.Transition(ctx, tx, id, sessions.Staged, sessions.Destroying, sessions.Change{})
					if errors.Is(err, sessions.ErrStale) {
						continue
					}
					if err != nil {
						return err
					}
					mine = append(mine, id)
				}
				return nil
			})
			if err != nil {
				t.Errorf("shrink: %v", err)
				return
			}
			mu.Lock()
			for _, id := range mine {
				shrunk[id] = true
			}
			mu.Unlock()
		})
		ready.Wait()
		close(start)
		wg.Wait()
	}
	if t.Failed() {
		t.FailNow()
	}

	expired := map[string]int{}
	for _, ev := range w.outbox(validator(t)) {
		e := decode[events.SessionExpired](t, ev.Event)
		if ev.Event.Type != events.TypeSessionExpired || e.Reason != events.ExpiredStaged {
			t.Errorf("unexpected event %s %+v", ev.Event.Type, e)
		}
		expired[e.SessionID]++
	}
	if fired.StagedExpired != len(expired) || fired.Total() != fired.StagedExpired {
		t.Errorf("sweepers report %+v, the outbox holds %d expired sessions", fired, len(expired))
	}

	for _, id := range all {
		s := w.status(id)
		rid, wasClaimed := claimed[id]
		ways := expired[id]
		if wasClaimed {
			ways++
		}
		if shrunk[id] {
			ways++
		}
		switch {
		case ways != 1:
			t.Errorf("session %s: claimed=%v expired=%d shrunk=%v, want exactly one of them", id, wasClaimed, expired[id], shrunk[id])
		case wasClaimed && (s.Status != sessions.Assigning || s.RequestID.String != rid || s.UserID.String != w.userID):
			t.Errorf("claimed session %s is %s for request %q user %q, want assigning for %s", id, s.Status, s.RequestID.String, s.UserID.String, rid)
		case !wasClaimed && (s.Status != sessions.Destroying || s.UserID.Valid || s.RequestID.Valid):
			t.Errorf("session %s was destroyed but is %s with user %q request %q", id, s.Status, s.UserID.String, s.RequestID.String)
		}
	}
	t.Logf("%d staged sessions in %d rounds: %d claimed, %d expired, %d shrunk", len(all), rounds, len(claimed), len(expired), len(shrunk))
	// Not a rule, but without both the test would not have raced anything.
	if len(claimed) == 0 || len(expired) == 0 {
		t.Errorf("claims and expiry did not overlap (%d claimed, %d expired)", len(claimed), len(expired))
	}
}
