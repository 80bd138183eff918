// Package audittest tampers with the audit log for tests the way an
// administrator of the NATS server could: JetStream denies deleting an
// event, so the stream is copied, deleted and published again without some
// events and with others changed.
package audittest

import (
	"bytes"
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

// Rebuild recreates the GREENROOM stream (with Greenroom's limits and deny
// flags) from its own events, leaving out the sequences in drop and
// replacing, in the payload of each sequence in alter, old with new.
func Rebuild(t testing.TB, js jetstream.JetStream, drop []uint64, alter map[uint64][2]string) {
	t.Helper()
	ctx := context.Background()
	var all []audit.Record
	if _, err := audit.Read(ctx, js, audit.Range{}, func(r audit.Record) error {
		all = append(all, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, bus.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Apply(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	dropped := map[uint64]bool{}
	for _, s := range drop {
		dropped[s] = true
	}
	for _, r := range all {
		if dropped[r.Seq] {
			continue
		}
		payload := r.Payload
		if a, ok := alter[r.Seq]; ok {
			payload = bytes.Replace(payload, []byte(a[0]), []byte(a[1]), 1)
		}
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: r.Subject, Header: r.Header, Data: payload}); err != nil {
			t.Fatal(err)
		}
	}
}
