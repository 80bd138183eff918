package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// stored makes events 1..n as the stream stores them, one a second.
func stored(n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = Record{Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), Subject: "greenroom.session.requested",
			Header: nats.Header{"Nats-Msg-Id": {fmt.Sprint("e", i+1)}}, Payload: fmt.Appendf(nil, `{"n":%d}`, i+1)}
	}
	return out
}

// checkpointsOf checkpoints recs in pieces of size, as the notary does.
func checkpointsOf(t *testing.T, recs []Record, size int, created time.Time) []Checkpoint {
	t.Helper()
	var cps []Checkpoint
	prev := GenesisChain
	for len(recs) > 0 {
		part := recs[:min(size, len(recs))]
		recs = recs[len(part):]
		var ds []Digest
		for _, r := range part {
			ds = append(ds, r.Digest())
		}
		cp := Checkpoint{ID: int64(len(cps) + 1), FirstSeq: part[0].Seq, LastSeq: part[len(part)-1].Seq, Events: len(part),
			FirstTime: part[0].Time, LastTime: part[len(part)-1].Time, StreamCreated: created, Digests: packDigests(ds), PrevChain: prev}
		var err error
		if cp.Chain, err = Chain(prev, cp.header(), ds); err != nil {
			t.Fatal(err)
		}
		prev = cp.Chain
		cps = append(cps, cp)
	}
	return cps
}

// renumbered is recs stored again one after the other, as a stream
// rebuilt by copying them is.
func renumbered(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Seq = uint64(i + 1)
		out[i] = r
	}
	return out
}

func kinds(fs []Finding) map[string][]uint64 {
	out := map[string][]uint64{}
	for _, f := range fs {
		out[f.Kind] = append(out[f.Kind], f.Seq)
	}
	return out
}

// The check matches events by digest, so it names what was removed,
// altered or inserted however many in a row and however the stream was
// renumbered, and tells retention from removal at the head.
func TestCheckNamesEachDifferenceAndToleratesRetention(t *testing.T) {
	created := t0.Add(-time.Hour)
	all := stored(200)
	cps := checkpointsOf(t, all, 80, created)
	facts := StreamFacts{FirstSeq: 1, Created: created, MaxAge: 24 * time.Hour, MaxBytes: -1, DenyDelete: true, DenyPurge: true,
		Now: t0.Add(10 * time.Minute)}
	seqs := func(from, to uint64) []uint64 {
		var out []uint64
		for s := from; s <= to; s++ {
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		stored    []Record
		facts     func(StreamFacts) StreamFacts
		want      map[string][]uint64
		covered   int
		uncovered int
		expired   int
	}{
		{name: "untouched", stored: all, want: map[string][]uint64{}, covered: 200},
		{name: "70 in a row removed, the stream rebuilt", stored: renumbered(append(append([]Record{}, all[:100]...), all[170:]...)),
			want: map[string][]uint64{"removed": seqs(101, 170)}, covered: 130},
		{name: "one altered in place", stored: func() []Record {
			s := append([]Record{}, all...)
			s[41].Payload = []byte(`{"n":"forged"}`)
			return s
		}(), want: map[string][]uint64{"altered": {42}}, covered: 199},
		{name: "one inserted", stored: renumbered(append(append(append([]Record{}, all[:50]...), Record{Subject: "greenroom.x", Payload: []byte("{}")}), all[50:]...)),
			want: map[string][]uint64{"inserted": {51}}, covered: 200},
		// At the tail an event stored at a checkpointed sequence is taken
		// for that one, altered; an expected one with none is removed.
		{name: "the last checkpointed one replaced by a new one", stored: renumbered(append(append([]Record{}, all[:199]...), stored(3)[0])),
			want: map[string][]uint64{"altered": {200}}, covered: 199},
		{name: "the last checkpointed one removed", stored: all[:199],
			want: map[string][]uint64{"removed": {200}}, covered: 199},
		{name: "retention took the head, old enough", stored: all[50:],
			facts: func(f StreamFacts) StreamFacts { f.FirstSeq, f.Now = 51, t0.Add(25*time.Hour); return f },
			want:  map[string][]uint64{}, covered: 150, expired: 50},
		{name: "the head gone before its max age", stored: all[50:],
			facts: func(f StreamFacts) StreamFacts { f.FirstSeq = 51; return f },
			want:  map[string][]uint64{"expired": seqs(1, 50)}, covered: 150, expired: 50},
		{name: "the head gone early under a max bytes", stored: all[50:],
			facts: func(f StreamFacts) StreamFacts { f.FirstSeq, f.MaxBytes = 51, 1e9; return f },
			want:  map[string][]uint64{}, covered: 150, expired: 50},
		{name: "new events unchecked past the lag", stored: append(append([]Record{}, all...), Record{Seq: 201, Time: t0.Add(5 * time.Minute),
			Subject: "greenroom.y", Payload: []byte("{}")}),
			facts: func(f StreamFacts) StreamFacts { f.Lag = time.Minute; return f },
			want:  map[string][]uint64{"behind": {201}}, covered: 200, uncovered: 1},
		{name: "recreated without the deny flags", stored: all,
			facts: func(f StreamFacts) StreamFacts { f.DenyDelete, f.Created = false, t0; return f },
			want:  map[string][]uint64{"stream": {0, 0}}, covered: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChainChecker()
			for _, r := range tc.stored {
				c.Add(r)
			}
			f := facts
			if tc.facts != nil {
				f = tc.facts(f)
			}
			rep := c.Check(cps, f)
			got := kinds(rep.Findings)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("findings %v, want %v\n%v", got, tc.want, rep.Findings)
			}
			if rep.Covered != tc.covered || rep.Uncovered != tc.uncovered || rep.Expired != tc.expired {
				t.Errorf("covered %d uncovered %d expired %d, want %d %d %d", rep.Covered, rep.Uncovered, rep.Expired, tc.covered, tc.uncovered, tc.expired)
			}
		})
	}
}
