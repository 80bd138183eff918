// Package outbox makes state changes and the events announcing them
// inseparable: Enqueue writes the event in the caller's transaction, and the
// Relay publishes committed events to JetStream (Nats-Msg-Id = event id)
// before deleting them. A crash between publish and delete republishes the
// same id, which the stream's duplicate window drops, so nothing is lost and
// nothing is announced twice.
package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/testsignal"
)

// NotifyChannel is the PostgreSQL channel the outbox trigger notifies.
const NotifyChannel = "greenroom_outbox"

// Enqueue stores ev, to be published on subject once tx commits. requestID,
// when set, travels in the Greenroom-Request-Id header.
func Enqueue(ctx context.Context, tx sqlx.ExecerContext, subject string, ev events.Event, requestID string) error {
	payload, err := ev.Marshal()
	if err != nil {
		return fmt.Errorf("encoding %s for outbox: %w", ev.Type, err)
	}
	headers := map[string]string{}
	if requestID != "" {
		headers[events.HeaderRequestID] = requestID
	}
	hdr, _ := json.Marshal(headers)
	// In a transaction of Direct.InTx the committer publishes the row
	// itself; relays leave it alone for the grace period, counted from
	// now rather than from the transaction's start.
	var grace any
	b := batchOf(ctx)
	if b != nil {
		grace = b.grace.Seconds()
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO outbox (id, subject, payload, headers, publish_after)
		VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5)) ON CONFLICT (id) DO NOTHING`,
		ev.ID, subject, string(payload), string(hdr), grace)
	if err != nil {
		return fmt.Errorf("writing %s to outbox: %w", ev.Type, err)
	}
	if b != nil {
		b.rows = append(b.rows, row{ID: ev.ID, Subject: subject, Payload: payload, Headers: hdr})
	}
	return nil
}

// Emit builds an event of eventType from data and enqueues it: the usual
// one-line way for a service to announce a change inside its transaction.
func Emit(ctx context.Context, tx sqlx.ExecerContext, source, subject, eventType string, data any, requestID string) (events.Event, error) {
	ev, err := events.New(source, eventType, data)
	if err != nil {
		return events.Event{}, err
	}
	return ev, Enqueue(ctx, tx, subject, ev, requestID)
}

// Relay defaults.
const (
	RelayPollIntervalDefault = time.Second
	// relayBusyRetry is how soon a relay that found another publishing a
	// partition looks again: the other may have fetched its rows before
	// the commit that woke this one, and the poll interval is long to wait
	// for that.
	relayBusyRetry        = 50 * time.Millisecond
	RelayBatchSizeDefault = 256
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// PollInterval is the safety-net period between passes; passes also run
	// at once on each insert (LISTEN/NOTIFY).
	PollInterval time.Duration
	// BatchSize bounds the events published per partition per pass.
	BatchSize int
	// DatabaseURL is used for the LISTEN connection.
	DatabaseURL string
	// Source, when set, restricts the relay to the rows whose event has
	// this CloudEvents source ("greenroom/assigner"): the events its own
	// service wrote, the only subjects its NATS user may publish (README,
	// "NATS users"). Empty: every row.
	Source string
}

// Partitions is the number of partitions the outbox is published in. An
// event's partition is a hash of its aggregate (PartitionSQL): its
// session, else its request; the events of neither (configuration changes,
// shortfalls) share one partition, so that they keep the order they were
// written in among themselves (a policy's change before the changes of the
// workspaces it announces). So every event of one session is in one
// partition. A relay publishes its own service's rows (RelayConfig.Source),
// and one relay of a service at a time publishes a partition of its rows
// (an advisory lock per service and partition), oldest row first, so a
// service's events of one partition reach the stream in the order they
// were written (events of one session written by different services are
// published by their own relays, each in its order); a service's relays
// work on different partitions at once, so its publishing scales with its
// replicas up to this number. Every relay of a deployment must use the same value:
// it is a constant, not a setting.
const Partitions = 16

// relayLockClass is the first key of the partition locks, "grnr"; the
// second is the source's hash with the partition in its low bits
// (publishPartition).
const relayLockClass = 0x67726e72

// PartitionSQL is the SQL expression of an outbox row's partition (0 to
// Partitions-1), computed from the row's columns: a hash of its session
// id, else its request id, else of one key shared by every other event
// (Partitions is a power of 2).
var PartitionSQL = fmt.Sprintf(`(hashtext(COALESCE(NULLIF(payload->'data'->>'session_id', ''),
	NULLIF(payload->'data'->>'request_id', ''), 'greenroom')) & %d)`, Partitions-1)

// RelayResult counts what one pass did.
type RelayResult struct {
	Published int
	// Partitions is the number of partitions this relay published from.
	Partitions int
	// Busy is true when another relay was publishing a partition that has
	// rows; it publishes what this one would have there.
	Busy bool
	// More is true when a partition had more rows than a batch.
	More bool
}

// RelayTestSignals fire as the relay works; tests wait on them instead of
// sleeping. Call Init to enable them.
type RelayTestSignals struct {
	// PassDone receives each pass's result.
	PassDone testsignal.Signal[RelayResult]
}

// Init enables the signals; without it they cost nothing.
func (ts *RelayTestSignals) Init() { ts.PassDone.Init() }

// Relay publishes committed outbox rows. Any number of replicas may run
// one, in every service: the outbox is published in Partitions partitions
// by aggregate (see Partitions), each by one relay at a time, so relays
// share the work, and each keeps a session's events in the order they were
// written. It is a startstop.Loop: a pass on every notification and on
// each poll tick.
type Relay struct {
	*startstop.Loop
	cfg      RelayConfig
	db       *sqlx.DB
	pub      *bus.Publisher
	log      *zap.Logger
	listener *pq.Listener
	busy     bool // the last pass found another relay publishing

	// TestSignals fire as passes finish.
	TestSignals RelayTestSignals
}

// NewRelay returns a relay; call Start to run it.
func NewRelay(cfg RelayConfig, conn *sqlx.DB, pub *bus.Publisher, log *zap.Logger) *Relay {
	cfg.PollInterval = cmp.Or(cfg.PollInterval, RelayPollIntervalDefault)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, RelayBatchSizeDefault)
	r := &Relay{cfg: cfg, db: conn, pub: pub, log: log.Named("outbox")}
	r.Loop = startstop.NewLoop(startstop.LoopConfig{
		Interval: cfg.PollInterval, Pass: r.pass, Starting: r.listen, Stopping: r.closeListener,
		NextRun: func() time.Time {
			if r.busy {
				return time.Now().Add(relayBusyRetry)
			}
			return time.Time{}
		},
	})
	return r
}

// listen turns the committers' notifications into passes; without them
// the relay polls only.
func (r *Relay) listen(ctx context.Context) {
	if r.cfg.DatabaseURL == "" {
		return
	}
	l := pq.NewListener(r.cfg.DatabaseURL, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			r.log.Warn("outbox listener", zap.Error(err))
		}
	})
	if err := l.Listen(NotifyChannel); err != nil {
		r.log.Warn("outbox listen failed; polling only", zap.Error(err))
	}
	r.listener = l
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-l.Notify:
				if !ok {
					return
				}
				r.Trigger()
			}
		}
	}()
}

func (r *Relay) closeListener() {
	if r.listener != nil {
		_ = r.listener.Close()
		r.listener = nil
	}
}

// pass publishes batches until no partition has more than a batch left.
func (r *Relay) pass(ctx context.Context) {
	for {
		res, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay pass failed", zap.Error(err))
		}
		r.TestSignals.PassDone.Signal(res)
		r.busy = res.Busy
		if err != nil || !res.More {
			return
		}
	}
}

// DeadLetterSubject receives outbox events that could not be published.
const DeadLetterSubject = "greenroom.dead.outbox"

func (r *Relay) deadLetter(ctx context.Context, rw row, cause error) error {
	ev, err := events.NewWithID("dead-outbox-"+rw.ID, "greenroom/outbox", events.TypeDeadLetter, events.DeadLetter{
		Consumer: "outbox", Subject: rw.Subject, Reason: cause.Error(), Payload: string(rw.Payload),
	})
	if err != nil {
		return err
	}
	_, err = r.pub.Publish(ctx, DeadLetterSubject, ev, "")
	return err
}

type row struct {
	Seq     int64  `db:"seq"`
	ID      string `db:"id"`
	Subject string `db:"subject"`
	Payload []byte `db:"payload"`
	Headers []byte `db:"headers"`
}

// RunOnce publishes one batch of committed events, oldest first, from
// each partition that has some and that no other relay is publishing.
func (r *Relay) RunOnce(ctx context.Context) (RelayResult, error) {
	// The partitions with rows to publish now, in an order of this pass's
	// own, so that relays woken together start on different partitions.
	//
	// Both this listing and the fetches look at the window of the oldest
	// Partitions × BatchSize rows only (read along the primary key), so a
	// backlog of any size costs no more per pass. A partition's rows in the
	// window are its oldest, so its order holds.
	var parts []int
	if err := r.db.SelectContext(ctx, &parts, `SELECT DISTINCT `+PartitionSQL+` FROM (
		SELECT payload, subject FROM outbox WHERE `+r.due()+`
		ORDER BY seq LIMIT $1) w`, r.window(), r.cfg.Source); err != nil {
		return RelayResult{}, fmt.Errorf("listing outbox partitions: %w", err)
	}
	rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	var res RelayResult
	for _, p := range parts {
		n, busy, err := r.publishPartition(ctx, p)
		res.Published += n
		res.Busy = res.Busy || busy
		if n > 0 {
			res.Partitions++
		}
		if n >= r.cfg.BatchSize {
			res.More = true
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// window is how many of the oldest rows a pass looks at.
func (r *Relay) window() int { return Partitions * r.cfg.BatchSize }

// due is the condition of the rows this relay publishes now: its own
// source's ($2, read along outbox_source_seq_idx), when it has one.
func (r *Relay) due() string {
	const now = `(publish_after IS NULL OR publish_after <= now())`
	if r.cfg.Source == "" {
		return now + ` AND $2 = ''`
	}
	return `source = $2 AND ` + now
}

// publishPartition publishes one batch of partition p, unless another
// relay holds it (busy).
func (r *Relay) publishPartition(ctx context.Context, p int) (published int, busy bool, err error) {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("beginning outbox pass: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// One relay at a time per partition, so that the stream (the audit
	// log) holds a partition's events — every event of a session among
	// them — in the order they were written. Across partitions, and for
	// events their committer publishes (Direct), the stream's order is the
	// order of publication, so it may hold a session's session.assigned
	// before the session.staged a relay had not published yet; the
	// events' CloudEvents times, set in transactions that committed one
	// after the other, keep the order.
	//
	// The transaction's commit only deletes published rows: if a database
	// crash loses it, the rows are published again under the same ids,
	// exactly as after a relay crash between publish and delete. So it need
	// not wait for the WAL flush, which would hold up the next pass (and
	// the events behind it) on every commit.
	var mine bool
	// The partitions of each source are locked apart (the second key's
	// low bits are the partition), so relays of different services never
	// wait for each other.
	if err := tx.GetContext(ctx, &mine, `SELECT pg_try_advisory_xact_lock($1, (hashtext($3) & ~$4::int) | $2)
		AND set_config('synchronous_commit', 'off', true) = 'off'`, relayLockClass, p, r.cfg.Source, Partitions-1); err != nil {
		return 0, false, fmt.Errorf("taking the lock of outbox partition %d: %w", p, err)
	}
	if !mine {
		return 0, true, nil
	}
	// Rows of the partition committed after the listing are taken too;
	// FOR UPDATE SKIP LOCKED leaves out a row its committer (Direct) is
	// deleting after publishing it.
	var rows []row
	if err := tx.SelectContext(ctx, &rows,
		`SELECT seq, id, subject, payload, headers FROM outbox
		WHERE seq IN (SELECT seq FROM outbox WHERE `+strings.ReplaceAll(r.due(), "$2", "$4")+`
			ORDER BY seq LIMIT $3)
		AND `+PartitionSQL+` = $2
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
		r.cfg.BatchSize, p, r.window(), r.cfg.Source); err != nil {
		return 0, false, fmt.Errorf("fetching outbox rows of partition %d: %w", p, err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	done := make([]int64, 0, len(rows))
	var pubErr error
	for _, rw := range rows {
		_, err := r.pub.PublishRaw(ctx, rw.Subject, rw.ID, rw.Payload, headerRequestID(rw.Headers))
		if errors.Is(err, events.ErrSchema) {
			// A bug wrote an event that breaks its contract. Retrying cannot
			// fix it and would block every event behind it: report it on the
			// dead-letter subject (so it is kept and seen) and move on.
			r.log.Error("outbox event does not match its schema; dead-lettered", zap.String("id", rw.ID), zap.Error(err))
			err = r.deadLetter(ctx, rw, err)
		}
		if err != nil {
			pubErr = err
			break
		}
		done = append(done, rw.Seq)
	}
	if len(done) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, pq.Array(done)); err != nil {
			return 0, false, fmt.Errorf("deleting published outbox rows: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, false, fmt.Errorf("committing outbox pass: %w", err)
		}
	}
	return len(done), false, pubErr
}
