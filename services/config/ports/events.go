package ports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/services/config/app"
)

const (
	// eventBuffer is how far a browser may fall behind the bus before its
	// stream ends (and it reloads its view).
	eventBuffer = 256
	// eventHeartbeat keeps idle streams open through proxies, and tells a
	// browser the stream is alive.
	eventHeartbeat = 15 * time.Second
	// eventWriteTimeout bounds one write: a client that stops reading is
	// dropped instead of holding its handler (and the server's shutdown).
	eventWriteTimeout = 10 * time.Second
	// eventStreamMaxAge ends every stream after a while; the client
	// reconnects, which checks its token again (a deleted or expired API
	// key stops hearing events within this time).
	eventStreamMaxAge = 15 * time.Minute
)

// events serves GET /api/v1/events: the bus's events as Server-Sent
// Events, each named by its CloudEvents type (or its subject when it is
// not an event) with the event as its data, for the admin console's live
// views. The stream starts with a "ready" event; a stream that ends
// without the client closing it lost events (the client fell behind, or
// the service is stopping, the stream reached its maximum age): reconnect
// and reload. open counts the streams open.
func events(feed app.EventFeed, open prometheus.Gauge) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		evs, cancel := feed.Subscribe(eventBuffer)
		defer cancel()
		open.Inc()
		defer open.Dec()
		// Each write gets its own deadline (where the connection allows
		// one: not under httptest's recorder).
		send := func(write func() error) bool {
			_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
			return write() == nil && rc.Flush() == nil
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		text := func(s string) func() error {
			return func() error { _, err := fmt.Fprint(w, s); return err }
		}
		if !send(text("retry: 2000\nevent: ready\ndata: {}\n\n")) {
			return
		}
		heartbeat := time.NewTicker(eventHeartbeat)
		defer heartbeat.Stop()
		maxAge := time.NewTimer(eventStreamMaxAge)
		defer maxAge.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-maxAge.C:
				return
			case <-heartbeat.C:
				if !send(text(": heartbeat\n\n")) {
					return
				}
			case ev, ok := <-evs:
				if !ok {
					return
				}
				if !send(func() error { return writeEvent(w, ev) }) {
					return
				}
			}
		}
	}
}

// writeEvent writes ev as one Server-Sent Event: its JSON on one data line.
func writeEvent(w http.ResponseWriter, ev app.BusEvent) error {
	var head struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	name, data := ev.Subject, ev.Data
	if json.Unmarshal(ev.Data, &head) == nil && head.Type != "" {
		name = head.Type
	}
	if !json.Valid(data) {
		// Not JSON (a poison message): its subject and size, not its bytes.
		data, _ = json.Marshal(map[string]any{"subject": ev.Subject, "bytes": len(ev.Data)})
	} else if compact, err := compactJSON(data); err == nil {
		data = compact
	}
	if head.ID != "" {
		if _, err := fmt.Fprintf(w, "id: %s\n", oneLine(head.ID)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", oneLine(name), data)
	return err
}

// compactJSON removes the insignificant white space of valid JSON, which
// leaves it on one line (a JSON string cannot hold a raw line break).
func compactJSON(data []byte) ([]byte, error) {
	var b bytes.Buffer
	err := json.Compact(&b, data)
	return b.Bytes(), err
}

// oneLine keeps a field of the stream on its line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
