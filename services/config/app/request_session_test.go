package app

import (
	"context"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

func TestSessionRequestForUnknownWorkspaceIsNotFoundAndNotPublished(t *testing.T) {
	userID, zoneID := "u-1", "z-eu"
	tables := &fakeTables{}
	tables.refs.UserID, tables.refs.Zone.ID = &userID, &zoneID
	requests := &fakeRequests{}
	a := newFakeApp(tables, requests)
	in := domain.SessionRequest{User: domain.Some("alice"), Workspace: domain.Some("firefox"), Zone: domain.Some("eu")}
	_, err := a.RequestSession(context.Background(), in, "", time.Second)
	e := refusal(err)
	if e == nil || e.Kind != NotFound || len(e.Fields) == 0 || e.Fields[0].Field != "workspace" ||
		e.Detail != `workspace: no workspace named "firefox"` {
		t.Fatalf("err = %v, want not found naming workspace \"firefox\"", err)
	}
	if requests.published != 0 {
		t.Errorf("published %d request(s) for an unknown workspace", requests.published)
	}
}
