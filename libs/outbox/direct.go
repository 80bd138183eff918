package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// DirectGraceDefault is how long relays leave a row written in
// Direct.InTx to its committer: far longer than a publish takes, short
// enough that an event whose committer died is still published within
// seconds.
const DirectGraceDefault = 5 * time.Second

// Direct runs transactions whose events their committer publishes itself,
// right after the commit. It is for the hot path of a hand-off, where a
// relay would add a hop: the commit's NOTIFY wakes it, and it reads the
// rows back, in a transaction of its own, before it publishes them.
//
// The events are still written to the outbox in the transaction, with a
// publish_after a grace period ahead, so the state and its events commit
// together as ever. A committer that publishes deletes its rows; one that
// dies between commit and publish, or cannot publish, leaves them to the
// relays once the grace is over. A publish that both did is stored once
// (Nats-Msg-Id = event id, within the stream's duplicate window: 2 minutes
// by default, far above the grace).
//
// Only the transaction InTx runs may write through the ctx it passes: an
// Enqueue on another transaction with that ctx would be published by this
// one's commit.
type Direct struct {
	db    *sqlx.DB
	pub   *bus.Publisher
	log   *zap.Logger
	grace time.Duration
}

// NewDirect returns a Direct publishing through pub; grace 0 takes
// DirectGraceDefault.
func NewDirect(conn *sqlx.DB, pub *bus.Publisher, log *zap.Logger, grace time.Duration) *Direct {
	if grace <= 0 {
		grace = DirectGraceDefault
	}
	return &Direct{db: conn, pub: pub, log: log.Named("outbox"), grace: grace}
}

// batch collects the events of one Direct transaction.
type batch struct {
	grace time.Duration
	rows  []row
}

type batchKey struct{}

func batchOf(ctx context.Context) *batch {
	b, _ := ctx.Value(batchKey{}).(*batch)
	return b
}

// InTx runs fn in one transaction (db.InTx) and, once it has committed,
// publishes the events fn wrote with Enqueue or Emit through the ctx it
// was given. A nil Direct runs fn in a plain transaction, its events left
// to the relays. The error is fn's or the commit's: a failed publish is
// logged and left to the relays, for the state has committed.
func (d *Direct) InTx(ctx context.Context, conn *sqlx.DB, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	if d == nil {
		return db.InTx(ctx, conn, func(tx *sqlx.Tx) error { return fn(ctx, tx) })
	}
	b := &batch{grace: d.grace}
	err := db.InTx(ctx, conn, func(tx *sqlx.Tx) error {
		return fn(context.WithValue(ctx, batchKey{}, b), tx)
	})
	if err != nil || len(b.rows) == 0 {
		return err
	}
	if err := d.publish(ctx, b.rows); err != nil {
		d.log.Warn("events left to the outbox relay", zap.Int("events", len(b.rows)), zap.Duration("within", d.grace), zap.Error(err))
	}
	return nil
}

// publish publishes rows in order and deletes those published. An event
// breaking its schema stops it: the relay dead-letters it.
func (d *Direct) publish(ctx context.Context, rows []row) error {
	// Past the caller's cancellation: the state has committed, and its
	// events are better out now than after the grace.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.grace)
	defer cancel()
	ids := make([]string, 0, len(rows))
	var pubErr error
	for _, rw := range rows {
		if _, err := d.pub.PublishRaw(ctx, rw.Subject, rw.ID, rw.Payload, headerRequestID(rw.Headers)); err != nil {
			pubErr = err
			break
		}
		ids = append(ids, rw.ID)
	}
	if len(ids) > 0 {
		// Without waiting for the WAL flush (set for this statement's own
		// transaction): a delete lost in a database crash only has a relay
		// publish the same ids again after the grace, which the stream
		// drops if that is within its duplicate window, as for the relay's
		// own delete. Waiting would cost the committer a second flush per
		// transaction.
		if _, err := d.db.ExecContext(ctx, `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
			DELETE FROM outbox WHERE id = ANY($1) AND EXISTS (SELECT 1 FROM async)`, pq.Array(ids)); err != nil {
			// Published; a relay publishes them again after the grace,
			// and the stream drops the duplicates.
			return fmt.Errorf("deleting published outbox rows: %w", err)
		}
	}
	return pubErr
}

// headerRequestID is the request id an outbox row's headers carry, for the
// Greenroom-Request-Id header of its message; "" when none.
func headerRequestID(raw []byte) string {
	var hdr map[string]string
	_ = json.Unmarshal(raw, &hdr)
	return hdr[events.HeaderRequestID]
}
