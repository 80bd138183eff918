package ports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/app"
)

const (
	// eventBuffer is how far a browser may fall behind the bus before its
	// stream ends (and it reloads its view).
	eventBuffer = 256
	// eventHeartbeat keeps idle streams open through proxies, and tells a
	// browser the stream is alive.
	eventHeartbeat = 15 * time.Second
)

// events serves GET /api/v1/events: the bus's events as Server-Sent
// Events, each named by its CloudEvents type (or its subject when it is
// not an event) with the event as its data, for the admin console's live
// views. The stream starts with a "ready" event; a stream that ends
// without the client closing it lost events (the client fell behind, or
// the service is stopping): reconnect and reload.
func events(feed app.EventFeed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		evs, cancel := feed.Subscribe(eventBuffer)
		defer cancel()
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		if _, err := fmt.Fprint(w, "retry: 2000\nevent: ready\ndata: {}\n\n"); err != nil || rc.Flush() != nil {
			return
		}
		heartbeat := time.NewTicker(eventHeartbeat)
		defer heartbeat.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-heartbeat.C:
				if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
					return
				}
			case ev, ok := <-evs:
				if !ok {
					return
				}
				if err := writeEvent(w, ev); err != nil || rc.Flush() != nil {
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
