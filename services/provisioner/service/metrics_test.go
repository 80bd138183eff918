package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// metric returns the value of the series of family name that labels
// select as /metrics would show it now, and whether there is one.
func (e *env) metric(name string, labels map[string]string) (float64, bool) {
	e.t.Helper()
	return apptest.Metric(e.t, e.deps.Ops.Registry, name, labels)
}

// mustMetric is metric, failing the test when there is no such series.
func (e *env) mustMetric(name string, labels map[string]string) float64 {
	e.t.Helper()
	return apptest.MustMetric(e.t, e.deps.Ops.Registry, name, labels)
}

// with returns labels plus k=v.
func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

// TestStagingPoolGaugesAreReadFromTheDatabase: a staging config's desired,
// current and provisioning sessions and its status, and the capacity of the
// agents, are what PostgreSQL holds at the scrape; a deleted config's
// series are gone at the next scrape.
func TestStagingPoolGaugesAreReadFromTheDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s", cores: 0.5, memoryMB: 64})
	cfg := e.addStagingConfig(f, 2, events.Permissions{})
	pool := map[string]string{"zone": "zone-a", "workspace": "demo"}
	if v := e.mustMetric("greenroom_staging_config_desired_sessions", pool); v != 2 {
		t.Errorf("desired %v, want 2", v)
	}
	if v := e.mustMetric("greenroom_staging_config_status", with(pool, "status", "filling")); v != 1 {
		t.Errorf("status filling = %v before the first staged session, want 1", v)
	}

	e.poolConfigChanged(cfg, "created")
	e.waitFor("2 staged and status ok", 30*time.Second, func() bool {
		return e.mustMetric("greenroom_staging_config_current_sessions", pool) == 2 &&
			e.mustMetric("greenroom_staging_config_status", with(pool, "status", "ok")) == 1
	})
	for status, want := range map[string]float64{"ok": 1, "filling": 0, "shortfall": 0} {
		if v := e.mustMetric("greenroom_staging_config_status", with(pool, "status", status)); v != want {
			t.Errorf("status %s = %v, want %v", status, v, want)
		}
	}
	if v := e.mustMetric("greenroom_staging_config_provisioning_sessions", pool); v != 0 {
		t.Errorf("provisioning %v once the pool is full, want 0", v)
	}
	if _, ok := e.metric("greenroom_staging_config_shortfall", with(pool, "reason", "no_capacity")); ok {
		t.Error("a shortfall series for a pool that is ok")
	}
	if v := e.mustMetric("greenroom_provisioner_provision_seconds", map[string]string{"origin": "staged"}); v != 2 {
		t.Errorf("provisioning durations observed %v, want 2", v)
	}

	// The agent (4 cores, 4096 MB, in no pool) carries the two sessions.
	agents := map[string]string{"pool": "", "type": "docker_agent", "zone": "zone-a"}
	for name, want := range map[string]float64{
		"greenroom_pool_members":               1,
		"greenroom_pool_disabled_members":      0,
		"greenroom_pool_sessions":              2,
		"greenroom_pool_capacity_cores":        4,
		"greenroom_pool_free_cores":            3,
		"greenroom_pool_capacity_memory_bytes": 4096 << 20,
		"greenroom_pool_free_memory_bytes":     (4096 - 2*64) << 20,
	} {
		if v := e.mustMetric(name, agents); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}

	// What the config service's DELETE does; the series go with it.
	e.exec(`UPDATE staging_configs SET deleted_at = now() WHERE id = $1`, cfg)
	if _, ok := e.metric("greenroom_staging_config_desired_sessions", pool); ok {
		t.Error("a deleted staging config still has its series")
	}
}

// TestPoolGaugesCountMembersAndFreeCapacity: agent pools count their
// enabled and disabled agents and free cores, server pools their free
// session slots, and a pool without members is reported with none.
func TestPoolGaugesCountMembersAndFreeCapacity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noService: true})
	zone := e.addZone("zone-p", "least_load")
	agentPool, serverPool, emptyPool := uuid.NewString(), uuid.NewString(), uuid.NewString()
	e.exec(`INSERT INTO pools (id, name, type) VALUES ($1, 'gpu', 'docker_agent'), ($2, 'fixed', 'server'), ($3, 'empty', 'docker_agent')`,
		agentPool, serverPool, emptyPool)
	on := e.addAgent(zone, "gpu-1", 8, 8192)
	off := e.addAgent(zone, "gpu-2", 8, 8192)
	e.exec(`UPDATE agents SET pool_id = $1 WHERE id IN ($2, $3)`, agentPool, on, off)
	e.exec(`UPDATE agents SET enabled = false WHERE id = $1`, off)
	server := uuid.NewString()
	e.exec(`INSERT INTO servers (id, name, zone_id, pool_id, address, max_sessions) VALUES ($1, 'rdp-1', $2, $3, '10.0.0.5', 3)`,
		server, zone, serverPool)
	ws := e.addWorkspace("desk", workspaceOptions{})
	e.exec(`INSERT INTO sessions (id, workspace_id, zone_id, server_id, origin, status) VALUES ($1, $2, $3, $4, 'on_demand', 'running')`,
		uuid.NewString(), ws, zone, server)

	gpu := map[string]string{"pool": "gpu", "type": "docker_agent", "zone": "zone-p"}
	for name, want := range map[string]float64{
		"greenroom_pool_members": 1, "greenroom_pool_disabled_members": 1,
		"greenroom_pool_capacity_cores": 8, "greenroom_pool_free_cores": 8,
	} {
		if v := e.mustMetric(name, gpu); v != want {
			t.Errorf("gpu: %s = %v, want %v", name, v, want)
		}
	}
	fixed := map[string]string{"pool": "fixed", "type": "server", "zone": "zone-p"}
	for name, want := range map[string]float64{
		"greenroom_pool_members": 1, "greenroom_pool_sessions": 1,
		"greenroom_pool_capacity_sessions": 3, "greenroom_pool_free_sessions": 2,
	} {
		if v := e.mustMetric(name, fixed); v != want {
			t.Errorf("fixed: %s = %v, want %v", name, v, want)
		}
	}
	if _, ok := e.metric("greenroom_pool_free_cores", fixed); ok {
		t.Error("a server pool reports free cores")
	}
	if v := e.mustMetric("greenroom_pool_members", map[string]string{"pool": "empty", "type": "docker_agent", "zone": ""}); v != 0 {
		t.Errorf("empty pool members %v, want 0", v)
	}
	if v := e.mustMetric("greenroom_pool_state_errors_total", map[string]string{}); v != 0 {
		t.Errorf("state errors %v, want 0", v)
	}
}

// TestShortfallGaugeNamesItsCauseAndFailuresCountByReason: a pool whose
// image is missing is in shortfall with reason image_missing, and each of
// its failed creations counts as a provisioning failure of that reason.
func TestShortfallGaugeNamesItsCauseAndFailuresCountByReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: service.Config{Reconciler: staging.ReconcilerConfig{
		Interval: 200 * time.Millisecond, PermanentBackoffMin: time.Hour, PermanentBackoffMax: time.Hour,
	}}})
	img := "greenroom/never-built:" + uuid.NewString()[:8]
	t.Cleanup(func() { _, _ = e.docker.ImageRemove(context.Background(), img, client.ImageRemoveOptions{}) })
	f := e.standardFixture(workspaceOptions{image: img, initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	pool := map[string]string{"zone": "zone-a", "workspace": "demo"}
	e.waitFor("the shortfall gauge", 20*time.Second, func() bool {
		v, ok := e.metric("greenroom_staging_config_shortfall", with(pool, "reason", "image_missing"))
		return ok && v == 1
	})
	if v := e.mustMetric("greenroom_staging_config_status", with(pool, "status", "shortfall")); v != 1 {
		t.Errorf("status shortfall = %v, want 1", v)
	}
	if v := e.mustMetric("greenroom_provisioner_provisioning_failures_total",
		map[string]string{"origin": "staged", "reason": command.CauseImageMissing}); v < 1 {
		t.Errorf("provisioning failures (image_missing) %v, want at least 1", v)
	}
	// The consumer's metrics are on the same registry.
	if _, ok := e.metric("greenroom_bus_consumer_pending_messages", map[string]string{"consumer": "provisioner"}); !ok {
		t.Error("no lag gauge for the provisioner's consumer")
	}
}
