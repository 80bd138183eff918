package enginehealth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
)

const endpoint = "tcp://10.0.0.9:2375"

// clockedBoard is a board whose clock the test moves.
func clockedBoard(remember time.Duration) (*Board, *time.Time) {
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	b := NewBoard(remember, zap.NewNop())
	b.now = func() time.Time { return now }
	return b, &now
}

// An outage runs from its first failure until the engine answers, with
// the error it began with while later ones only repeat it.
func TestOutageRunsFromTheFirstFailureUntilTheEngineAnswers(t *testing.T) {
	b, now := clockedBoard(time.Minute)
	if o := b.Outage(endpoint); o != nil {
		t.Fatalf("outage %+v before any failure", o)
	}
	refused := errors.New("docker engine tcp://10.0.0.9:2375 does not answer: connection refused")
	start := *now
	b.Failed(endpoint, refused)
	*now = now.Add(10 * time.Second)
	// The Docker adapter backing off answers with the same error, and when
	// it will try again.
	b.Failed(endpoint, fmt.Errorf("%w (not contacted again before 10:00:12)", refused))

	o := b.Outage(endpoint)
	if o == nil || o.Err != refused.Error() || !o.Since.Equal(start) {
		t.Fatalf("outage %+v, want %q since %s", o, refused, start)
	}
	if other := b.Outage("unix:///var/run/docker.sock"); other != nil {
		t.Errorf("another engine is down too: %+v", other)
	}

	// Something else goes wrong: the error is the new one, the outage
	// still runs from its start.
	*now = now.Add(10 * time.Second)
	b.Failed(endpoint, errors.New("context deadline exceeded"))
	if o := b.Outage(endpoint); o == nil || o.Err != "context deadline exceeded" || !o.Since.Equal(start) {
		t.Errorf("outage %+v, want the new error since %s", o, start)
	}

	b.Answered(endpoint)
	if o := b.Outage(endpoint); o != nil {
		t.Errorf("outage %+v after the engine answered", o)
	}
	*now = now.Add(time.Second)
	b.Failed(endpoint, refused)
	if o := b.Outage(endpoint); o == nil || !o.Since.Equal(*now) {
		t.Errorf("outage %+v, want a new one since %s", o, *now)
	}
}

// A failure nobody confirms lapses: the agent is tried again rather than
// passed over for good on one report.
func TestOutageLapsesWithoutANewerFailure(t *testing.T) {
	b, now := clockedBoard(time.Minute)
	b.Failed(endpoint, errors.New("connection refused"))
	*now = now.Add(50 * time.Second)
	b.Failed(endpoint, errors.New("connection refused"))
	*now = now.Add(50 * time.Second)
	if o := b.Outage(endpoint); o == nil {
		t.Fatal("outage lapsed a minute after its first failure, though the last was 50 s ago")
	}
	*now = now.Add(11 * time.Second)
	if o := b.Outage(endpoint); o != nil {
		t.Errorf("outage %+v still known 61 s after its last failure", o)
	}
	// A failure after the lapse starts a new outage.
	b.Failed(endpoint, errors.New("connection refused"))
	if o := b.Outage(endpoint); o == nil || !o.Since.Equal(*now) {
		t.Errorf("outage %+v, want one since %s", o, *now)
	}
}
