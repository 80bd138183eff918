package staging_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// fakePools stands for the staging pools in PostgreSQL: each reconcile
// of a config answers the next of its outcomes, and the passes it was
// given are kept.
type fakePools struct {
	mu       sync.Mutex
	ids      []string
	outcomes map[string][]staging.PoolOutcome
	errs     map[string]error
	passes   map[string][]staging.PoolPass
}

func (p *fakePools) ListStagingConfigs(context.Context) ([]string, error) { return p.ids, nil }

func (p *fakePools) ReconcileStagingConfig(_ context.Context, id string, pass staging.PoolPass) (staging.PoolOutcome, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.passes == nil {
		p.passes = map[string][]staging.PoolPass{}
	}
	p.passes[id] = append(p.passes[id], pass)
	if err := p.errs[id]; err != nil {
		return staging.PoolOutcome{}, err
	}
	out := p.outcomes[id][0]
	p.outcomes[id] = p.outcomes[id][1:]
	return out, nil
}

func held(why domain.HoldReason) staging.PoolOutcome {
	return staging.PoolOutcome{Plan: domain.PoolPlan{HeldBack: why, Status: domain.PoolFilling}}
}

// A pool that finds no room (no capacity, or room held by its own
// destroys or roll) counts the passes in a row that did, which the plan
// weighs; one pass that is not held back for room starts the count over.
func TestCapacityWaitsCountThePassesInARowThatFoundNoRoom(t *testing.T) {
	pools := &fakePools{outcomes: map[string][]staging.PoolOutcome{"pool-1": {
		held(domain.HeldForCapacity),
		held(domain.HeldForRoll),
		held(domain.HeldForDestroys),
		{Plan: domain.PoolPlan{Create: 2, Status: domain.PoolFilling}, Created: []string{"s1", "s2"}},
		held(domain.HeldForCapacity),
	}}}
	r := staging.NewReconciler(staging.ReconcilerConfig{RefillConcurrency: 3}, pools, zap.NewNop(), nil)

	var got []staging.ReconcileResult
	for range 5 {
		res, err := r.ReconcileConfig(context.Background(), "pool-1")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res)
	}
	var waits []int
	for _, pass := range pools.passes["pool-1"] {
		waits = append(waits, pass.CapacityWaits)
		if pass.RefillLimit != 3 || pass.Forced || pass.Decide == nil {
			t.Errorf("pass %+v, want the refill limit, not forced, and a decision", pass)
		}
	}
	if want := []int{0, 1, 2, 3, 0}; !slices.Equal(waits, want) {
		t.Errorf("capacity waits %v, want %v", waits, want)
	}
	want := []staging.ReconcileResult{
		{Configs: 1, HeldBack: 1}, {Configs: 1, HeldBack: 1}, {Configs: 1, HeldBack: 1},
		{Configs: 1, Created: 2}, {Configs: 1, HeldBack: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("results %+v, want %+v", got, want)
	}
}

// A pass over every pool sums what each did; a config that is gone counts
// for nothing, and one that fails is reported once the others were
// reconciled.
func TestRunOnceReconcilesEveryPoolAndReportsFailuresAfterwards(t *testing.T) {
	broken := errors.New("connection reset")
	pools := &fakePools{
		ids: []string{"pool-1", "broken", "gone", "pool-2"},
		outcomes: map[string][]staging.PoolOutcome{
			"pool-1": {{Plan: domain.PoolPlan{Create: 2, Status: domain.PoolFilling}, Created: []string{"s1", "s2"}}},
			"gone":   {{Gone: true}},
			"pool-2": {{Plan: domain.PoolPlan{HeldBack: domain.HeldForCapacity, Status: domain.PoolShortfall},
				Destroyed: []string{"s3"}}},
		},
		errs: map[string]error{"broken": broken},
	}
	r := staging.NewReconciler(staging.ReconcilerConfig{}, pools, zap.NewNop(), nil)

	res, err := r.RunOnce(context.Background())
	if !errors.Is(err, broken) {
		t.Errorf("RunOnce: %v, want the broken config's error", err)
	}
	want := staging.ReconcileResult{Configs: 2, Created: 2, Destroyed: 1, HeldBack: 1, Shortfalls: 1}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if len(pools.passes["pool-2"]) != 1 {
		t.Errorf("pool-2 reconciled %d times, want once after the broken one", len(pools.passes["pool-2"]))
	}
}
