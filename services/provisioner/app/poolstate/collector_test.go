package poolstate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/poolstate"
)

// fakeReader returns its pools, or waits for the scrape's deadline when
// stuck, or fails with err.
type fakeReader struct {
	staging []poolstate.StagingPool
	pools   []poolstate.Pool
	err     error
	stuck   bool
}

func (f *fakeReader) StagingPools(ctx context.Context) ([]poolstate.StagingPool, error) {
	if f.stuck {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.staging, f.err
}

func (f *fakeReader) Pools(context.Context) ([]poolstate.Pool, error) { return f.pools, f.err }

func TestCollectorReportsStatusAsAStateSetAndShortfallWithItsCause(t *testing.T) {
	r := &fakeReader{
		staging: []poolstate.StagingPool{
			{Zone: "zone-a", Workspace: "demo", Desired: 3, Staged: 1, Provisioning: 1, Status: "shortfall",
				LastError: "no_capacity: zone-a: no room"},
			{Zone: "zone-b", Workspace: "demo", Desired: 2, Staged: 2, Status: "ok", LastError: "image_missing: gone since"},
		},
		pools: []poolstate.Pool{{Name: "fixed", Type: "server", Zone: "zone-a", Members: 2, Slots: 4, FreeSlots: 1, Sessions: 3}},
	}
	c := poolstate.NewCollector(r, time.Second, zap.NewNop())
	want := `
# HELP greenroom_staging_config_shortfall 1 while a staging config is in shortfall, labelled with the cause its last_error names (no_capacity, workspace_disabled, image_missing, provisioning_failed, provisioning_timeout, other).
# TYPE greenroom_staging_config_shortfall gauge
greenroom_staging_config_shortfall{reason="no_capacity",workspace="demo",zone="zone-a"} 1
# HELP greenroom_staging_config_status 1 for a staging config's status (ok, filling, shortfall), 0 for the others.
# TYPE greenroom_staging_config_status gauge
greenroom_staging_config_status{status="filling",workspace="demo",zone="zone-a"} 0
greenroom_staging_config_status{status="ok",workspace="demo",zone="zone-a"} 0
greenroom_staging_config_status{status="shortfall",workspace="demo",zone="zone-a"} 1
greenroom_staging_config_status{status="filling",workspace="demo",zone="zone-b"} 0
greenroom_staging_config_status{status="ok",workspace="demo",zone="zone-b"} 1
greenroom_staging_config_status{status="shortfall",workspace="demo",zone="zone-b"} 0
# HELP greenroom_pool_free_sessions Sessions a server pool's enabled servers in a zone accept beyond their live ones.
# TYPE greenroom_pool_free_sessions gauge
greenroom_pool_free_sessions{pool="fixed",type="server",zone="zone-a"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"greenroom_staging_config_shortfall", "greenroom_staging_config_status", "greenroom_pool_free_sessions"); err != nil {
		t.Fatal(err)
	}
}

func TestShortfallReasonIsBounded(t *testing.T) {
	for lastError, want := range map[string]string{
		"no_capacity: zone-a: no room": "no_capacity",
		"image_missing: image x":       "image_missing",
		"provisioning_timeout":         "provisioning_timeout",
		"user alice did something odd": "other",
		"":                             "other",
	} {
		if got := poolstate.ShortfallReason(lastError); got != want {
			t.Errorf("ShortfallReason(%q) = %q, want %q", lastError, got, want)
		}
	}
}

// TestCollectorLeavesTheGaugesOutWhenTheDatabaseFailsOrIsSlow: no stale
// or false values, only the error counter, and a stuck database costs at
// most the timeout.
func TestCollectorLeavesTheGaugesOutWhenTheDatabaseFailsOrIsSlow(t *testing.T) {
	for name, r := range map[string]*fakeReader{
		"failing": {err: errors.New("connection refused")},
		"stuck":   {stuck: true},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(poolstate.NewCollector(r, 50*time.Millisecond, zap.NewNop()))
			for range 2 {
				families, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				if len(families) != 1 || families[0].GetName() != "greenroom_pool_state_errors_total" {
					t.Fatalf("families %v, want only the error counter", families)
				}
			}
			if v := testutil.ToFloat64(poolstate.NewCollector(r, 50*time.Millisecond, zap.NewNop())); v != 1 {
				t.Errorf("a fresh collector counts %v errors after one scrape, want 1", v)
			}
			if got, err := testutil.GatherAndCount(reg, "greenroom_pool_state_errors_total"); err != nil || got != 1 {
				t.Fatalf("error counter series %d (%v)", got, err)
			}
		})
	}
}
