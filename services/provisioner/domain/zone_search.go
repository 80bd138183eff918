package domain

import "slices"

// ZoneSearch is the zone search of an on-demand request as the assigner
// handed it over (greenroom.provision.requested): the zone the request
// named and the zones that may host the session, in order, the named one
// first.
type ZoneSearch struct {
	Requested string
	Order     []string
}

// OnDemandZoneSearch is the zone search of a provision.requested with
// requestedZone and zones. An assigner older than requested_zone sent
// none: the search order starts with the requested zone, so it is
// zones[0].
func OnDemandZoneSearch(requestedZone string, zones []string) ZoneSearch {
	if requestedZone == "" && len(zones) > 0 {
		requestedZone = zones[0]
	}
	return ZoneSearch{Requested: requestedZone, Order: zones}
}

// ZoneServed is which step of a request's zone search served it, as
// greenroom.session.ready says: the zone the request named, and Step 1
// for that zone, n for the n-th zone of the search order, 0 when unknown.
type ZoneServed struct {
	RequestedZone string
	Step          int
}

// Served is the step of the search that zone, where the session was
// placed, is; Step 0 when the search order does not hold it.
func (z ZoneSearch) Served(zone string) ZoneServed {
	return ZoneServed{RequestedZone: z.Requested, Step: slices.Index(z.Order, zone) + 1}
}
