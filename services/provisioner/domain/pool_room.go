package domain

import "slices"

// RoomInZone counts how many sessions needing d, up to limit, fit on the
// enabled agents of z after the sessions pending there (created but not
// placed yet) took their share, placing each one as placement would (the
// zone's load balancing). When fewer than limit fit, short says what stops
// the next one, agent by agent. A reconcile pass asks this before it
// inserts sessions, so it never makes rows that could only fail for
// capacity.
func RoomInZone(z Zone, pending []Resources, d Demand, limit int) (room int, short string) {
	z.Agents = slices.Clone(z.Agents)
	take := func(d Demand) string {
		a, why := ChooseAgent(z, d)
		if why != "" {
			return why
		}
		i := slices.IndexFunc(z.Agents, func(x Agent) bool { return x.ID == a.ID })
		z.Agents[i].Used = Resources{
			MilliCores: z.Agents[i].Used.MilliCores + d.Need.MilliCores,
			MemoryMB:   z.Agents[i].Used.MemoryMB + d.Need.MemoryMB,
		}
		return ""
	}
	for _, p := range pending {
		// A pending session that fits nowhere will fail; it takes nothing.
		_ = take(Demand{Need: p})
	}
	for room < limit {
		if why := take(d); why != "" {
			return room, why
		}
		room++
	}
	return room, ""
}
