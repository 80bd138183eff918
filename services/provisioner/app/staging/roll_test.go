package staging_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// revision is the pool's current revision, as the reconciler computes it.
func (p pool) revision(t *testing.T) string {
	t.Helper()
	var row struct {
		Revision int64  `db:"revision"`
		Origin   string `db:"allow_origin_domain"`
		Auth     string `db:"upstream_auth_address"`
		events.Permissions
	}
	if err := p.conn.Get(&row, `SELECT w.revision, z.allow_origin_domain, z.upstream_auth_address,
			c.allow_audio, c.allow_clipboard_down, c.allow_clipboard_up, c.allow_downloads,
			c.allow_microphone, c.allow_uploads, c.allow_gamepad
		FROM staging_configs c JOIN workspaces w ON w.id = c.workspace_id JOIN zones z ON z.id = c.zone_id
		WHERE c.id = $1`, p.config); err != nil {
		t.Fatal(err)
	}
	return domain.PoolRevision(row.Revision, row.Permissions, row.Origin, row.Auth)
}

// stageAll marks every session of the pool still provisioning as staged,
// as their containers answering their probes would.
func (p pool) stageAll(t *testing.T) {
	t.Helper()
	p.exec(t, `UPDATE sessions SET status = 'staged', staged_at = clock_timestamp() WHERE staging_config_id = $1 AND status = 'provisioning'`, p.config)
}

// revisions counts the pool's live sessions by status and revision.
func (p pool) revisions(t *testing.T) map[string]int {
	t.Helper()
	var rows []struct {
		Status   string `db:"status"`
		Revision string `db:"revision"`
		N        int    `db:"n"`
	}
	if err := p.conn.Select(&rows, `SELECT status, revision, count(*) AS n FROM sessions
		WHERE staging_config_id = $1 AND status IN ('provisioning', 'staged', 'destroying') GROUP BY 1, 2`, p.config); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status+" "+r.Revision] = r.N
	}
	return out
}

// TestStagedSessionsRecordThePoolRevision: a staged session is inserted
// with its pool's revision, the workspace's revision first.
func TestStagedSessionsRecordThePoolRevision(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2)
	if _, err := newReconciler(p, staging.ReconcilerConfig{}).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := p.revision(t)
	if !strings.HasPrefix(want, "1-") {
		t.Errorf("revision %q of a workspace never changed, want it to start with 1-", want)
	}
	if got := p.revisions(t); got["provisioning "+want] != 2 || len(got) != 1 {
		t.Errorf("sessions by status and revision %v, want 2 provisioning at %s", got, want)
	}
}

// TestWorkspaceChangeRollsThePoolBySurge: after the workspace's image
// changes, the pool creates its replacements while keeping every stale
// staged session; each replacement staged releases one stale session,
// the oldest; the pool is ok once every session is fresh.
func TestWorkspaceChangeRollsThePoolBySurge(t *testing.T) {
	t.Parallel()
	p := newPool(t, 3)
	r := newReconciler(p, staging.ReconcilerConfig{RefillConcurrency: 100})
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.stageAll(t)
	old := p.revision(t)
	var oldest []string
	if err := p.conn.Select(&oldest, `SELECT id FROM sessions WHERE staging_config_id = $1 ORDER BY staged_at, id`, p.config); err != nil {
		t.Fatal(err)
	}
	p.exec(t, `UPDATE workspaces SET image = 'img:2'`)
	now := p.revision(t)
	if now == old || !strings.HasPrefix(now, "2-") {
		t.Fatalf("revision %q after the image changed (was %q), want 2-…", now, old)
	}

	res, err := r.RunOnce(context.Background())
	if err != nil || res.Created != 3 || res.Destroyed != 0 {
		t.Fatalf("first pass of the roll %+v (err %v), want 3 created and nothing destroyed", res, err)
	}
	if got := p.revisions(t); got["staged "+old] != 3 || got["provisioning "+now] != 3 {
		t.Errorf("sessions %v, want the 3 stale ones staged and 3 fresh ones provisioning", got)
	}
	if st, _ := p.configStatus(t); st != "filling" {
		t.Errorf("status %s during the roll, want filling", st)
	}

	// One replacement staged: the oldest stale session goes.
	var one string
	if err := p.conn.Get(&one, `SELECT id FROM sessions WHERE staging_config_id = $1 AND status = 'provisioning' ORDER BY id LIMIT 1`, p.config); err != nil {
		t.Fatal(err)
	}
	p.exec(t, `UPDATE sessions SET status = 'staged', staged_at = clock_timestamp() WHERE id = $1`, one)
	res, err = r.RunOnce(context.Background())
	if err != nil || res.Created != 0 || res.Destroyed != 1 {
		t.Fatalf("pass after one replacement staged %+v (err %v), want 1 destroyed", res, err)
	}
	if st := p.statuses(t)[oldest[0]]; st != "destroying" {
		t.Errorf("the oldest stale session is %s, want destroying", st)
	}

	p.stageAll(t)
	if res, err = r.RunOnce(context.Background()); err != nil || res.Destroyed != 2 || res.Created != 0 {
		t.Fatalf("pass after every replacement staged %+v (err %v), want the 2 other stale ones destroyed", res, err)
	}
	if got := p.revisions(t); got["staged "+now] != 3 || got["destroying "+old] != 3 || len(got) != 2 {
		t.Errorf("sessions %v, want 3 fresh staged and the 3 stale ones destroying", got)
	}
	if st, _ := p.configStatus(t); st != "ok" {
		t.Errorf("status %s after the roll, want ok", st)
	}
}

// TestZoneDomainsArePartOfTheRevision: a zone's
// allow_origin_domain or upstream_auth_address reaches staged containers
// at their creation, so changing it rolls the pool like a workspace
// change.
func TestZoneDomainsArePartOfTheRevision(t *testing.T) {
	t.Parallel()
	for _, column := range []string{"allow_origin_domain", "upstream_auth_address"} {
		t.Run(column, func(t *testing.T) {
			t.Parallel()
			p := newPool(t, 2)
			r := newReconciler(p, staging.ReconcilerConfig{RefillConcurrency: 100})
			if _, err := r.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			p.stageAll(t)
			p.exec(t, `UPDATE zones SET `+column+` = 'desktops.example.com'`)
			res, err := r.RunOnce(context.Background())
			if err != nil || res.Created != 2 || res.Destroyed != 0 {
				t.Errorf("pass after the zone's %s changed %+v (err %v), want 2 replacements and nothing destroyed yet", column, res, err)
			}
		})
	}
}

// TestContainersRemovedBehindGreenroomAreNotFailedCreations is `make down`
// then `make up`: the pool's staged containers were removed seconds after
// they were staged, and the audit or the engine watcher failed their
// sessions as container_gone ("missing", "being removed", "removed"). That
// is no failure of the pool: it refills at once, with no shortfall.
func TestContainersRemovedBehindGreenroomAreNotFailedCreations(t *testing.T) {
	t.Parallel()
	p := newPool(t, 3)
	var ws, zone string
	if err := p.conn.QueryRow(`SELECT workspace_id, zone_id FROM staging_configs WHERE id = $1`, p.config).Scan(&ws, &zone); err != nil {
		t.Fatal(err)
	}
	for i, seen := range domain.ContainerRemovedSightings {
		p.exec(t, `INSERT INTO sessions (id, workspace_id, zone_id, staging_config_id, origin, status, failure_reason,
				created_at, staged_at, destroyed_at)
			VALUES ($1, $2, $3, $4, 'staged', 'failed', $5,
				now() - make_interval(secs => $6 + 3), now() - make_interval(secs => $6 + 2), now() - make_interval(secs => $6))`,
			uuid.NewString(), ws, zone, p.config, events.RecordedFailure(events.ReasonContainerGone, seen), 10*(2-i))
	}
	res, err := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour, RefillConcurrency: 100}).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 3 || res.Shortfalls != 0 || res.HeldBack != 0 {
		t.Errorf("pass %+v, want the pool refilled at once: 3 created, no shortfall, nothing held back", res)
	}
	if st, lastError := p.configStatus(t); st != "filling" || lastError != "" {
		t.Errorf("status %q last_error %q, want filling with no error", st, lastError)
	}
	if n := p.outbox(t, "greenroom.staging.shortfall"); n != 0 {
		t.Errorf("%d staging.shortfall events for a pool whose containers were removed", n)
	}
}
