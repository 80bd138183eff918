package apptest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Series returns the series of the metric family name that g (a service's
// Ops.Registry, or any registry a test built) gathers now and that labels
// select, or nil when there is none. labels match as a PromQL selector's
// equality matchers do: each label named has the value given, a label
// the series does not have counting as ""; labels not named are not
// compared, so nil selects every series of the family. Labels that select
// more than one series fail the test: name them all.
func Series(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("apptest: gathering metrics: %v", err)
	}
	var found *dto.Metric
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !selects(labels, m) {
				continue
			}
			if found != nil {
				t.Fatalf("apptest: %s selects more than one series: %s and %s", selector(name, labels),
					selector(name, labelMap(found)), selector(name, labelMap(m)))
			}
			found = m
		}
	}
	return found
}

// Metric returns the value of the series Series finds (a counter's or a
// gauge's value, a histogram's or a summary's sample count), and whether
// there is one. A labelled counter nothing has counted yet has no series:
// its value 0, false reads as 0.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	m := Series(t, g, name, labels)
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount()), true
	}
	return m.GetUntyped().GetValue(), true
}

// MustMetric is Metric, failing the test when there is no such series.
func MustMetric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := Metric(t, g, name, labels)
	if !ok {
		t.Fatalf("apptest: no series %s", selector(name, labels))
	}
	return v
}

// selects reports whether m has the labels wanted.
func selects(want map[string]string, m *dto.Metric) bool {
	got := labelMap(m)
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func labelMap(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// selector writes name and labels as PromQL would.
func selector(name string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(name + "{")
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteString("}")
	return b.String()
}
