package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string `json:"invariant"`
	Subject   string `json:"subject"` // a request, session or container id, a staging config
	Detail    string `json:"detail"`
}

func (v Violation) key() string { return v.Invariant + "/" + v.Subject }

// Invariant names.
const (
	invOneOutcome     = "one_outcome"           // every accepted request: exactly one outcome
	invRefusedNone    = "refused_not_served"    // a refused request: no outcome, no session
	invExpectedReason = "expected_reason"       // a poison request: the reason it must get
	invAssignedOnce   = "session_assigned_once" // a session serves one request
	invContainerOnce  = "container_one_session" // a container serves one session
	invAckedInStream  = "acked_in_stream"       // every publish JetStream acknowledged is in the stream
	invOutboxDrained  = "outbox_drained"        // every event written is published
	invStagedDesired  = "staged_equals_desired"
	invNoLeak         = "no_leaked_container" // no container without a live session
	invNoGhost        = "no_session_without_container"
	invNoStuck        = "no_stuck_session"
	invGraceful       = "graceful_sigterm" // a SIGTERMed replica exits 0
	// invLogAgrees: the audit log, rebuilt from the stream alone, has
	// every session PostgreSQL has, as it has it (libs/audit.Compare):
	// no event was lost between a commit and its publish, whatever was
	// killed between the two.
	invLogAgrees = "log_agrees_with_database"
)

// outcomeOf is what the stream says about one request.
type outcomeOf struct {
	ready    map[string]bool // session ids of session.ready events
	readyIDs map[string]bool // distinct event ids
	failed   map[string]bool // reasons
	failIDs  map[string]bool
	// failedOf is the session id of each failure (by event id): a session
	// that failed after it was ready (its container died) is not a second
	// outcome of its request.
	failedOf map[string]string
}

// count is the number of distinct outcomes.
func (o *outcomeOf) count() int {
	if o == nil {
		return 0
	}
	n := len(o.ready)
	seen := map[string]bool{}
	for _, sid := range o.failedOf {
		switch {
		case sid == "":
			n++
		case !o.ready[sid] && !seen[sid]:
			seen[sid] = true
			n++
		}
	}
	return n
}

// streamIndex is what the checks read from the GREENROOM stream; it is
// filled incrementally.
type streamIndex struct {
	next      uint64            // first stream sequence not read yet
	requested map[uint64]string // seq → Nats-Msg-Id of session.requested
	reqIDs    map[string]bool   // request ids seen on session.requested
	outcomes  map[string]*outcomeOf
	sessions  map[string]map[string]bool // session id → request ids it was ready for
	dead      int                        // greenroom.dead.> messages
}

func newStreamIndex() *streamIndex {
	return &streamIndex{next: 1, requested: map[uint64]string{}, reqIDs: map[string]bool{},
		outcomes: map[string]*outcomeOf{}, sessions: map[string]map[string]bool{}}
}

func (x *streamIndex) outcome(id string) *outcomeOf {
	o := x.outcomes[id]
	if o == nil {
		o = &outcomeOf{ready: map[string]bool{}, readyIDs: map[string]bool{}, failed: map[string]bool{}, failIDs: map[string]bool{}, failedOf: map[string]string{}}
		x.outcomes[id] = o
	}
	return o
}

// read consumes the stream from where it stopped up to its end.
func (x *streamIndex) read(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	if last < x.next {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.TypeSessionRequested, events.TypeSessionReady, events.TypeSessionFailed, "greenroom.dead.>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    x.next,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	for x.next <= last {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			x.add(msg)
			x.next = md.Sequence.Stream + 1
			if md.NumPending == 0 {
				x.next = max(x.next, last+1)
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) && !errors.Is(batch.Error(), context.DeadlineExceeded) {
			return fmt.Errorf("fetch: %w", batch.Error())
		}
		if n == 0 {
			// Nothing on the filtered subjects up to the end.
			x.next = last + 1
		}
	}
	return nil
}

func (x *streamIndex) add(msg jetstream.Msg) {
	md, _ := msg.Metadata()
	subject := msg.Subject()
	if strings.HasPrefix(subject, "greenroom.dead.") {
		x.dead++
		return
	}
	reqID := msg.Headers().Get(events.HeaderRequestID)
	if subject == events.TypeSessionRequested {
		id := msg.Headers().Get(jetstream.MsgIDHeader)
		x.requested[md.Sequence.Stream] = id
		x.reqIDs[id] = true
		if reqID != "" {
			x.reqIDs[reqID] = true
		}
		return
	}
	ev, err := events.Decode(msg.Data())
	if err != nil {
		return
	}
	switch subject {
	case events.TypeSessionReady:
		var r events.SessionReady
		if ev.DecodeData(&r) != nil {
			return
		}
		reqID = r.RequestID
		o := x.outcome(reqID)
		o.ready[r.SessionID] = true
		o.readyIDs[ev.ID] = true
		if x.sessions[r.SessionID] == nil {
			x.sessions[r.SessionID] = map[string]bool{}
		}
		x.sessions[r.SessionID][reqID] = true
	case events.TypeSessionFailed:
		var f events.SessionFailed
		if ev.DecodeData(&f) != nil {
			return
		}
		if f.RequestID == "" {
			return // a staged session's failure: no request waits for it
		}
		o := x.outcome(f.RequestID)
		o.failed[f.Reason] = true
		o.failIDs[ev.ID] = true
		o.failedOf[ev.ID] = f.SessionID
	}
}

// check evaluates every invariant now. final is false while the phase is
// settling (a request with no outcome yet is then not counted lost).
func (r *runner) check(ctx context.Context) ([]Violation, error) {
	if err := r.idx.read(ctx, r.load.js); err != nil {
		return nil, err
	}
	var vs []Violation
	add := func(inv, subject, format string, args ...any) {
		vs = append(vs, Violation{Invariant: inv, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	reqs := r.load.requests()
	for _, q := range reqs {
		o := r.idx.outcomes[q.ID]
		outcomes := o.count()
		switch q.Status {
		case accepted:
			if outcomes == 0 {
				add(invOneOutcome, q.ID, "%s request accepted (phase %s) has no outcome in the stream", q.Via, q.Phase)
			}
			if q.Via == "bus" && q.Seq > 0 && r.idx.requested[q.Seq] != q.ID {
				add(invAckedInStream, q.ID, "acknowledged at stream seq %d, which holds %q", q.Seq, r.idx.requested[q.Seq])
			}
			if q.Via == "http" && !r.idx.reqIDs[q.ID] {
				add(invAckedInStream, q.ID, "accepted by the API (phase %s) but no session.requested in the stream", q.Phase)
			}
		case refused:
			if outcomes > 0 {
				add(invRefusedNone, q.ID, "refused with 503 + Retry-After, yet it has an outcome")
			}
		}
		if outcomes > 1 {
			add(invOneOutcome, q.ID, "%d outcomes: ready for %v, failed %v", outcomes, keys(o.ready), keys(o.failed))
		}
		if q.ExpectReason != "" && outcomes > 0 && !o.failed[q.ExpectReason] {
			add(invExpectedReason, q.ID, "want failed %s, got ready %v failed %v", q.ExpectReason, keys(o.ready), keys(o.failed))
		}
	}
	for sid, rids := range r.idx.sessions {
		if len(rids) > 1 {
			add(invAssignedOnce, sid, "session ready for %d requests: %v", len(rids), keys(rids))
		}
	}
	// PostgreSQL.
	db := r.c.db
	refusedIDs := []string{}
	for _, q := range reqs {
		if q.Status == refused {
			refusedIDs = append(refusedIDs, q.ID)
		}
	}
	for _, id := range refusedIDs {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE request_id = $1`, id).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			add(invRefusedNone, id, "refused with 503 + Retry-After, yet a session exists")
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT container_id, count(*) FROM sessions WHERE container_id <> '' GROUP BY 1 HAVING count(*) > 1`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, err
		}
		add(invContainerOnce, id, "container is the container of %d sessions", n)
	}
	rows.Close()
	var outbox int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox); err != nil {
		return nil, err
	}
	if outbox > 0 {
		add(invOutboxDrained, "outbox", "%d events written but not yet published", outbox)
	}
	rows, err = db.QueryContext(ctx, `SELECT sc.id, sc.desired_sessions, count(s.id) FILTER (WHERE s.status = 'staged')
		FROM staging_configs sc LEFT JOIN sessions s ON s.staging_config_id = sc.id GROUP BY sc.id, sc.desired_sessions`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var desired, staged int
		if err := rows.Scan(&id, &desired, &staged); err != nil {
			rows.Close()
			return nil, err
		}
		if staged != desired {
			add(invStagedDesired, id, "%d staged, desired %d", staged, desired)
		}
	}
	rows.Close()
	type sess struct{ id, status, container string }
	live := map[string]sess{} // by session id, every status
	byContainer := map[string]sess{}
	rows, err = db.QueryContext(ctx, `SELECT id, status, container_id FROM sessions`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var s sess
		if err := rows.Scan(&s.id, &s.status, &s.container); err != nil {
			rows.Close()
			return nil, err
		}
		live[s.id] = s
		if s.container != "" {
			byContainer[s.container] = s
		}
		switch s.status {
		case "provisioning", "assigning", "destroying":
			add(invNoStuck, s.id, "still %s", s.status)
		}
	}
	rows.Close()
	// Docker.
	cs, err := r.c.containers(ctx)
	if err != nil {
		return nil, err
	}
	perSession := map[string][]string{}
	present := map[string]bool{}
	for _, ct := range cs {
		present[ct.ID] = true
		perSession[ct.Session] = append(perSession[ct.Session], ct.ID)
		s, ok := live[ct.Session]
		switch {
		case !ok:
			add(invNoLeak, ct.ID, "container (%s) of session %q, which the database does not have", ct.State, ct.Session)
		case s.status == "destroyed" || s.status == "failed":
			add(invNoLeak, ct.ID, "container (%s) of session %s, which is %s", ct.State, s.id, s.status)
		case s.container != "" && s.container != ct.ID:
			add(invContainerOnce, ct.ID, "labelled for session %s, whose container is %s", s.id, s.container)
		}
		if other, ok := byContainer[ct.ID]; ok && other.id != ct.Session {
			add(invContainerOnce, ct.ID, "labelled for session %s but the container of session %s", ct.Session, other.id)
		}
	}
	for sid, ids := range perSession {
		if len(ids) > 1 {
			add(invContainerOnce, sid, "session has %d containers", len(ids))
		}
	}
	for _, s := range live {
		if (s.status == "staged" || s.status == "running") && s.container != "" && !present[s.container] {
			add(invNoGhost, s.id, "%s session whose container %s is gone", s.status, short(s.container))
		}
	}
	diffs, err := r.logDifferences(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range diffs {
		add(invLogAgrees, d.Detail, "%s", d)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].key() < vs[j].key() })
	return vs, nil
}

// logDifferences rebuilds the sessions from the whole stream and compares
// them with PostgreSQL (the runner checks again while it settles).
func (r *runner) logDifferences(ctx context.Context) ([]audit.Finding, error) {
	st := audit.NewState()
	if _, err := audit.Read(ctx, r.load.js, audit.Range{}, func(rec audit.Record) error {
		st.Apply(rec)
		return nil
	}); err != nil {
		return nil, err
	}
	return audit.Compare(ctx, sqlx.NewDb(r.c.db, "postgres"), st)
}
func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
