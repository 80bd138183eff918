package audit

import (
	"testing"
	"time"
)

// TestReconnectBacksOffExponentiallyWithJitter: an engine that stays away
// is tried after 0.5 s, 1 s, 2 s … up to 30 s, each wait stretched by up
// to 20 % at random, never in a hot loop and never all replicas at once.
func TestReconnectBacksOffExponentiallyWithJitter(t *testing.T) {
	t.Parallel()
	const lo, hi = 500 * time.Millisecond, 30 * time.Second
	for _, tc := range []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{5, 0, 16 * time.Second},
		{6, 0, 30 * time.Second},
		{1000, 0, 30 * time.Second},
		{0, 0.5, 550 * time.Millisecond},
		{1, 0.999, time.Second + 199800*time.Microsecond},
		{1000, 0.999, 35994 * time.Millisecond},
	} {
		if got := reconnectDelay(tc.attempt, lo, hi, tc.jitter); got != tc.want {
			t.Errorf("reconnectDelay(%d, jitter %v) = %s, want %s", tc.attempt, tc.jitter, got, tc.want)
		}
	}
}
