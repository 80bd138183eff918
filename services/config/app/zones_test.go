package app

import (
	"context"
	"encoding/json"
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
	if tables.outbox[0].Type != events.TypeConfigChanged || changed.Kind != KindZone || changed.Op != OpUpdated ||
		changed.ID != "z-eu" || changed.Name != "eu" {
		t.Errorf("announced %s %+v, want %s of zone eu updated", tables.outbox[0].Type, changed, events.TypeConfigChanged)
	}
	// Called in-process, with no actor in its context: the change is the
	// config service's own.
	if changed.Actor != SystemActor {
		t.Errorf("actor %+v, want %+v", changed.Actor, SystemActor)
	}
	var before, after domain.Zone
	if err := json.Unmarshal(changed.Before, &before); err != nil {
		t.Fatalf("before %s: %v", changed.Before, err)
	}
	if err := json.Unmarshal(changed.After, &after); err != nil {
		t.Fatalf("after %s: %v", changed.After, err)
	}
	if before != zoneEU || after != tables.zones["eu"] {
		t.Errorf("before %+v, after %+v: want the zone as it was and as it is", before, after)
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
