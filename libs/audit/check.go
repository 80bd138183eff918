package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Finding is one difference verify reports.
type Finding struct {
	// Kind: removed, altered, inserted (an event in a checkpointed range
	// that no checkpoint recorded), checkpoint (a checkpoint that does not
	// hold together, or differs from its copy), missing (gone before it
	// was checkpointed), expired (gone from the head of the stream before
	// its max age), stream (the stream recreated, or its deny flags off),
	// behind (events the notary has not checkpointed for too long), or,
	// from Compare, a difference with PostgreSQL (session, violation).
	Kind string `json:"kind"`
	// Seq is the stream sequence concerned, when there is one.
	Seq    uint64 `json:"seq,omitempty"`
	Detail string `json:"detail"`
}

func (f Finding) String() string {
	if f.Seq != 0 {
		return fmt.Sprintf("%s at seq %d: %s", f.Kind, f.Seq, f.Detail)
	}
	return f.Kind + ": " + f.Detail
}

// ChainReport is what CheckChain found.
type ChainReport struct {
	Checkpoints int `json:"checkpoints"`
	// Covered is the number of events the checkpoints vouch for and the
	// stream still holds; Uncovered those after the last checkpoint;
	// Expired those retention took from the head of the stream; Older
	// those the stream holds from before the first checkpoint kept.
	Covered   int       `json:"covered"`
	Uncovered int       `json:"uncovered"`
	Expired   int       `json:"expired"`
	Older     int       `json:"older"`
	Findings  []Finding `json:"findings"`
}

// StreamFacts is what the check needs to know of the stream as it is now.
type StreamFacts struct {
	FirstSeq              uint64
	Created               time.Time
	MaxAge                time.Duration
	MaxBytes              int64
	DenyDelete, DenyPurge bool
	// Now is the server's clock.
	Now time.Time
	// Lag is how long an event may stay unchecked before the notary is
	// reported behind; 0 does not check.
	Lag time.Duration
}

// FactsOf reads the facts off a stream's info.
func FactsOf(info *jetstream.StreamInfo, lag time.Duration) StreamFacts {
	return StreamFacts{FirstSeq: info.State.FirstSeq, Created: streamCreated(info), MaxAge: info.Config.MaxAge,
		MaxBytes: info.Config.MaxBytes, DenyDelete: info.Config.DenyDelete, DenyPurge: info.Config.DenyPurge,
		Now: info.TimeStamp, Lag: lag}
}

// seen is an event as read from the stream, for Check.
type seen struct {
	seq     uint64
	at      time.Time
	digest  Digest
	subject string
	id      string // the CloudEvent id, "" when undecodable
}

// ChainChecker collects the stream's events (Add, in stream order) and
// compares them with the checkpoints (Check).
type ChainChecker struct {
	events []seen
	// streamCheckpoints are the checkpoint events found in the stream, by
	// number.
	streamCheckpoints map[int64]Checkpoint
}

// NewChainChecker returns an empty checker.
func NewChainChecker() *ChainChecker {
	return &ChainChecker{streamCheckpoints: map[int64]Checkpoint{}}
}

// Add records one event of the stream.
func (c *ChainChecker) Add(r Record) {
	s := seen{seq: r.Seq, at: r.Time, digest: r.Digest(), subject: r.Subject}
	if ev, err := r.Event(); err == nil {
		s.id = ev.ID
		var e events.AuditCheckpoint
		if ev.Type == TypeCheckpoint && json.Unmarshal(ev.Data, &e) == nil {
			if cp, err := checkpointOf(e); err == nil {
				c.streamCheckpoints[cp.ID] = cp
			}
		}
	}
	c.events = append(c.events, s)
}

// expected is an event a checkpoint recorded.
type expected struct {
	seq    uint64
	digest Digest
	cp     *Checkpoint
}

// Check compares the events added with the checkpoints of PostgreSQL (in
// the order they were written). Every checkpoint must continue the one
// before, hash to its chain with its own fields and digests, and equal
// its copy in the stream; the stream must be the one the last checkpoint
// was read from, with deletes and purges denied; and the stored events
// must be, digest for digest, those the checkpoints recorded. Events are
// matched by digest, not by sequence, so that an event removed or altered
// is named even when the stream was rebuilt around it.
func (c *ChainChecker) Check(cps []Checkpoint, f StreamFacts) ChainReport {
	rep := ChainReport{Checkpoints: len(cps)}
	add := func(kind string, seq uint64, format string, args ...any) {
		rep.Findings = append(rep.Findings, Finding{Kind: kind, Seq: seq, Detail: fmt.Sprintf(format, args...)})
	}
	if !f.DenyDelete || !f.DenyPurge {
		add("stream", 0, "the stream allows deleting events or purging (deny_delete %v, deny_purge %v): it was recreated without them", f.DenyDelete, f.DenyPurge)
	}
	var exp []expected
	for i := range cps {
		cp := &cps[i]
		ds, ok := unpackDigests(cp.Digests)
		if !ok || len(ds) != cp.Events {
			add("checkpoint", cp.LastSeq, "checkpoint %d records %d bytes of digests for %d events", cp.ID, len(cp.Digests), cp.Events)
			continue
		}
		if i > 0 && cp.PrevChain != cps[i-1].Chain {
			add("checkpoint", cp.FirstSeq, "checkpoint %d does not continue checkpoint %d (a checkpoint was removed or altered)", cp.ID, cps[i-1].ID)
		}
		if i > 0 && !cp.StreamCreated.Equal(cps[i-1].StreamCreated) {
			add("stream", cp.FirstSeq, "the stream was recreated between checkpoints %d and %d (created %s, then %s)",
				cps[i-1].ID, cp.ID, cps[i-1].StreamCreated.UTC().Format(time.RFC3339), cp.StreamCreated.UTC().Format(time.RFC3339))
		}
		if got, err := Chain(cp.PrevChain, cp.header(), ds); err != nil || got != cp.Chain {
			add("checkpoint", cp.FirstSeq, "checkpoint %d does not hash to its chain (the checkpoint was altered)", cp.ID)
		}
		if sc, ok := c.streamCheckpoints[cp.ID]; ok && (sc.Chain != cp.Chain || sc.FirstSeq != cp.FirstSeq || sc.LastSeq != cp.LastSeq ||
			sc.Events != cp.Events || !slices.Equal(sc.Missing, cp.Missing) || !sc.StreamCreated.Equal(cp.StreamCreated) ||
			!bytes.Equal(sc.Digests, cp.Digests)) {
			add("checkpoint", cp.FirstSeq, "checkpoint %d differs between PostgreSQL (seq %d–%d, %d events, chain %.12s…) and its copy in the stream (seq %d–%d, %d events, chain %.12s…)",
				cp.ID, cp.FirstSeq, cp.LastSeq, cp.Events, cp.Chain, sc.FirstSeq, sc.LastSeq, sc.Events, sc.Chain)
		}
		for _, m := range cp.Missing {
			add("missing", uint64(m), "the stream had no event %d when checkpoint %d was written (removed before it was checkpointed)", m, cp.ID)
		}
		missing := map[uint64]bool{}
		for _, m := range cp.Missing {
			missing[uint64(m)] = true
		}
		k := 0
		for s := cp.FirstSeq; s <= cp.LastSeq && k < len(ds); s++ {
			if !missing[s] {
				exp = append(exp, expected{seq: s, digest: ds[k], cp: cp})
				k++
			}
		}
	}
	if n := len(cps); n > 0 && !cps[n-1].StreamCreated.Equal(f.Created) {
		add("stream", 0, "the stream was recreated (created %s) after checkpoint %d, which was read from the stream created %s",
			f.Created.UTC().Format(time.RFC3339), cps[n-1].ID, cps[n-1].StreamCreated.UTC().Format(time.RFC3339))
	}
	if len(cps) > 0 {
		for id, sc := range c.streamCheckpoints {
			if id > cps[0].ID && !slices.ContainsFunc(cps, func(cp Checkpoint) bool { return cp.ID == id }) {
				add("checkpoint", sc.FirstSeq, "checkpoint %d is in the stream but not in PostgreSQL (removed there)", id)
			}
		}
	}
	c.match(exp, f, &rep, add)
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int { return cmp.Compare(a.Seq, b.Seq) })
	return rep
}

// match pairs the expected events with those stored, by digest and in
// order, and reports what is left over: between two matched events, an
// expected and a stored one side by side are an event altered, and the
// rest are removed (expected) or inserted (stored).
func (c *ChainChecker) match(exp []expected, f StreamFacts, rep *ChainReport, add func(string, uint64, string, ...any)) {
	act := c.events
	at := make(map[Digest][]int, len(act))
	for j, a := range act {
		at[a.digest] = append(at[a.digest], j)
	}
	type pair struct{ i, j int }
	var pairs []pair
	lastJ := -1
	for i, e := range exp {
		js := at[e.digest]
		for len(js) > 0 && js[0] <= lastJ {
			js = js[1:]
		}
		if len(js) == 0 {
			continue
		}
		pairs = append(pairs, pair{i, js[0]})
		lastJ = js[0]
		at[e.digest] = js[1:]
	}
	rep.Covered = len(pairs)
	// gap reports the unmatched expected events es and stored events as
	// found between two matched ones.
	gap := func(es []expected, as []seen) {
		for len(es) > 0 && len(as) > 0 {
			add("altered", as[0].seq, "event %s (%s) does not match the digest checkpointed at seq %d (checkpoint %d)",
				cmp.Or(as[0].id, "-"), as[0].subject, es[0].seq, es[0].cp.ID)
			es, as = es[1:], as[1:]
		}
		for _, e := range es {
			add("removed", e.seq, "the event checkpointed at seq %d (checkpoint %d) is no longer in the stream", e.seq, e.cp.ID)
		}
		for _, a := range as {
			add("inserted", a.seq, "event %s (%s) is not among the events the checkpoints recorded", cmp.Or(a.id, "-"), a.subject)
		}
	}
	// The head: stored events from before the first checkpoint kept are
	// older than the checkpoints; expected events retention took are not
	// differences unless they left before the stream's max age.
	firstI, firstJ := len(exp), len(act)
	if len(pairs) > 0 {
		firstI, firstJ = pairs[0].i, pairs[0].j
	}
	es := exp[:firstI]
	for len(es) > 0 && es[0].seq < f.FirstSeq {
		cp := es[0].cp
		if f.MaxAge > 0 && f.MaxBytes <= 0 && cp.FirstTime.Add(f.MaxAge).After(f.Now.Add(time.Minute)) {
			add("expired", es[0].seq, "event %d is gone from the head of the stream, yet the oldest event of its checkpoint (%d) was stored %s ago, within the max age %s",
				es[0].seq, cp.ID, f.Now.Sub(cp.FirstTime).Round(time.Second), f.MaxAge)
		}
		rep.Expired++
		es = es[1:]
	}
	as := act[:firstJ]
	if len(exp) > 0 {
		for len(as) > 0 && as[0].seq < exp[0].seq {
			rep.Older++
			as = as[1:]
		}
	}
	if len(exp) > 0 {
		gap(es, as)
	}
	for k := 1; k < len(pairs); k++ {
		gap(exp[pairs[k-1].i+1:pairs[k].i], act[pairs[k-1].j+1:pairs[k].j])
	}
	// The tail: an expected event past the last matched one was altered
	// if an event is stored at its sequence, else removed; what else is
	// stored past the last matched event is new since the checkpoints.
	tailI, tailJ := firstI, firstJ
	if len(pairs) > 0 {
		tailI, tailJ = pairs[len(pairs)-1].i+1, pairs[len(pairs)-1].j+1
	}
	rest := act[tailJ:]
	for _, e := range exp[tailI:] {
		if len(rest) > 0 && rest[0].seq == e.seq {
			gap([]expected{e}, rest[:1])
			rest = rest[1:]
			continue
		}
		gap([]expected{e}, nil)
	}
	uncovered := rest
	if len(exp) == 0 {
		uncovered = act // no checkpoint yet
	}
	rep.Uncovered = len(uncovered)
	// Checkpoints of the notary's own are expected after the last one.
	for _, u := range uncovered {
		if u.subject == TypeCheckpoint {
			continue
		}
		if f.Lag > 0 && f.Now.Sub(u.at) > f.Lag {
			add("behind", u.seq, "%d events from seq %d on are not checkpointed, the first stored %s ago (the notary runs in the config service: is it up?)",
				len(uncovered), u.seq, f.Now.Sub(u.at).Round(time.Second))
		}
		break
	}
}

// streamCreated is when the stream was created, to the microsecond, as
// the checkpoints keep it.
func streamCreated(info *jetstream.StreamInfo) time.Time {
	return info.Created.UTC().Round(time.Microsecond)
}
