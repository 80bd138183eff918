package audit

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/testsignal"
)

// TypeCheckpoint is the event type (and subject) of a checkpoint.
const TypeCheckpoint = events.TypeAuditCheckpoint

// Checkpoint is a row of audit_checkpoints (its event in the stream is
// events.AuditCheckpoint).
type Checkpoint struct {
	ID       int64  `db:"id"`
	FirstSeq uint64 `db:"first_seq"`
	LastSeq  uint64 `db:"last_seq"`
	Events   int    `db:"events"`
	Missing  []int64
	// FirstTime and LastTime are when the server stored the first and the
	// last event covered, for telling retention from removal.
	FirstTime time.Time `db:"first_time"`
	LastTime  time.Time `db:"last_time"`
	// StreamCreated is when the stream the events were read from was
	// created: a stream recreated since (the only way to drop events from
	// it, or to renumber them) shows.
	StreamCreated time.Time `db:"stream_created"`
	Digests       []byte    `db:"digests"`
	PrevChain     string    `db:"prev_chain"`
	Chain         string    `db:"chain"`
	// CreatedAt is when the notary wrote it (the row only).
	CreatedAt time.Time `db:"created_at"`
}

// header is what a checkpoint says besides its digests, hashed into its
// chain ahead of them so that none of it can be changed alone.
func (cp Checkpoint) header() string {
	return fmt.Sprintf("greenroom.audit.checkpoint|%d|%d|%d|%v|%d|%d|%d", cp.FirstSeq, cp.LastSeq, cp.Events, cp.Missing,
		cp.FirstTime.UnixNano(), cp.LastTime.UnixNano(), cp.StreamCreated.UnixNano())
}

// Notary defaults.
const (
	NotaryEveryDefault     = time.Minute
	NotaryMaxEventsDefault = 10000
)

// NotaryConfig configures a Notary.
type NotaryConfig struct {
	// Every is how often a checkpoint is written when there are events
	// it would cover (GREENROOM_AUDIT_CHECKPOINT_EVERY). An event altered
	// or removed before its checkpoint is written is not detected.
	Every time.Duration
	// MaxEvents bounds the events of one checkpoint; a backlog is covered
	// by several, one after the other.
	MaxEvents int
	// Source is the CloudEvents source of the checkpoint events (the
	// service running the notary, whose relay publishes them).
	Source string
}

// NotaryTestSignals fire as the notary works.
type NotaryTestSignals struct {
	// Wrote receives each checkpoint written.
	Wrote testsignal.Signal[Checkpoint]
}

// Init enables the signals.
func (ts *NotaryTestSignals) Init() { ts.Wrote.Init() }

// Notary writes checkpoints of the stream: it reads the events after the
// last checkpoint in stream order and records their digests and the hash
// chain over them, in PostgreSQL and, through the outbox, in the stream
// itself. Any number of replicas may run one; one writes at a time (an
// advisory lock), and each checkpoint continues the last.
type Notary struct {
	*startstop.Loop
	cfg  NotaryConfig
	db   *sqlx.DB
	js   jetstream.JetStream
	log  *zap.Logger
	more bool

	TestSignals NotaryTestSignals
}

// notaryLock is the advisory lock of checkpoint writing ("grnr", "audt").
const notaryLockClass, notaryLockKey = 0x67726e72, 0x61756474

// NewNotary returns a notary; Start runs it.
func NewNotary(cfg NotaryConfig, conn *sqlx.DB, js jetstream.JetStream, log *zap.Logger) *Notary {
	cfg.Every = cmp.Or(cfg.Every, NotaryEveryDefault)
	cfg.MaxEvents = cmp.Or(cfg.MaxEvents, NotaryMaxEventsDefault)
	n := &Notary{cfg: cfg, db: conn, js: js, log: log.Named("notary")}
	n.Loop = startstop.NewLoop(startstop.LoopConfig{
		Interval: cfg.Every,
		Pass: func(ctx context.Context) {
			_, more, err := n.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				n.log.Warn("audit checkpoint failed", zap.Error(err))
			}
			n.more = more
		},
		NextRun: func() time.Time {
			if n.more {
				return time.Now()
			}
			return time.Time{}
		},
	})
	return n
}

// RunOnce writes one checkpoint of the events after the last, if there are
// any besides checkpoints. more says a backlog is left for another.
func (n *Notary) RunOnce(ctx context.Context) (cp Checkpoint, more bool, err error) {
	tx, err := n.db.BeginTxx(ctx, nil)
	if err != nil {
		return cp, false, err
	}
	defer func() { _ = tx.Rollback() }()
	var mine bool
	if err := tx.GetContext(ctx, &mine, `SELECT pg_try_advisory_xact_lock($1, $2)`, notaryLockClass, notaryLockKey); err != nil {
		return cp, false, fmt.Errorf("taking the notary's lock: %w", err)
	}
	if !mine {
		return cp, false, nil
	}
	var last Checkpoint
	err = tx.GetContext(ctx, &last, `SELECT id, last_seq, chain, stream_created FROM audit_checkpoints ORDER BY id DESC LIMIT 1`)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		last.Chain = GenesisChain
	case err != nil:
		return cp, false, fmt.Errorf("reading the last checkpoint: %w", err)
	}
	st, err := n.js.Stream(ctx, bus.StreamName)
	if err != nil {
		return cp, false, fmt.Errorf("reading stream %s: %w", bus.StreamName, err)
	}
	info := st.CachedInfo()
	created := streamCreated(info)
	from := last.LastSeq + 1
	if last.ID != 0 && !created.Equal(last.StreamCreated.UTC()) {
		// The stream was recreated since the last checkpoint: its
		// sequences start again. The chain goes on over the new stream
		// from its first event; verify reports the recreation.
		n.log.Error("audit log: the stream was recreated since the last checkpoint",
			zap.Time("was_created", last.StreamCreated), zap.Time("now_created", info.Created), zap.Int64("checkpoint", last.ID))
		from = 1
	}
	// Events before the stream's first were removed by retention before
	// the notary read them (it was down longer than the max age), or never
	// were: not this range's.
	from = max(from, info.State.FirstSeq)
	var (
		digests         []Digest
		missing         []int64
		lastSeen        uint64
		firstAt, lastAt time.Time
		onlyOwn         = true
		expect          = from
	)
	state, err := Read(ctx, n.js, Range{FromSeq: from, UntilSeq: from + uint64(n.cfg.MaxEvents) - 1}, func(r Record) error {
		for s := expect; s < r.Seq; s++ {
			missing = append(missing, int64(s))
		}
		expect = r.Seq + 1
		if firstAt.IsZero() {
			firstAt = r.Time
		}
		lastSeen, lastAt = r.Seq, r.Time
		digests = append(digests, r.Digest())
		onlyOwn = onlyOwn && r.Subject == TypeCheckpoint
		return nil
	})
	if err != nil {
		return cp, false, err
	}
	if len(digests) == 0 || onlyOwn {
		return cp, false, nil
	}
	// A sequence the read skipped is missing only if the stream really has
	// no such event (and retention has not just passed it).
	missing, err = confirmMissing(ctx, st, missing)
	if err != nil {
		return cp, false, err
	}
	cp = Checkpoint{FirstSeq: from, LastSeq: lastSeen, Events: len(digests), Missing: missing,
		FirstTime: firstAt.UTC().Round(time.Microsecond), LastTime: lastAt.UTC().Round(time.Microsecond), StreamCreated: created,
		Digests: packDigests(digests), PrevChain: last.Chain}
	if cp.Chain, err = Chain(last.Chain, cp.header(), digests); err != nil {
		return cp, false, fmt.Errorf("the last checkpoint's %w", err)
	}
	if err := tx.GetContext(ctx, &cp.ID, `INSERT INTO audit_checkpoints (first_seq, last_seq, events, missing, first_time, last_time,
		stream_created, digests, prev_chain, chain)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		cp.FirstSeq, cp.LastSeq, cp.Events, pq.Array(append([]int64{}, cp.Missing...)), cp.FirstTime, cp.LastTime,
		cp.StreamCreated, cp.Digests, cp.PrevChain, cp.Chain); err != nil {
		return cp, false, fmt.Errorf("writing checkpoint: %w", err)
	}
	if _, err := outbox.Emit(ctx, tx, n.cfg.Source, TypeCheckpoint, TypeCheckpoint, checkpointEvent(cp), ""); err != nil {
		return cp, false, err
	}
	if err := n.prune(ctx, tx, cp.ID, info.Config.MaxAge); err != nil {
		return cp, false, err
	}
	if err := tx.Commit(); err != nil {
		return cp, false, fmt.Errorf("committing checkpoint: %w", err)
	}
	if len(missing) > 0 {
		n.log.Error("audit log: events missing from the stream before they were checkpointed",
			zap.Int64s("sequences", missing), zap.Int64("checkpoint", cp.ID))
	}
	n.log.Debug("audit checkpoint", zap.Int64("checkpoint", cp.ID), zap.Uint64("first_seq", cp.FirstSeq),
		zap.Uint64("last_seq", cp.LastSeq), zap.Int("events", cp.Events))
	n.TestSignals.Wrote.Signal(cp)
	return cp, lastSeen < state.LastSeq, nil
}

// confirmMissing keeps of the sequences a read skipped those the stream
// has no event for and has not passed by retention since.
func confirmMissing(ctx context.Context, st jetstream.Stream, seqs []int64) ([]int64, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", bus.StreamName, err)
	}
	var out []int64
	for _, s := range seqs {
		if uint64(s) < info.State.FirstSeq {
			continue
		}
		_, err := st.GetMsg(ctx, uint64(s))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			out = append(out, s)
		case err != nil:
			return nil, fmt.Errorf("looking for event %d: %w", s, err)
		default:
			return nil, fmt.Errorf("event %d was not read but is in the stream; the next pass reads it again", s)
		}
	}
	return out, nil
}

// prune deletes the checkpoints of events the stream no longer keeps by
// age: those written more than its max age (and a day) ago, but the one
// just written. Not by the stream's first sequence, which whoever can
// recreate the stream can set: then the checkpoints would go with the
// events they vouch for.
func (n *Notary) prune(ctx context.Context, tx *sqlx.Tx, keep int64, maxAge time.Duration) error {
	if maxAge <= 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_checkpoints WHERE created_at < now() - make_interval(secs => $1) AND id <> $2`,
		(maxAge + 24*time.Hour).Seconds(), keep); err != nil {
		return fmt.Errorf("pruning checkpoints: %w", err)
	}
	return nil
}

// checkpointEvent is the data of a checkpoint's event: the digests as
// base64.
func checkpointEvent(cp Checkpoint) events.AuditCheckpoint {
	return events.AuditCheckpoint{Checkpoint: cp.ID, FirstSeq: cp.FirstSeq, LastSeq: cp.LastSeq, Events: cp.Events,
		Missing: cp.Missing, FirstTime: cp.FirstTime, LastTime: cp.LastTime, StreamCreated: cp.StreamCreated,
		Digests: base64.StdEncoding.EncodeToString(cp.Digests), PrevChain: cp.PrevChain, Chain: cp.Chain}
}

// checkpointOf reads a checkpoint's event back.
func checkpointOf(e events.AuditCheckpoint) (Checkpoint, error) {
	digests, err := base64.StdEncoding.DecodeString(e.Digests)
	return Checkpoint{ID: e.Checkpoint, FirstSeq: e.FirstSeq, LastSeq: e.LastSeq, Events: e.Events, Missing: e.Missing,
		FirstTime: e.FirstTime, LastTime: e.LastTime, StreamCreated: e.StreamCreated, Digests: digests,
		PrevChain: e.PrevChain, Chain: e.Chain}, err
}

// LoadCheckpoints reads every checkpoint in PostgreSQL, in the order
// they were written (the chain's).
func LoadCheckpoints(ctx context.Context, conn sqlx.QueryerContext) ([]Checkpoint, error) {
	rows, err := conn.QueryxContext(ctx, `SELECT id, first_seq, last_seq, events, missing, first_time, last_time, stream_created,
		digests, prev_chain, chain, created_at FROM audit_checkpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Checkpoint
	for rows.Next() {
		var cp Checkpoint
		var missing pq.Int64Array
		if err := rows.Scan(&cp.ID, &cp.FirstSeq, &cp.LastSeq, &cp.Events, &missing, &cp.FirstTime, &cp.LastTime, &cp.StreamCreated,
			&cp.Digests, &cp.PrevChain, &cp.Chain, &cp.CreatedAt); err != nil {
			return nil, err
		}
		cp.Missing = missing
		out = append(out, cp)
	}
	return out, rows.Err()
}
