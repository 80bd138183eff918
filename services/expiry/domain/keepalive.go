package domain

import "time"

// KeepaliveFrom is the time a keepalive sent at sentAt counts from: its
// event's time, but never later than now, so that a sender whose clock
// runs ahead cannot keep a session alive for longer than its
// keepalive_expiration after it was last used. A keepalive without a time
// counts from now.
func KeepaliveFrom(sentAt, now time.Time) time.Time {
	if sentAt.IsZero() || sentAt.After(now) {
		return now
	}
	return sentAt
}
