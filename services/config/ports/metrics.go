package ports

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HTTP server's Prometheus metrics.
type Metrics struct {
	duration *prometheus.HistogramVec
	// SessionWaits counts POST /api/v1/sessions calls waiting for their
	// session's outcome.
	SessionWaits prometheus.Gauge
	// EventStreams counts the GET /api/v1/events streams open.
	EventStreams prometheus.Gauge
}

// NewMetrics registers the metrics on reg (deps.Ops.Registry). Registering
// twice on one registry reuses the first ones.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	duration, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "greenroom_http_request_duration_seconds",
		Help: "Time to answer HTTP requests, by route (method and path pattern) and status.",
		// Up to the longest session request wait (300 s).
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"route", "status"}))
	if err != nil {
		return nil, err
	}
	waits, err := register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "greenroom_session_request_waits",
		Help: "Session requests over HTTP waiting for their outcome.",
	}))
	if err != nil {
		return nil, err
	}
	streams, err := register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "greenroom_event_streams",
		Help: "Event streams (GET /api/v1/events, the admin console's live views) open.",
	}))
	if err != nil {
		return nil, err
	}
	return &Metrics{duration: duration, SessionWaits: waits, EventStreams: streams}, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return c, fmt.Errorf("registering metrics: %w", err)
		}
		existing, ok := already.ExistingCollector.(C)
		if !ok {
			return c, fmt.Errorf("registering metrics: %w", err)
		}
		return existing, nil
	}
	return c, nil
}

// measure observes each request's duration under its route pattern, never
// its raw path, so that ids and names do not explode the label set.
func (m *Metrics) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		rt := route(r)
		if rt == eventsRoute {
			return // a stream lasts as long as its client: counted in EventStreams, not timed
		}
		m.duration.WithLabelValues(rt, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
	})
}

// eventsRoute is the route of the event stream.
const eventsRoute = "GET /api/v1/events"

func route(r *http.Request) string {
	pattern := chi.RouteContext(r.Context()).RoutePattern()
	if pattern == "" || strings.HasSuffix(pattern, "*") {
		return "unmatched"
	}
	return r.Method + " " + pattern
}
