package domain_test

import (
	"testing"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

func TestOnlyTheUserOfALiveSessionMayReachIt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		user   *string
		status string
		want   domain.SessionAccess
	}{
		{"their running session", ptr("u1"), "running", domain.SessionTheirs},
		{"their session still being assigned", ptr("u1"), "assigning", domain.SessionTheirs},
		{"another user's session", ptr("u2"), "running", domain.SessionNotTheirs},
		{"a staged session, nobody's yet", nil, "staged", domain.SessionNotTheirs},
		{"their destroyed session", ptr("u1"), "destroyed", domain.SessionEnded},
		{"another user's failed session", ptr("u2"), "failed", domain.SessionEnded},
	} {
		s := domain.Session{UserID: tc.user, Status: tc.status}
		if got := domain.AccessOf(s, "u1"); got != tc.want {
			t.Errorf("%s: AccessOf = %d, want %d", tc.name, got, tc.want)
		}
	}
}
