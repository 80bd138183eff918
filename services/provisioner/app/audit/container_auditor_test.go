package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
)

// world is a database with one agent at endpoint and a running session on
// it recording a container no engine has.
type world struct {
	conn    *sqlx.DB
	session string
}

func newWorld(t *testing.T, endpoint string) world {
	t.Helper()
	conn, _ := dbtest.New(t)
	zone, agent, ws := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO zones (id, name) VALUES ($1, 'z')`, []any{zone}},
		{`INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES ($1, 'a1', $2, $3, 4, 4096)`, []any{agent, zone, endpoint}},
		{`INSERT INTO workspaces (id, name, image) VALUES ($1, 'w', 'img')`, []any{ws}},
	} {
		if _, err := conn.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := sessions.Insert(ctx, conn, sessions.New{ID: id, RequestID: "r-" + id, WorkspaceID: ws, ZoneID: zone,
		AgentID: agent, Origin: sessions.OriginOnDemand}); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Transition(ctx, conn, id, sessions.Provisioning, sessions.Running,
		sessions.Change{ContainerID: sessions.Ptr("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	return world{conn: conn, session: id}
}

func newAuditor(t *testing.T, conn *sqlx.DB, cfg audit.ContainerAuditorConfig) *audit.ContainerAuditor {
	engines := docker.NewEngines()
	t.Cleanup(engines.Close)
	reg := prometheus.NewRegistry()
	return audit.NewContainerAuditor(cfg, postgres.New(conn, "greenroom/provisioner"), engines.AsAuditEngines(),
		command.NewMetrics(reg), reg, zaptest.NewLogger(t), nil)
}

// TestUnreachableEndpointLeavesItsSessionsAlone: an engine that cannot be
// asked shows nothing about its containers, so a Docker outage must never
// fail the sessions on it.
func TestUnreachableEndpointLeavesItsSessionsAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "tcp://127.0.0.1:1")
	res, err := newAuditor(t, w.conn, audit.ContainerAuditorConfig{GracePeriod: -1}).RunOnce(context.Background())
	if err == nil || res.Unreachable != 1 || res.Failed != 0 || res.Checked != 0 {
		t.Errorf("pass over an unreachable endpoint = %+v (err %v), want it unreachable and nothing failed", res, err)
	}
	s, err := sessions.Get(context.Background(), w.conn, w.session)
	if err != nil || s.Status != sessions.Running {
		t.Errorf("session is %s (err %v), want running", s.Status, err)
	}
}

// TestStartAuditsAtOnce uses TestSignals: the first pass runs when the
// auditor starts (after `make up`), not one interval later.
func TestStartAuditsAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "tcp://127.0.0.1:1")
	a := newAuditor(t, w.conn, audit.ContainerAuditorConfig{Interval: time.Hour, GracePeriod: -1})
	a.TestSignals.Init()
	apptest.Start(t, a)

	if res := a.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Unreachable != 1 {
		t.Errorf("first pass %+v, want the agent's endpoint tried", res)
	}
}
