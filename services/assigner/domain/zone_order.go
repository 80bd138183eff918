package domain

import (
	"cmp"
	"slices"
)

// ZoneSearchOrder returns the zones a request may be served in, in order:
// the request's zone first, then — only if that zone searches alternate
// zones — every other zone by priority (lower first), then name.
func ZoneSearchOrder(request Zone, all []Zone) []Zone {
	order := []Zone{request}
	if !request.SearchAlternateZones {
		return order
	}
	others := make([]Zone, 0, len(all))
	for _, z := range all {
		if z.ID != request.ID {
			others = append(others, z)
		}
	}
	slices.SortFunc(others, func(a, b Zone) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Name, b.Name))
	})
	return append(order, others...)
}

// ZoneSearchStep is the step of a request's zone search (order, as
// ZoneSearchOrder returns it) that zone zoneID is: 1 for the requested
// zone, n for the n-th zone of the order; 0 when the order does not hold
// it.
func ZoneSearchStep(order []Zone, zoneID string) int {
	return slices.IndexFunc(order, func(z Zone) bool { return z.ID == zoneID }) + 1
}
