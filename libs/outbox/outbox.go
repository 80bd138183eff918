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
	// relayBusyRetry is how soon a relay that found another publishing
	// looks again: the other may have fetched its rows before the commit
	// that woke this one, and the poll interval is long to wait for that.
	relayBusyRetry        = 50 * time.Millisecond
	RelayBatchSizeDefault = 256
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// PollInterval is the safety-net period between passes; passes also run
	// at once on each insert (LISTEN/NOTIFY).
	PollInterval time.Duration
	// BatchSize bounds the events published per pass.
	BatchSize int
	// DatabaseURL is used for the LISTEN connection.
	DatabaseURL string
}

// relayLockKey is the advisory lock held by the relay publishing now.
const relayLockKey = 0x6772_6e72_6f6f_6d01 // "grnroom" 1

// RelayResult counts what one pass did.
type RelayResult struct {
	Published int
	// Busy is true when another relay was publishing; it publishes what
	// this one would have.
	Busy bool
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
// one: rows are taken with FOR UPDATE SKIP LOCKED. It is a startstop.Loop:
// a pass on every notification and on each poll tick.
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

// pass publishes batches until a batch is not full.
func (r *Relay) pass(ctx context.Context) {
	for {
		res, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay pass failed", zap.Error(err))
		}
		r.TestSignals.PassDone.Signal(res)
		r.busy = res.Busy
		if err != nil || res.Published < r.cfg.BatchSize {
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

// RunOnce publishes one batch of committed events, oldest first.
func (r *Relay) RunOnce(ctx context.Context) (RelayResult, error) {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return RelayResult{}, fmt.Errorf("beginning outbox pass: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// One relay at a time, across every service and replica, so that the
	// stream (the audit log) holds the events it publishes in the order
	// they were committed. Events their committer publishes (Direct) are
	// in the order of their publication instead, so the stream may hold a
	// session's session.assigned before the session.staged a relay had
	// not published yet; their CloudEvents times, set in the transactions
	// that committed one after the other, keep the order.
	//
	// The pass's commit only deletes published rows: if a database crash
	// loses it, the rows are published again under the same ids, exactly as
	// after a relay crash between publish and delete. So it need not wait
	// for the WAL flush, which would hold up the next pass (and the events
	// behind it) on every commit.
	var mine bool
	if err := tx.GetContext(ctx, &mine, `SELECT pg_try_advisory_xact_lock($1)
		AND set_config('synchronous_commit', 'off', true) = 'off'`, relayLockKey); err != nil {
		return RelayResult{}, fmt.Errorf("taking the relay lock: %w", err)
	}
	if !mine {
		return RelayResult{Busy: true}, nil
	}
	var rows []row
	if err := tx.SelectContext(ctx, &rows,
		`SELECT seq, id, subject, payload, headers FROM outbox
		WHERE publish_after IS NULL OR publish_after <= now()
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
		r.cfg.BatchSize); err != nil {
		return RelayResult{}, fmt.Errorf("fetching outbox rows: %w", err)
	}
	if len(rows) == 0 {
		return RelayResult{}, nil
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
			return RelayResult{}, fmt.Errorf("deleting published outbox rows: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return RelayResult{}, fmt.Errorf("committing outbox pass: %w", err)
		}
	}
	return RelayResult{Published: len(done)}, pubErr
}
