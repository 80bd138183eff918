package domain

import (
	"testing"
	"time"
)

func TestClaimedPoolRefillsOnceItsClaimsPause(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const quiet, maxDelay = 250 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name   string
		claims []int // ms after t0
		want   time.Time
	}{
		{"one claim: refill after the quiet period", []int{0}, at(250)},
		{"a burst: refill a quiet period after its last claim", []int{0, 10, 20, 290}, at(540)},
		{"a stream without a pause: refill at the latest delay", []int{0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 1900}, at(2000)},
		{"the latest delay caps a late claim", []int{0, 1900}, at(2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b ClaimBurst
			for _, ms := range tt.claims {
				b = b.Add(at(ms))
			}
			if b.First != at(tt.claims[0]) {
				t.Errorf("First = %v, want the first claim %v", b.First, at(tt.claims[0]))
			}
			if got := b.RefillAt(quiet, maxDelay); !got.Equal(tt.want) {
				t.Errorf("RefillAt = +%v, want +%v", got.Sub(t0), tt.want.Sub(t0))
			}
		})
	}
}
