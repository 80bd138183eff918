package apptest_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/libs/apptest"
)

func TestMetricSelectsOneSeriesAsAPromQLSelectorWould(t *testing.T) {
	reg := prometheus.NewRegistry()
	claims := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "claims_total", Help: "h"}, []string{"zone", "workspace"})
	pool := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pool_members", Help: "h"}, []string{"pool", "zone"})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "took_seconds", Help: "h"})
	reg.MustRegister(claims, pool, took)
	claims.WithLabelValues("a", "demo").Add(2)
	claims.WithLabelValues("b", "demo").Add(3)
	pool.WithLabelValues("", "a").Set(4)
	took.Observe(0.5)
	took.Observe(1.5)

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
		ok     bool
	}{
		{"claims_total", map[string]string{"zone": "b", "workspace": "demo"}, 3, true},
		{"claims_total", map[string]string{"zone": "b"}, 3, true}, // labels not named are not compared
		{"claims_total", map[string]string{"zone": "c"}, 0, false},
		{"claims_total", map[string]string{"zone": "a", "pool": ""}, 2, true}, // a missing label is ""
		{"pool_members", map[string]string{"pool": "", "zone": "a"}, 4, true},
		{"took_seconds", nil, 2, true}, // a histogram's sample count
		{"absent_total", nil, 0, false},
	} {
		if got, ok := apptest.Metric(t, reg, c.name, c.labels); got != c.want || ok != c.ok {
			t.Errorf("Metric(%s, %v) = %v, %v; want %v, %v", c.name, c.labels, got, ok, c.want, c.ok)
		}
	}
	if h := apptest.Series(t, reg, "took_seconds", nil).GetHistogram(); h.GetSampleSum() != 2 {
		t.Errorf("histogram sum %v, want 2", h.GetSampleSum())
	}

	// Labels that select two series fail the test instead of picking one.
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		apptest.Metric(ft, reg, "claims_total", map[string]string{"workspace": "demo"})
	}()
	<-done
	if ft.fatal == "" {
		t.Error("labels selecting two series did not fail the test")
	}
}

// fatalRecorder records a Fatalf and ends its goroutine, as testing.T does.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
