package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/bus"
)

const auditScenarioName = "audit"

// auditScenario (issue 16) measures what the audit log costs and how fast
// it is read back:
//
//   - the stream's bytes and events per request, from real requests
//     through every service (a staged session handed over with its assign
//     exec, then destroyed through the API, and the pool refilled): the
//     disk a million requests take, and the checkpoints' share in
//     PostgreSQL;
//   - the time to rebuild (audit replay), to checkpoint (the notary) and
//     to verify (rebuild, compare with PostgreSQL, check every digest) logs
//     of 100,000 and 1,000,000 events, made of copies of those real
//     requests' events with fresh ids (and their sessions' rows copied in
//     PostgreSQL, so that verify compares a log and a database that agree).
func auditScenario(quick bool) error {
	requests, sizes := 100, []int{100_000, 1_000_000}
	if quick {
		requests, sizes = 20, []int{100_000}
	}
	e, err := startEnv(envFull)
	if err != nil {
		return err
	}
	defer e.close()
	if _, _, err := e.fixture(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	nc, err := nats.Connect(e.NatsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := e.create("/api/v1/workspaces", e.workspace("audit")); err != nil {
		return err
	}
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("audit", 2))
	if err != nil {
		return err
	}
	if _, err := e.waitStaged(scID, 2, 5*time.Minute); err != nil {
		return err
	}
	before, err := streamState(ctx, js)
	if err != nil {
		return err
	}
	diskBefore, err := dirSize(e.NATS.StoreDir())
	if err != nil {
		return err
	}
	// Requests one after the other, each session destroyed once it is
	// ready, the pool refilled before the next.
	var sessions []string
	for i := range requests {
		if interrupted() {
			return nil
		}
		status, s, err := e.call(http.MethodPost, "/api/v1/sessions?wait=60s", map[string]any{
			"user": e.User, "workspace": e.name("audit"), "zone": e.Zone, "request_id": fmt.Sprintf("audit-%d-%s", i, e.Label[:8])})
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("POST /api/v1/sessions: %d %v", status, s)
		}
		id, _ := s["id"].(string)
		sessions = append(sessions, id)
		if err := e.destroySessions([]string{id}); err != nil {
			return err
		}
		if _, err := e.waitStaged(scID, 2, 5*time.Minute); err != nil {
			return err
		}
	}
	if !until(2*time.Minute, func() bool {
		var live int
		_ = e.DB.Get(&live, `SELECT count(*) FROM sessions WHERE id = ANY($1) AND status <> 'destroyed'`, pq.Array(sessions))
		var queued int
		_ = e.DB.Get(&queued, `SELECT count(*) FROM outbox`)
		return live == 0 && queued == 0
	}) {
		return fmt.Errorf("the sessions were not all destroyed and their events published within 2 minutes")
	}
	after, err := streamState(ctx, js)
	if err != nil {
		return err
	}
	diskAfter, err := dirSize(e.NATS.StoreDir())
	if err != nil {
		return err
	}
	perRequestBytes := float64(after.Bytes-before.Bytes) / float64(requests)
	perRequestDisk := float64(diskAfter-diskBefore) / float64(requests)
	perRequestEvents := float64(after.Msgs-before.Msgs) / float64(requests)
	add(auditScenarioName, "stream events per request (served staged, destroyed, pool refilled)", perRequestEvents, "events", 0, 0, "", nil)
	add(auditScenarioName, "stream bytes per request", perRequestBytes, "bytes", 0, 0, "", nil)
	add(auditScenarioName, "stream size per million requests (the stream's bytes)", perRequestBytes*1e6/1e9, "GB", 0, 0, "", nil)
	add(auditScenarioName, "disk per million requests (nats-server's store directory)", perRequestDisk*1e6/1e9, "GB", 0, 0, "", nil)
	// One digest an event: its bytes per request, times a million requests, in MB.
	add(auditScenarioName, "checkpoint digests in PostgreSQL per million requests", perRequestEvents*audit.DigestSize, "MB", 0, 0, "", nil)

	// The real requests' events, the template of the synthetic logs.
	var tmpl []audit.Record
	if _, err := audit.Read(ctx, js, audit.Range{FromSeq: before.LastSeq + 1}, func(r audit.Record) error {
		if r.Subject != audit.TypeCheckpoint {
			tmpl = append(tmpl, r)
		}
		return nil
	}); err != nil {
		return err
	}
	// The copies must not reach the services (the assigner would serve
	// their requests again): only the log and the database are measured.
	e.stopServices()
	for _, size := range sizes {
		if interrupted() {
			return nil
		}
		if err := auditAt(ctx, e, js, tmpl, size); err != nil {
			return fmt.Errorf("%d events: %w", size, err)
		}
	}
	return nil
}

func streamState(ctx context.Context, js jetstream.JetStream) (jetstream.StreamState, error) {
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return s.CachedInfo().State, nil
}

// auditAt grows the log to size events with copies of tmpl, then times
// the notary, a replay and a verify over all of it.
func auditAt(ctx context.Context, e *env, js jetstream.JetStream, tmpl []audit.Record, size int) error {
	state, err := streamState(ctx, js)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for n := int(state.Msgs); n < size && !interrupted(); n += len(tmpl) {
		if err := publishCopy(ctx, e, js, tmpl); err != nil {
			return err
		}
	}
	state, err = streamState(ctx, js)
	if err != nil {
		return err
	}
	note("audit: log of %d events (%.0f MB) written in %s", state.Msgs, float64(state.Bytes)/1e6, time.Since(t0).Round(time.Second))
	label := fmt.Sprintf("%dk events", state.Msgs/1000)

	// The notary, as the config service runs it, until it has covered
	// the log (the service's own notary may take turns with it).
	notary := audit.NewNotary(audit.NotaryConfig{Source: "greenroom/config"}, e.DB, js, zap.NewNop())
	t0 = time.Now()
	for idle := 0; ; {
		cp, more, err := notary.RunOnce(ctx)
		if err != nil {
			return err
		}
		if more || cp.ID != 0 {
			idle = 0
			continue
		}
		var covered uint64
		if err := e.DB.Get(&covered, `SELECT COALESCE(max(last_seq), 0) FROM audit_checkpoints`); err != nil {
			return err
		}
		if covered+1000 >= state.LastSeq {
			break
		}
		if idle++; idle > 100 {
			return fmt.Errorf("the notary covers up to seq %d of %d and writes no more", covered, state.LastSeq)
		}
		time.Sleep(50 * time.Millisecond)
	}
	add(auditScenarioName, "checkpoints written, "+label, time.Since(t0).Seconds(), "s", 0, 0, "", nil)

	t0 = time.Now()
	st := audit.NewState()
	if _, err := audit.Read(ctx, js, audit.Range{}, func(r audit.Record) error { st.Apply(r); return nil }); err != nil {
		return err
	}
	replay := time.Since(t0)
	add(auditScenarioName, "replay (rebuild in memory), "+label, replay.Seconds(), "s", 0, 0, "", nil)
	add(auditScenarioName, "replay rate, "+label, float64(state.Msgs)/replay.Seconds(), "events/s", 0, 0, "", nil)

	t0 = time.Now()
	st = audit.NewState()
	chain := audit.NewChainChecker()
	if _, err := audit.Read(ctx, js, audit.Range{}, func(r audit.Record) error { chain.Add(r); st.Apply(r); return nil }); err != nil {
		return err
	}
	diffs, err := audit.Compare(ctx, e.DB, st)
	if err != nil {
		return err
	}
	cps, err := audit.LoadCheckpoints(ctx, e.DB)
	if err != nil {
		return err
	}
	info, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return err
	}
	rep := chain.Check(cps, audit.FactsOf(info.CachedInfo(), 0))
	verify := time.Since(t0)
	add(auditScenarioName, "verify (rebuild, compare, digests), "+label, verify.Seconds(), "s", 0, 0, "", nil)
	note("audit: verify of %s: %d sessions compared, %d differences, %d checkpoints covering %d events, %d findings",
		label, len(st.Sessions), len(diffs), rep.Checkpoints, rep.Covered, len(rep.Findings))
	if len(diffs) > 0 {
		note("audit: first difference: %s", diffs[0])
	}
	return nil
}

// publishCopy publishes tmpl again with fresh event, session and request
// ids, and copies the sessions' rows under their new ids (a request id
// gets its session's new id's first 8 characters as a suffix, in the
// events and in the row alike).
func publishCopy(ctx context.Context, e *env, js jetstream.JetStream, tmpl []audit.Record) error {
	type ids struct {
		ID   string `json:"id"`
		Data struct {
			SessionID string `json:"session_id"`
			RequestID string `json:"request_id"`
		} `json:"data"`
	}
	repl := map[string]string{}
	sessionOf := map[string]string{}
	var olds, news []string
	for _, r := range tmpl {
		var ev ids
		if json.Unmarshal(r.Payload, &ev) != nil {
			continue
		}
		repl[ev.ID] = uuid.NewString()
		if s := ev.Data.SessionID; s != "" && repl[s] == "" {
			repl[s] = uuid.NewString()
			olds, news = append(olds, s), append(news, repl[s])
		}
		if ev.Data.RequestID != "" && ev.Data.SessionID != "" {
			sessionOf[ev.Data.RequestID] = ev.Data.SessionID
		}
	}
	for q, s := range sessionOf {
		repl[q] = q + "-" + repl[s][:8]
	}
	for _, r := range tmpl {
		p := r.Payload
		h := nats.Header{}
		for k, v := range r.Header {
			h[k] = append([]string(nil), v...)
		}
		for old, nu := range repl {
			if bytes.Contains(p, []byte(old)) {
				p = bytes.ReplaceAll(p, []byte(`"`+old+`"`), []byte(`"`+nu+`"`))
			}
			for k, v := range h {
				for i := range v {
					if v[i] == old {
						h[k][i] = nu
					}
				}
			}
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: r.Subject, Header: h, Data: p}); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := e.DB.ExecContext(ctx, `INSERT INTO sessions (id, request_id, workspace_id, zone_id, agent_id, staging_config_id,
		user_id, container_id, host_port, url, origin, status, permissions, cores, memory_mb, failure_reason, created_at,
		updated_at, staged_at, assigned_at, running_at, expires_at, destroyed_at, on_demand_reason, requester)
		SELECT n.id, CASE WHEN s.request_id IS NULL THEN NULL ELSE s.request_id || '-' || left(n.id::text, 8) END,
		workspace_id, zone_id, agent_id, staging_config_id, user_id, container_id, host_port, url, origin, status, permissions,
		cores, memory_mb, failure_reason, now(), now(), staged_at, assigned_at, running_at, expires_at, destroyed_at,
		on_demand_reason, requester
		FROM unnest($1::uuid[], $2::uuid[]) AS n(old, id) JOIN sessions s ON s.id = n.old`, pq.Array(olds), pq.Array(news))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return fmt.Errorf("copying the sessions' rows: %w (%s)", err, pqErr.Detail)
	}
	return err
}

// dirSize is the bytes the files under dir take.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}
