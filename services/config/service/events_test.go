package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sse is one Server-Sent Event as a client reads it.
type sse struct {
	ID, Name string
	Data     string
}

// openEvents opens GET /api/v1/events and returns its events as they come;
// the channel closes when the stream ends.
func (h *harness) openEvents(ctx context.Context) (*http.Response, <-chan sse) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/api/v1/events", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	ch := make(chan sse, 64)
	go func() {
		defer close(ch)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" || ev.Data != "" {
					ch <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return res, ch
}

// nextSSE returns the next event named name, skipping others.
func nextSSE(t *testing.T, ch <-chan sse, name string) sse {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before an event %q", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event %q on the stream", name)
		}
	}
}

func TestEventsStreamTheBusAsServerSentEventsUntilTheServiceStops(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}

	res, ch := h.openEvents(ctx)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /api/v1/events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	nextSSE(t, ch, "ready")

	// A configuration change, committed and relayed, reaches the stream as
	// the CloudEvent it is on the bus.
	h.stagingZone("eu")
	ev := nextSSE(t, ch, "greenroom.config.changed")
	var ce struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Kind, Op, Name string
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &ce); err != nil {
		t.Fatalf("event data is not JSON: %v: %s", err, ev.Data)
	}
	if ce.Type != "greenroom.config.changed" || ce.ID == "" || ev.ID != ce.ID || ce.Data.Name != "eu" || ce.Data.Kind != "zone" {
		t.Fatalf("event %+v from %q", ce, ev.Data)
	}

	// Without the token: 401, no stream.
	h.problem(401, "", "GET", "/api/v1/events", nil, withoutToken())

	// Stopping the service ends open streams, so the HTTP server drains.
	h.svc.Stop()
	for range ch {
	}
}
