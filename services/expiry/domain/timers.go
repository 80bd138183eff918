// Package domain holds the expiry service's rules that need no I/O: why
// each timer fires (the reasons its events carry), where a timer's cut-off
// lies, which retried destroy is which, and from when a keepalive counts.
// Which sessions are due is decided in SQL (adapters/postgres), where the
// sessions are.
package domain

import (
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Reasons the timers give, on greenroom.session.expired (and on the
// sweeper's metric of fired sessions).
const (
	ReasonProvisioningTimeout = events.ExpiredProvisioning // "provisioning_timeout"
	ReasonStagedExpired       = events.ExpiredStaged       // "staged_expired"
	ReasonAssignTimeout       = events.ExpiredAssigning    // "assign_timeout"
	ReasonTimeLimit           = events.ExpiredTimeLimit    // "time_limit"
	ReasonKeepalive           = events.ExpiredKeepalive    // "keepalive"
	// ReasonDestroyRetry is the reason of the greenroom.session.destroy
	// the sweeper sends again for a session stuck in destroying.
	ReasonDestroyRetry = events.DestroyReasonRetry // "destroy_retry"
)

// Cutoff is the point a timer's sessions are due at or before: a session
// stuck in a status is due once it has been there longer than timeout, so
// the cut-off is timeout before now; a deadline (a staged session's
// expiration, a running session's time limit or keepalive) has no timeout
// and is due once now reaches it.
func Cutoff(now time.Time, timeout time.Duration) time.Time {
	return now.Add(-timeout)
}

// DestroyRetryEventID names the retry of session id's destroy in the
// timeout-long time slot holding now: two retries of one session in one
// slot are one event, whichever replica sends them.
func DestroyRetryEventID(id string, now time.Time, timeout time.Duration) string {
	return fmt.Sprintf("destroy-retry-%s-%d", id, now.UnixNano()/int64(timeout))
}
