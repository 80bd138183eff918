package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// publishGarbage publishes raw on subject as another CloudEvents client
// would (not through a Publisher, which refuses what is not exactly as the
// schemas describe), marked so the recorder does not count it as an event
// Greenroom published.
func publishGarbage(t *testing.T, nc *nats.Conn, subject, raw string) {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(raw)
	msg.Header.Set(apptest.HeaderTestGarbage, "1")
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
}

// A consumer hands its handler every spec-valid CloudEvent whose data
// matches its schema: one without the optional attributes (as a
// CloudEvents SDK or `nats pub` sends it) and one with fields a newer
// writer added, in the envelope and in data (issue 15).
func TestConsumerHandsOnSpecValidEventsWithoutOptionalAttributesOrWithUnknownFields(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	rec := apptest.NewRecorder(t, deps.NC)
	var mu sync.Mutex
	got := map[string]bus.Message{}
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: "lenient", FilterSubjects: []string{"greenroom.config.changed.>"}, MaxDeliver: 1,
	}, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		var ch events.ConfigChanged
		if err := m.Event.DecodeData(&ch); err != nil {
			return err
		}
		mu.Lock()
		got[ch.Name] = m
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, c)
	const id = "0190c0de-0000-7000-8000-000000000001"
	publishGarbage(t, deps.NC, "greenroom.config.changed.zone",
		`{"specversion":"1.0","id":"bare-1","source":"nats-cli","type":"greenroom.config.changed",
		  "data":{"kind":"zone","op":"created","id":"`+id+`","name":"bare","actor":{"type":"system","name":"nats-cli"}}}`)
	publishGarbage(t, deps.NC, "greenroom.config.changed.zone",
		`{"specversion":"1.0","id":"newer-1","source":"greenroom/config","type":"greenroom.config.changed",
		  "time":"2030-01-02T03:04:05Z","dataschema":"urn:greenroom:schema:config.changed:1",
		  "datacontenttype":"application/json; charset=utf-8","traceparent":"00-x","added_in_v2":{"a":1},
		  "data":{"kind":"zone","op":"created","id":"`+id+`","name":"newer","actor":{"type":"admin_token"},"added_in_v2":[1,2]}}`)
	apptest.Eventually(t, 10*time.Second, "both events handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	if dead := rec.Find(bus.DeadLetterSubject("lenient"), ""); len(dead) != 0 {
		t.Fatalf("dead-lettered %d spec-valid events: %s", len(dead), dead[0].Raw)
	}
	mu.Lock()
	defer mu.Unlock()
	bare, newer := got["bare"], got["newer"]
	// Without a time, an event is as old as its message in the stream.
	if !bare.Event.Time.IsZero() || bare.Published.IsZero() || !bare.Time().Equal(bare.Published) {
		t.Errorf("bare event: time %v, published %v, Time() %v", bare.Event.Time, bare.Published, bare.Time())
	}
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !newer.Time().Equal(want) {
		t.Errorf("newer event: Time() = %v, want its own time %v", newer.Time(), want)
	}
}

// A message that does not decode or match its schema goes to
// ConsumerConfig.Invalid when set: answered (nil) it is acknowledged and
// not dead-lettered; refused (Permanent) it is dead-lettered with the
// refusal as the reason; a transient error is retried. Without Invalid it
// is dead-lettered as before.
func TestInvalidMessagesGoToTheInvalidHandler(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	rec := apptest.NewRecorder(t, deps.NC)
	var mu sync.Mutex
	seen := map[string][]error{}
	handled := 0
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: "answers", FilterSubjects: []string{"greenroom.session.requested"}, MaxDeliver: 3,
		Invalid: func(ctx context.Context, m bus.Message) error {
			id := events.ReadRequestID(m.Data)
			mu.Lock()
			seen[id] = append(seen[id], m.Invalid)
			n := len(seen[id])
			mu.Unlock()
			switch {
			case id == "":
				return bus.Permanent(errors.New("no request_id to answer: " + m.Invalid.Error()))
			case id == "flaky" && n == 1:
				return errors.New("database down")
			}
			return nil
		},
	}, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		mu.Lock()
		handled++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, c)
	const subject = "greenroom.session.requested"
	publishGarbage(t, deps.NC, subject, `{"specversion":"1.0","id":"a","source":"t","type":"greenroom.session.requested","data":{"request_id":"answered","user":7}}`)
	publishGarbage(t, deps.NC, subject, `{"specversion":"1.0","id":"b","source":"t","type":"greenroom.session.requested","data":{"request_id":"flaky"}}`)
	publishGarbage(t, deps.NC, subject, `not json`)
	apptest.Eventually(t, 10*time.Second, "the unreadable message dead-lettered", func() bool {
		return len(rec.Find(bus.DeadLetterSubject("answers"), "")) == 1
	})
	apptest.Eventually(t, 10*time.Second, "the flaky answer retried", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen["flaky"]) == 2
	})
	// A valid request after them: once it is handled, the others were too.
	publishGarbage(t, deps.NC, subject, `{"specversion":"1.0","id":"c","source":"t","type":"greenroom.session.requested",
		"data":{"request_id":"ok","user":"u","workspace":"w","zone":"z"}}`)
	apptest.Eventually(t, 10*time.Second, "the valid request handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled == 1
	})
	mu.Lock()
	defer mu.Unlock()
	var se *events.SchemaError
	if errs := seen["answered"]; len(errs) != 1 || !errors.As(errs[0], &se) || !strings.Contains(strings.Join(se.Fields(), ","), "data.user") {
		t.Errorf("the invalid request was given %v, want once, naming data.user", errs)
	}
	dead := rec.Find(bus.DeadLetterSubject("answers"), "")
	var d events.DeadLetter
	if err := dead[0].Event.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if d.Payload != "not json" || !strings.Contains(d.Reason, "no request_id to answer") {
		t.Errorf("dead letter %+v", d)
	}
	if n := len(rec.Find(bus.DeadLetterSubject("answers"), "")); n != 1 {
		t.Errorf("%d dead letters, want only the unreadable message's", n)
	}
}
