package audit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/audit/audittest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

func readAll(t *testing.T, js jetstream.JetStream) []audit.Record {
	t.Helper()
	var out []audit.Record
	if _, err := audit.Read(context.Background(), js, audit.Range{}, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func check(t *testing.T, js jetstream.JetStream, cps []audit.Checkpoint) audit.ChainReport {
	t.Helper()
	c := audit.NewChainChecker()
	for _, r := range readAll(t, js) {
		c.Add(r)
	}
	info, err := js.Stream(context.Background(), bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(cps, audit.FactsOf(info.CachedInfo(), time.Hour))
}

// The notary checkpoints what the stream holds; verify then names an
// event removed and one altered through a privileged path (the stream
// deleted by an administrator and published again without the one and with
// the other changed), and a checkpoint altered in PostgreSQL.
func TestChecksNameAnEventRemovedAndOneAlteredAfterTheirCheckpoint(t *testing.T) {
	ctx := context.Background()
	conn, _ := dbtest.New(t)
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Apply(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, nil)
	for i := range 30 {
		ev, err := events.New("greenroom/test", events.TypeSessionRequested, events.SessionRequested{
			RequestID: fmt.Sprintf("r%d", i), User: "alice", Workspace: "demo", Zone: "zone-a"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, events.TypeSessionRequested, ev, ev.ID); err != nil {
			t.Fatal(err)
		}
	}
	n := audit.NewNotary(audit.NotaryConfig{Source: "greenroom/test", MaxEvents: 20}, conn, js, zap.NewNop())
	first, more, err := n.RunOnce(ctx)
	if err != nil || !more || first.Events != 20 || first.FirstSeq != 1 || first.LastSeq != 20 || first.PrevChain != audit.GenesisChain {
		t.Fatalf("first checkpoint %+v, more %v, err %v", first, more, err)
	}
	second, more, err := n.RunOnce(ctx)
	if err != nil || more || second.Events != 10 || second.FirstSeq != 21 || second.PrevChain != first.Chain {
		t.Fatalf("second checkpoint %+v, more %v, err %v", second, more, err)
	}
	// The checkpoints' own events reach the stream through the outbox.
	relay := outbox.NewRelay(outbox.RelayConfig{Source: "greenroom/test"}, conn, pub, zap.NewNop())
	if res, err := relay.RunOnce(ctx); err != nil || res.Published != 2 {
		t.Fatalf("publishing the checkpoints: %+v %v", res, err)
	}
	// Only they are new: no checkpoint of checkpoints.
	if cp, _, err := n.RunOnce(ctx); err != nil || cp.ID != 0 {
		t.Fatalf("a pass with nothing new but checkpoints wrote checkpoint %+v (%v)", cp, err)
	}
	cps, err := audit.LoadCheckpoints(ctx, conn)
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoints %v, %v", cps, err)
	}
	if rep := check(t, js, cps); len(rep.Findings) != 0 || rep.Covered != 30 || rep.Uncovered != 2 {
		t.Fatalf("untouched log: %+v", rep)
	}

	// The privileged path: JetStream denies deleting one event, so the
	// administrator copies the stream, deletes it and publishes it again
	// without event 10 and with event 25's data changed.
	audittest.Rebuild(t, js, []uint64{10}, map[uint64][2]string{25: {`"alice"`, `"mallory"`}})
	rep := check(t, js, cps)
	want := []audit.Finding{
		{Kind: "stream", Seq: 0}, // recreated after the last checkpoint
		{Kind: "removed", Seq: 10},
		{Kind: "altered", Seq: 24}, // event 25, now stored at 24
	}
	if len(rep.Findings) != len(want) {
		t.Fatalf("findings %v, want %v", rep.Findings, want)
	}
	for i, w := range want {
		if got := rep.Findings[i]; got.Kind != w.Kind || got.Seq != w.Seq {
			t.Errorf("finding %d: %v, want %s at %d", i, got, w.Kind, w.Seq)
		}
	}
	if rep.Covered != 28 {
		t.Errorf("covered %d, want 28", rep.Covered)
	}

	// A checkpoint altered in PostgreSQL to cover up the change is caught
	// too: its digests no longer hash to its chain.
	if _, err := conn.ExecContext(ctx, `UPDATE audit_checkpoints SET digests = overlay(digests placing '\x0000000000000000'::bytea from 33 for 8) WHERE id = $1`, second.ID); err != nil {
		t.Fatal(err)
	}
	cps, _ = audit.LoadCheckpoints(ctx, conn)
	var found []string
	for _, f := range check(t, js, cps).Findings {
		if f.Kind == "checkpoint" {
			found = append(found, f.Detail)
		}
	}
	if len(found) != 2 || !strings.Contains(found[0]+found[1], fmt.Sprintf("checkpoint %d does not hash to its chain", second.ID)) ||
		!strings.Contains(found[0]+found[1], fmt.Sprintf("checkpoint %d differs between PostgreSQL", second.ID)) {
		t.Errorf("an altered checkpoint: %q", found)
	}
}

// A digest covers the subject, every header and the payload.
func TestDigestCoversSubjectHeadersAndPayload(t *testing.T) {
	h := nats.Header{"Nats-Msg-Id": {"a"}, "Greenroom-Request-Id": {"r1"}}
	base := audit.DigestOf("greenroom.session.ready", h, []byte(`{"x":1}`))
	for name, d := range map[string]audit.Digest{
		"subject": audit.DigestOf("greenroom.session.failed", h, []byte(`{"x":1}`)),
		"header":  audit.DigestOf("greenroom.session.ready", nats.Header{"Nats-Msg-Id": {"b"}, "Greenroom-Request-Id": {"r1"}}, []byte(`{"x":1}`)),
		"payload": audit.DigestOf("greenroom.session.ready", h, []byte(`{"x":2}`)),
	} {
		if d == base {
			t.Errorf("changing the %s leaves the digest alone", name)
		}
	}
	if audit.DigestOf("greenroom.session.ready", nats.Header{"Greenroom-Request-Id": {"r1"}, "Nats-Msg-Id": {"a"}}, []byte(`{"x":1}`)) != base {
		t.Errorf("the digest depends on the order of the headers")
	}
}

// Read reads what its range says, in order, and ends at the last event
// stored when it began; two notaries at once write one checkpoint.
func TestReadKeepsToItsRangeAndOneNotaryWritesAtATime(t *testing.T) {
	ctx := context.Background()
	conn, _ := dbtest.New(t)
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Read(ctx, js, audit.Range{}, func(audit.Record) error { return nil }); err != audit.ErrNoStream {
		t.Fatalf("read without the stream: %v", err)
	}
	if _, err := stream.Apply(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	if st, err := audit.Read(ctx, js, audit.Range{}, func(audit.Record) error { t.Error("an event in an empty stream"); return nil }); err != nil || st.Msgs != 0 {
		t.Fatalf("read of an empty stream: %+v %v", st, err)
	}
	pub := bus.NewPublisher(js, nil)
	var cut time.Time
	for i := range 10 {
		subject, eventType, data := events.TypeSessionRequested, events.TypeSessionRequested, any(events.SessionRequested{
			RequestID: fmt.Sprint("r", i), User: "alice", Workspace: "demo", Zone: "zone-a"})
		if i%2 == 1 {
			subject, eventType, data = events.TypeSessionKeepalive, events.TypeSessionKeepalive, events.SessionKeepalive{SessionID: s1}
		}
		ev, err := events.New("greenroom/test", eventType, data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, subject, ev, ""); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			time.Sleep(20 * time.Millisecond)
			cut = time.Now()
			time.Sleep(20 * time.Millisecond)
		}
	}
	seqs := func(r audit.Range) []uint64 {
		var out []uint64
		if _, err := audit.Read(ctx, js, r, func(rec audit.Record) error {
			out = append(out, rec.Seq)
			// Events stored meanwhile are past the end of this read.
			if len(out) == 1 {
				ev, _ := events.New("greenroom/test", events.TypeSessionKeepalive, events.SessionKeepalive{SessionID: s1})
				if _, err := pub.Publish(ctx, events.TypeSessionKeepalive, ev, ""); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for name, tc := range map[string]struct {
		r    audit.Range
		want string
	}{
		"from a sequence up to another": {audit.Range{FromSeq: 3, UntilSeq: 5}, "[3 4 5]"},
		"up to a time":                  {audit.Range{Until: cut}, "[1 2 3 4 5 6]"},
		"from a time, one subject":      {audit.Range{Since: cut, Subjects: []string{events.TypeSessionRequested}}, "[7 9]"},
	} {
		if got := fmt.Sprint(seqs(tc.r)); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}

	// Two replicas' notaries at once: one writes, the other finds the lock
	// taken and writes nothing; the chain is one.
	a := audit.NewNotary(audit.NotaryConfig{Source: "greenroom/test"}, conn, js, zap.NewNop())
	b := audit.NewNotary(audit.NotaryConfig{Source: "greenroom/test"}, conn, js, zap.NewNop())
	var wrote [2]audit.Checkpoint
	var wg sync.WaitGroup
	for i, n := range []*audit.Notary{a, b} {
		wg.Go(func() {
			cp, _, err := n.RunOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			wrote[i] = cp
		})
	}
	wg.Wait()
	cps, err := audit.LoadCheckpoints(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 1 || (wrote[0].ID == 0) == (wrote[1].ID == 0) {
		t.Errorf("two notaries wrote %v and %v; PostgreSQL has %d checkpoints", wrote[0].ID, wrote[1].ID, len(cps))
	}
}
