package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// auditCLI runs the greenroom CLI built from this repository against a
// deployment, as an auditor does.
type auditCLI struct {
	t   *testing.T
	bin string
	env []string
}

func newAuditCLI(t *testing.T, g *greenroom) *auditCLI {
	t.Helper()
	bin := buildBinaries(t, "cmd/greenroom")
	return &auditCLI{t: t, bin: filepath.Join(bin, "greenroom"), env: []string{
		"GREENROOM_NATS_URL=" + g.env.NatsURL("admin"), "GREENROOM_DATABASE_URL=" + g.env.DatabaseURL, "HOME=" + t.TempDir()}}
}

// run runs greenroom with args and returns its output and exit code.
func (c *auditCLI) run(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String() + errOut.String(), exit.ExitCode()
	case err != nil:
		c.t.Fatalf("greenroom %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), 0
}

// runJSON runs greenroom with args, which must succeed, into v.
func (c *auditCLI) runJSON(v any, args ...string) {
	c.t.Helper()
	out, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("greenroom %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("greenroom %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// settled waits until every committed event is published (the outbox is
// empty) and the notary has checkpointed the stream up to its last event
// but its own checkpoints.
func settled(t *testing.T, g *greenroom) {
	t.Helper()
	apptest.Eventually(t, 60*time.Second, "the outbox empty and the stream checkpointed", func() bool {
		var queued int
		if err := g.env.DB.Get(&queued, `SELECT count(*) FROM outbox`); err != nil || queued != 0 {
			return false
		}
		var covered uint64
		if err := g.env.DB.Get(&covered, `SELECT COALESCE(max(last_seq), 0) FROM audit_checkpoints`); err != nil {
			return false
		}
		s, err := g.deps.JS.Stream(t.Context(), bus.StreamName)
		if err != nil {
			return false
		}
		last := s.CachedInfo().State.LastSeq
		if covered >= last {
			return true
		}
		// What follows the last checkpoint may be only checkpoints.
		m, err := s.GetMsg(t.Context(), last)
		return err == nil && m.Subject == audit.TypeCheckpoint && covered+3 >= last
	})
}

// sideEffects is what an audit command must leave as it found it: the
// events in the stream by subject (but the notary's checkpoints), what
// the services' consumers have delivered and acknowledged, the sessions
// in PostgreSQL and the containers on the engine.
func sideEffects(t *testing.T, g *greenroom) string {
	t.Helper()
	ctx := t.Context()
	s, err := g.deps.JS.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("greenroom.>"))
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		if subj != audit.TypeCheckpoint {
			subjects[subj] = n
		}
	}
	var consumers []string
	for ci := range s.ListConsumers(ctx).Info() {
		if ci.Config.Durable != "" {
			consumers = append(consumers, fmt.Sprintf("%s delivered %d acked %d pending %d",
				ci.Name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending))
		}
	}
	slices.Sort(consumers)
	var sessions string
	if err := g.env.DB.Get(&sessions, `SELECT COALESCE(md5(string_agg(id::text || status || updated_at::text, ',' ORDER BY id)), '')
		FROM sessions`); err != nil {
		t.Fatal(err)
	}
	containers, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=greenroom.test="+g.label).Output()
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(string(containers))
	slices.Sort(ids)
	b, _ := json.Marshal(subjects)
	return fmt.Sprintf("stream %s\nconsumers %v\nsessions %s\ncontainers %v", b, consumers, sessions, ids)
}

// checkAuditLog is run after the traffic of TestSessionRequestsEndToEnd:
// staged sessions in the requested and an alternate zone, on-demand ones
// for every reason, violations, a time limit, a duplicate request. It
// checks that the log explains it (timeline), rebuilds it (replay: the
// counts PostgreSQL has), agrees with PostgreSQL and its checkpoints
// (verify), and that verify names a row edited behind Greenroom's back.
func checkAuditLog(t *testing.T, g *greenroom) {
	cli := newAuditCLI(t, g)
	ctx := t.Context()
	// A configuration change, whose actor and fields the log keeps.
	if status, out := g.call(http.MethodPatch, "/api/v1/zones/zone-b", map[string]any{"priority": 3}); status != http.StatusOK {
		t.Fatalf("PATCH zone-b: %d %v", status, out)
	}
	// The two reasons for on demand the traffic before has not given:
	// a staging config with nothing staged, and no capacity anywhere.
	g.create("/api/v1/workspaces", workspace("demo-empty"))
	g.create("/api/v1/staging-configs", stagingConfig("zone-a", "demo-empty", 0))
	if s, _ := g.session(t, "alice", "demo-empty", "zone-a"); s["on_demand_reason"] != "none_staged" {
		t.Errorf("a session of a workspace with nothing staged: %v", s)
	}
	huge := workspace("demo-huge")
	huge["cores"] = 64
	g.create("/api/v1/workspaces", huge)
	if status, out := g.call(http.MethodPost, "/api/v1/sessions?wait=60s", map[string]any{"user": "alice", "workspace": "demo-huge", "zone": "zone-a"}); status != http.StatusServiceUnavailable {
		t.Errorf("a session no agent has room for: %d %v", status, out)
	}
	settled(t, g)

	before := sideEffects(t, g)
	var sm audit.Summary
	cli.runJSON(&sm, "audit", "replay", "--since", "1h", "--json")

	// The rebuild counts what PostgreSQL holds.
	var requests, staged int
	if err := g.env.DB.Get(&requests, `SELECT count(*) FROM sessions WHERE request_id IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if err := g.env.DB.Get(&staged, `SELECT count(*) FROM sessions WHERE request_id IS NOT NULL AND origin = 'staged'`); err != nil {
		t.Fatal(err)
	}
	if sm.Requests != requests || sm.Ready != requests-1 || sm.Failed != 1 || sm.FailedByReason["no_capacity"] != 1 || sm.Pending != 0 {
		t.Errorf("replay: %d requests, %d ready, %d failed %v, %d pending; the database has %d requests, all served but one (no capacity)",
			sm.Requests, sm.Ready, sm.Failed, sm.FailedByReason, sm.Pending, requests)
	}
	if sm.StagedHere+sm.StagedAlternate != staged || sm.StagedAlternate != 1 {
		t.Errorf("replay: %d staged here, %d in an alternate zone; the database has %d staged, one of them (bob's) from zone-b",
			sm.StagedHere, sm.StagedAlternate, staged)
	}
	countBy := func(query string) map[string]int {
		rows, err := g.env.DB.QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[k] = n
		}
		return out
	}
	want := countBy(`SELECT on_demand_reason, count(*) FROM sessions WHERE request_id IS NOT NULL AND origin = 'on_demand' GROUP BY 1`)
	if !maps.Equal(sm.OnDemandByReason, want) {
		t.Errorf("replay's on-demand reasons %v, the database's %v", sm.OnDemandByReason, want)
	}
	for _, reason := range []string{"no_staging_config", "none_staged", "permissions_differ:allow_audio", "incompatible:inject_ssh_keys"} {
		if sm.OnDemandByReason[reason] == 0 {
			t.Errorf("replay has no on-demand session for %s: %v", reason, sm.OnDemandByReason)
		}
	}
	if want := countBy(`SELECT setting, count(*) FROM violations GROUP BY 1`); !maps.Equal(sm.ViolationsBySetting, want) || len(want) == 0 {
		t.Errorf("replay's violations %v, the database's %v", sm.ViolationsBySetting, want)
	}
	if sm.DestroyedByCause["time_limit"] != 1 {
		t.Errorf("replay's destroyed sessions by cause %v: want frank's time_limit", sm.DestroyedByCause)
	}
	if sm.ConfigChanges["zone updated"] != 1 || sm.ConfigChanges["zone created"] != 2 {
		t.Errorf("replay's configuration changes %v", sm.ConfigChanges)
	}

	// A request's timeline: asked, decided, ready, in stream order.
	var tl []audit.Entry
	cli.runJSON(&tl, "audit", "timeline", "--request", "order-42", "--json")
	types := entryTypes(tl)
	if !slices.Contains(types, events.TypeSessionRequested) || !slices.Contains(types, events.TypeSessionAssigned) ||
		!slices.Contains(types, events.TypeSessionReady) || !slices.IsSortedFunc(tl, func(a, b audit.Entry) int { return int(a.Seq) - int(b.Seq) }) {
		t.Errorf("timeline of order-42: %v", types)
	}
	// An on-demand session's: why, its container, ready.
	var carol string
	if err := g.env.DB.Get(&carol, `SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'carol'`); err != nil {
		t.Fatal(err)
	}
	cli.runJSON(&tl, "audit", "timeline", "--session", carol, "--json")
	whys := ""
	for _, e := range tl {
		whys += e.What + "\n"
	}
	if types := entryTypes(tl); !slices.Contains(types, events.TypeProvisionRequested) || !slices.Contains(types, events.TypeContainerCreated) ||
		!slices.Contains(types, events.TypeSessionReady) || !strings.Contains(whys, "on demand (no_staging_config)") {
		t.Errorf("timeline of carol's session: %v", tl)
	}
	// A user's, as a table: frank's session and its end.
	out, code := cli.run("audit", "timeline", "--user", "frank")
	if code != 0 || !strings.Contains(out, "expired: time_limit") || !strings.Contains(out, "destroyed: time_limit") || !strings.Contains(out, "SEQ") {
		t.Errorf("timeline of frank (exit %d):\n%s", code, out)
	}

	// verify: the log, its checkpoints and PostgreSQL agree.
	out, code = cli.run("audit", "verify", "--since", "1h")
	if code != 0 || !strings.Contains(out, "agree") {
		t.Fatalf("audit verify (exit %d):\n%s", code, out)
	}
	// None of it changed what the services hold or do.
	if after := sideEffects(t, g); after != before {
		t.Errorf("the audit commands changed something:\nbefore %s\nafter  %s", before, after)
	}

	// A row edited behind Greenroom's back is named.
	var frank string
	if err := g.env.DB.Get(&frank, `SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'frank'`); err != nil {
		t.Fatal(err)
	}
	// (Not its status: the expiry service would end a "running" session
	// past its time limit again, and so put the row right.)
	g.env.DB.MustExec(`UPDATE sessions SET origin = 'staged' WHERE id = $1`, frank)
	defer g.env.DB.MustExec(`UPDATE sessions SET origin = 'on_demand' WHERE id = $1`, frank)
	out, code = cli.run("audit", "verify", "--since", "1h", "--settle", "1s")
	if code != 1 || !strings.Contains(out, frank) || !strings.Contains(out, `origin: log "on_demand", database "staged"`) {
		t.Errorf("audit verify after editing frank's session (exit %d):\n%s", code, out)
	}
}

func entryTypes(es []audit.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}
