package app

import (
	"context"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

var zoneEU = domain.Zone{ID: "z-eu", Name: "eu", AllowOriginDomain: "eu.example.com", UpstreamAuthAddress: "eu.example.com"}

func TestZoneCannotGoBackToRequestHostWhileStagingConfigsTargetIt(t *testing.T) {
	tables := &fakeTables{zones: map[string]domain.Zone{"eu": zoneEU}, stagingConfigs: map[string]int{"z-eu": 2}}
	a := newFakeApp(tables, &fakeRequests{})
	_, err := a.UpdateZone(context.Background(), "eu", domain.ZoneUpdate{AllowOriginDomain: domain.Some(domain.RequestHost)})
	e := refusal(err)
	if e == nil || e.Kind != Conflict || len(e.Fields) == 0 || e.Fields[0].Field != "allow_origin_domain" {
		t.Fatalf("err = %v, want a conflict on allow_origin_domain", err)
	}
	if got := tables.zones["eu"]; got != zoneEU {
		t.Errorf("zone = %+v, want it unchanged", got)
	}
	if len(tables.outbox) != 0 {
		t.Errorf("announced %d event(s) of a refused change", len(tables.outbox))
	}
}

func TestZoneGoesBackToRequestHostWhenNoStagingConfigTargetsIt(t *testing.T) {
	tables := &fakeTables{zones: map[string]domain.Zone{"eu": zoneEU}}
	a := newFakeApp(tables, &fakeRequests{})
	z, err := a.UpdateZone(context.Background(), "eu", domain.ZoneUpdate{AllowOriginDomain: domain.Some(domain.RequestHost)})
	if err != nil {
		t.Fatalf("UpdateZone: %v", err)
	}
	if z.AllowOriginDomain != domain.RequestHost || tables.zones["eu"].AllowOriginDomain != domain.RequestHost {
		t.Errorf("zone = %+v, stored %+v: want allow_origin_domain %s", z, tables.zones["eu"], domain.RequestHost)
	}
	if len(tables.outbox) != 1 {
		t.Fatalf("announced %d events, want 1", len(tables.outbox))
	}
	var changed events.ConfigChanged
	if err := tables.outbox[0].DecodeData(&changed); err != nil {
		t.Fatal(err)
	}
	want := events.ConfigChanged{Kind: KindZone, Op: OpUpdated, ID: "z-eu", Name: "eu"}
	if tables.outbox[0].Type != events.TypeConfigChanged || changed != want {
		t.Errorf("announced %s %+v, want %s %+v", tables.outbox[0].Type, changed, events.TypeConfigChanged, want)
	}
}

func TestZoneWithTakenNameIsAConflictAndNotAnnounced(t *testing.T) {
	tables := &fakeTables{zones: map[string]domain.Zone{"eu": zoneEU}}
	a := newFakeApp(tables, &fakeRequests{})
	_, err := a.CreateZone(context.Background(), domain.ZoneCreate{Name: domain.Some("eu")})
	if e := refusal(err); e == nil || e.Kind != Conflict || e.Detail != `zone "eu" already exists` {
		t.Fatalf("err = %v, want the conflict zone \"eu\" already exists", err)
	}
	if len(tables.outbox) != 0 {
		t.Errorf("announced %d event(s) of a refused change", len(tables.outbox))
	}
}
