package domain

import "testing"

func TestOnDemandZoneSearchStepIsThePlacedZonesPlaceInTheOrder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requested string
		zones     []string
		placed    string
		want      ZoneServed
	}{
		{"placed in the requested zone", "zone-a", []string{"zone-a", "zone-b", "zone-c"}, "zone-a", ZoneServed{"zone-a", 1}},
		{"placed in the second zone", "zone-a", []string{"zone-a", "zone-b", "zone-c"}, "zone-b", ZoneServed{"zone-a", 2}},
		{"placed in the third zone", "zone-a", []string{"zone-a", "zone-b", "zone-c"}, "zone-c", ZoneServed{"zone-a", 3}},
		{"an older assigner's request names its zone first", "", []string{"zone-a", "zone-b"}, "zone-b", ZoneServed{"zone-a", 2}},
		{"a zone outside the search is no step", "zone-a", []string{"zone-a"}, "zone-x", ZoneServed{"zone-a", 0}},
		{"no zones, no step", "", nil, "zone-a", ZoneServed{"", 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := OnDemandZoneSearch(tc.requested, tc.zones).Served(tc.placed); got != tc.want {
				t.Errorf("Served(%s) = %+v, want %+v", tc.placed, got, tc.want)
			}
		})
	}
}
