package stream_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

func newJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func limits(t *testing.T, js jetstream.JetStream) stream.Config {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return stream.Of(info.Config)
}

func TestEnsureCreatesAnAbsentStreamWithTheDefaults(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	if _, created, err := stream.Ensure(ctx, js, 0); err != nil || !created {
		t.Fatalf("first Ensure: created %v, %v", created, err)
	}
	if got, want := limits(t, js), (stream.Config{}).WithDefaults(); got != want {
		t.Fatalf("limits %+v, want the defaults %+v", got, want)
	}
	if _, created, err := stream.Ensure(ctx, js, 0); err != nil || created {
		t.Fatalf("second Ensure: created %v, %v", created, err)
	}
}

// TestServicesNeverChangeTheStreamsLimits: what migrate set stays, whatever
// the services that start afterwards are configured with.
func TestServicesNeverChangeTheStreamsLimits(t *testing.T) {
	env := apptest.New(t)
	ctx := context.Background()
	first := env.Deps(t, "first")
	set := stream.Config{MaxAge: 3 * time.Hour, Duplicates: time.Minute, Replicas: 1}
	if _, err := stream.Apply(ctx, first.JS, set); err != nil {
		t.Fatal(err)
	}
	// A replica started with other settings, and one with none.
	other := env.Settings()
	other.StreamReplicas = 3 // would fail on this single server if it were applied
	for _, name := range []string{"assigner", "provisioner"} {
		env.Deps(t, name) // connects as app.Connect does at every start
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	d, err := app.Connect(cctx, "other", other, first.Log, 5*time.Second)
	if err != nil {
		t.Fatalf("a service with other stream settings must start on the existing stream: %v", err)
	}
	defer d.Close()
	if got := limits(t, first.JS); got != set.WithDefaults() {
		t.Fatalf("after services started the limits are %+v, want migrate's %+v", got, set)
	}
}

func TestApplySetsTheLimitsAndSaysWhatChanged(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	ch, err := stream.Apply(ctx, js, stream.Config{})
	if err != nil || !ch.Created || ch.Config != (stream.Config{}).WithDefaults() {
		t.Fatalf("first Apply: %+v %v", ch, err)
	}
	if ch, err := stream.Apply(ctx, js, stream.Config{}); err != nil || ch.Created || len(ch.Changed) != 0 {
		t.Fatalf("second Apply of the same limits: %+v %v", ch, err)
	}
	ch, err = stream.Apply(ctx, js, stream.Config{MaxAge: 24 * time.Hour, Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Changed, []string{"max_age 720h0m0s → 24h0m0s", "duplicates 2m0s → 5m0s"}) {
		t.Fatalf("changed %q", ch.Changed)
	}
	if got := limits(t, js); got.MaxAge != 24*time.Hour || got.Duplicates != 5*time.Minute {
		t.Fatalf("limits now %+v", got)
	}
	// A stream made by a service before migrate ran gets migrate's limits.
	js2 := newJS(t)
	if _, _, err := stream.Ensure(ctx, js2, 1); err != nil {
		t.Fatal(err)
	}
	if ch, err := stream.Apply(ctx, js2, stream.Config{MaxAge: 90 * 24 * time.Hour}); err != nil || ch.Created || len(ch.Changed) != 1 {
		t.Fatalf("Apply after Ensure: %+v %v", ch, err)
	}
}

func TestApplyRefusesImpossibleLimits(t *testing.T) {
	js := newJS(t)
	for _, c := range []stream.Config{
		{MaxAge: -time.Hour},
		{MaxAge: time.Minute, Duplicates: time.Hour},
		{Replicas: 7},
	} {
		if _, err := stream.Apply(context.Background(), js, c); err == nil || !strings.Contains(err.Error(), "stream") {
			t.Errorf("%+v: %v, want a refusal", c, err)
		}
	}
	if _, err := js.Stream(context.Background(), bus.StreamName); err == nil {
		t.Fatal("a refused Apply created the stream")
	}
}

// TestTheStreamDeniesDeletesAndPurgesAndTakesAMaxBytes: the audit log
// loses events by age or size only. Apply turns the deny flags on for a
// stream made before them, and JetStream then refuses to delete one event
// or purge them, and to turn the flags back off.
func TestTheStreamDeniesDeletesAndPurgesAndTakesAMaxBytes(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	// A stream as an earlier version made it: no deny flags.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: bus.StreamName, Subjects: []string{"greenroom.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "greenroom.session.keepalive", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	size, err := stream.ParseBytes("5GB")
	if err != nil || size != 5_000_000_000 {
		t.Fatalf("ParseBytes(5GB) = %d, %v", size, err)
	}
	ch, err := stream.Apply(ctx, js, stream.Config{MaxBytes: size})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ch.Changed, func(c string) bool { return strings.HasPrefix(c, "deny_delete") }) ||
		!slices.ContainsFunc(ch.Changed, func(c string) bool { return strings.HasPrefix(c, "max_bytes") }) {
		t.Errorf("Apply changed %v, want the deny flags and max_bytes", ch.Changed)
	}
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.DenyDelete || !info.Config.DenyPurge || info.Config.MaxBytes != size {
		t.Fatalf("stream config: deny_delete %v, deny_purge %v, max_bytes %d", info.Config.DenyDelete, info.Config.DenyPurge, info.Config.MaxBytes)
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Errorf("an event was deleted from the stream")
	}
	if err := s.Purge(ctx); err == nil {
		t.Errorf("the stream was purged")
	}
	if info, _ := s.Info(ctx); info == nil || info.State.Msgs != 1 {
		t.Errorf("the stream lost its event")
	}
	off := info.Config
	off.DenyDelete, off.DenyPurge = false, false
	if _, err := js.UpdateStream(ctx, off); err == nil {
		t.Errorf("the deny flags were turned off")
	}
	// Applying again changes nothing; -1 is no bound.
	if ch, err := stream.Apply(ctx, js, stream.Config{MaxBytes: size}); err != nil || len(ch.Changed) != 0 {
		t.Errorf("second Apply: %+v, %v", ch, err)
	}
	if n, err := stream.ParseBytes("-1"); err != nil || n != -1 || stream.FormatBytes(n) != "unlimited" {
		t.Errorf("ParseBytes(-1) = %d, %v", n, err)
	}
	if _, err := stream.ParseBytes("lots"); err == nil {
		t.Errorf("ParseBytes(lots) succeeded")
	}
}
