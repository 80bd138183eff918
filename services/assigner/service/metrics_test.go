package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// TestClaimsAndMissesAreCountedPerStagingConfig: a claim counts on the
// staging config it came from (with its latency), in the zone it was
// claimed in; misses count by the zone requested, the workspace and why.
func TestClaimsAndMissesAreCountedPerStagingConfig(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	w.stage("zone-b") // zone-a searches alternates: alice's claim comes from zone-b
	_, got := w.request(t, "alice", "zone-a")
	if got.Subject != events.TypeSessionAssigned {
		t.Fatalf("want session.assigned, got %s", got.Subject)
	}
	poolB := map[string]string{"zone": "zone-b", "workspace": "demo"}
	// The handler counts once its outcome is out: the test may hear the
	// outcome first.
	eventually := func(what, name string, labels map[string]string, want float64) {
		t.Helper()
		apptest.Eventually(t, 10*time.Second, fmt.Sprintf("%s = %v", what, want), func() bool {
			v, _ := apptest.Metric(t, w.reg, name, labels)
			return v == want
		})
	}
	eventually("claims of zone-b/demo", "greenroom_assigner_claims_total", poolB, 1)
	if v, _ := apptest.Metric(t, w.reg, "greenroom_assigner_claim_seconds", poolB); v != 1 {
		t.Errorf("claim latency observations of zone-b/demo = %v, want 1", v)
	}
	poolA := map[string]string{"zone": "zone-a", "workspace": "demo"}
	if _, ok := apptest.Metric(t, w.reg, "greenroom_assigner_claims_total", poolA); ok {
		t.Error("a claim counted on zone-a/demo, which had nothing staged")
	}

	// Nothing staged any more: none_staged, in the zone requested.
	_, got = w.request(t, "alice", "zone-a")
	w.onDemand(t, got, "none_staged")
	miss := func(reason string) map[string]string {
		return map[string]string{"zone": "zone-a", "workspace": "demo", "reason": reason}
	}
	eventually("none_staged misses in zone-a", "greenroom_assigner_staged_misses_total", miss("none_staged"), 1)

	// Permissions that differ from every staging config's.
	g := "0190c0de-0000-7000-8000-00000000abcd"
	w.db.MustExec(`INSERT INTO groups (id, name, priority, allow_audio) VALUES ($1, 'no-audio', 1, false)`, g)
	w.user("bob", g)
	w.stage("zone-a")
	_, got = w.request(t, "bob", "zone-a")
	w.onDemand(t, got, "permissions_differ:allow_audio")
	eventually("permissions_differ misses in zone-a", "greenroom_assigner_staged_misses_total", miss("permissions_differ"), 1)
	if v, _ := apptest.Metric(t, w.reg, "greenroom_assigner_claims_total", poolA); v != 0 {
		t.Errorf("claims of zone-a/demo = %v, want 0: bob's permissions differ", v)
	}

	// The consumer's own metrics are on the same registry.
	if _, ok := apptest.Metric(t, w.reg, "greenroom_bus_dead_letters_total", map[string]string{"consumer": "assigner"}); !ok {
		t.Error("no greenroom_bus_dead_letters_total for the assigner's consumer")
	}
	if _, ok := apptest.Metric(t, w.reg, "greenroom_bus_consumer_pending_messages", map[string]string{"consumer": "assigner"}); !ok {
		t.Error("no lag gauge for the assigner's consumer")
	}
}
