// Package svc is a service as TestTheDestroyScanFollowsEveryWayAReasonIsGiven
// reads it: each way its code may give a greenroom.session.destroy a
// reason.
package svc

import "github.com/greenroom-dev/greenroom/libs/events"

const scanFixtureReason = "scan_fixture_constant"

func literal() events.SessionDestroy {
	return events.SessionDestroy{SessionID: "s", Reason: "scan_fixture_literal"}
}

func constant() events.SessionDestroy {
	return events.SessionDestroy{SessionID: "s", Reason: scanFixtureReason}
}

func passed(id, reason string) events.SessionDestroy {
	return events.SessionDestroy{SessionID: id, Reason: reason}
}

func caller() events.SessionDestroy { return passed("s", "scan_fixture_passed") }

func computed(stale bool) events.SessionDestroy {
	reason := why(stale)
	return events.SessionDestroy{SessionID: "s", Reason: reason}
}

func why(stale bool) string {
	if stale {
		return "scan_fixture_computed_a"
	}
	return events.DestroyReasonPoolShrink
}
