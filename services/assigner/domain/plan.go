package domain

import "github.com/greenroom-dev/greenroom/libs/events"

// MissReason says why a request could not be served from a staged pool.
type MissReason string

// Reasons a staged session was not assigned; they label metrics and logs.
const (
	MissNone            MissReason = ""
	MissIncompatible    MissReason = "incompatible_setting"
	MissNoStagingConfig MissReason = "no_staging_config"
	MissPermissions     MissReason = "permissions_differ"
	MissNoneStaged      MissReason = "none_staged"
	// MissOnServers: the workspace's sessions go to the fixed servers of
	// its server pool, which are never staged.
	MissOnServers MissReason = "server_pool"
)

// Plan is what the assigner will try for one request, in order (rule 5):
// claim from each of StagedCandidates, then create on demand in the first
// of OnDemandZones that has capacity.
type Plan struct {
	Permissions events.Permissions
	// Limits are the user's, copied to the session it gets.
	Limits           Limits
	Violations       []Setting
	StagedCandidates []StagingConfig
	OnDemandZones    []Zone
	// Miss explains an empty StagedCandidates.
	Miss MissReason
	// PermissionDiffers names, when Miss is MissPermissions, the first
	// allow_* field in which the user's permissions differ from the first
	// staging config in zone search order.
	PermissionDiffers string
}

// PlanRequest applies rules 3, 4 and 5 to one request. configs are the
// live staging configs of the requested workspace, in any zone.
func PlanRequest(ws Workspace, requestZone Zone, zones []Zone, groups []Group, configs []StagingConfig) Plan {
	eff := Effective(groups)
	order := ZoneSearchOrder(requestZone, zones)
	p := Plan{Permissions: eff.Permissions, Limits: eff.Limits, OnDemandZones: order}
	if ws.OnServers {
		// Nothing is staged for it, so no setting can force it off a
		// staged session.
		p.Miss = MissOnServers
		return p
	}
	if p.Violations = IncompatibleSettings(ws, eff); len(p.Violations) > 0 {
		p.Miss = MissIncompatible
		return p
	}
	byZone := map[string][]StagingConfig{}
	for _, c := range configs {
		if c.WorkspaceID == ws.ID {
			byZone[c.ZoneID] = append(byZone[c.ZoneID], c)
		}
	}
	var first *StagingConfig
	for _, z := range order {
		for _, c := range byZone[z.ID] {
			if first == nil {
				first = &c
			}
			if PermissionsMatch(c.Permissions, eff.Permissions) {
				p.StagedCandidates = append(p.StagedCandidates, c)
			}
		}
	}
	switch {
	case first == nil:
		p.Miss = MissNoStagingConfig
	case len(p.StagedCandidates) == 0:
		p.Miss = MissPermissions
		p.PermissionDiffers = FirstPermissionDifference(first.Permissions, eff.Permissions)
	}
	return p
}

// OnDemandReason is what an on-demand session records about why it was
// not served staged (its on_demand_reason, libs/events OnDemand*), given
// the plan it was made by. A plan that had staged candidates and still
// ended on demand found none staged: every claim came back empty.
func OnDemandReason(p Plan) string {
	switch p.Miss {
	case MissOnServers:
		return events.OnDemandServerPool
	case MissIncompatible:
		return events.OnDemandIncompatible + ":" + string(p.Violations[0])
	case MissNoStagingConfig:
		return events.OnDemandNoStagingConfig
	case MissPermissions:
		return events.OnDemandPermissionsDiffer + ":" + p.PermissionDiffers
	default:
		return events.OnDemandNoneStaged
	}
}
