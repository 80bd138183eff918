package service_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// restartNATS stops the test's nats-server and, once stopped is done,
// starts it again on the same port with the same store, as an operator's
// restart would.
func (h *harness) restartNATS(stopped func()) {
	h.t.Helper()
	old := h.env.NATS
	port := old.Addr().(*net.TCPAddr).Port
	dir := old.JetStreamConfig().StoreDir
	old.Shutdown()
	old.WaitForShutdown()
	stopped()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		h.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		h.t.Fatal("nats-server did not come back")
	}
	h.t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	h.env.NATS = srv
}

// TestSessionRequestIsAcceptedDurablyWhileTheBusIsDown (issue 15): with
// nats-server down, POST /api/v1/sessions answers 202 — the request is in
// the outbox — and once the bus is back it is published, once; a request
// that cannot be written answers 503 with Retry-After, and nothing was
// sent.
func TestSessionRequestIsAcceptedDurablyWhileTheBusIsDown(t *testing.T) {
	h := newHarness(t)
	h.world()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.svc.Start(ctx); err != nil { // its outbox relay
		t.Fatal(err)
	}

	h.restartNATS(func() {
		var accepted obj
		h.must(http.StatusAccepted, "POST", "/api/v1/sessions?wait=1s", sessionRequest("request_id", "while-down"), &accepted)
		if accepted.str("request_id") != "while-down" || accepted.str("status") != "requested" {
			t.Errorf("accepted while the bus is down: %v", accepted)
		}
		var rows int
		if err := h.deps.DB.Get(&rows, `SELECT count(*) FROM outbox WHERE id = 'while-down'`); err != nil || rows != 1 {
			t.Fatalf("the accepted request is not in the outbox: %d rows (%v)", rows, err)
		}
	})

	// Back: the relay publishes it (and the stream keeps one copy, however
	// many publishes of it reached the server).
	var requests []jetstream.Msg
	apptest.Eventually(t, 60*time.Second, "the request published once the bus is back", func() bool {
		c, err := h.deps.JS.OrderedConsumer(ctx, "GREENROOM", jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TypeSessionRequested}})
		if err != nil {
			return false
		}
		batch, err := c.FetchNoWait(100)
		if err != nil {
			return false
		}
		requests = requests[:0]
		for m := range batch.Messages() {
			requests = append(requests, m)
		}
		return len(requests) > 0
	})
	var req events.SessionRequested
	h.decodeEvent(requests[0].Data(), &req)
	if len(requests) != 1 || req.RequestID != "while-down" || req.User != "alice" {
		t.Fatalf("the stream holds %d requests, the first %+v; want the one accepted while down, once", len(requests), req)
	}
	apptest.Eventually(t, 30*time.Second, "the outbox row gone once published", func() bool {
		return h.outboxRows() == 0
	})

	// The database unreachable: not accepted, 503 with Retry-After, and
	// nothing on the bus.
	if err := h.deps.DB.Close(); err != nil {
		t.Fatal(err)
	}
	res := h.call("POST", "/api/v1/sessions?wait=0", sessionRequest("request_id", "db-down"))
	if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("with the database down: %d, Retry-After %q: %s", res.Status, res.Header.Get("Retry-After"), res.Body)
	}
	if got := h.events.Find(events.TypeSessionRequested, "db-down"); len(got) != 0 {
		t.Errorf("a request refused with 503 was sent: %d", len(got))
	}
}
