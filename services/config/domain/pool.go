package domain

import (
	"encoding/json"
	"slices"
	"time"
)

// Pool types.
const (
	PoolDockerAgent = "docker_agent"
	PoolServer      = "server"
)

// Pool groups Docker agents or fixed servers; its labels are every member's
// labels, which a workspace's include/exclude labels match. Members and
// Workspaces are filled in by SetMembers.
type Pool struct {
	ID               string    `db:"id" json:"id"`
	Name             string    `db:"name" json:"name"`
	Type             string    `db:"type" json:"type"`
	ServerAssignment bool      `db:"server_assignment" json:"server_assignment"`
	Labels           Labels    `db:"labels" json:"labels"`
	CreatedAt        time.Time `db:"created_at" json:"created_at"`
	UpdatedAt        time.Time `db:"updated_at" json:"updated_at"`
	// Members are the pool's servers (a server pool) or agents (a
	// docker_agent pool), with the sessions they carry.
	Members PoolMembers `db:"-" json:"members"`
	// Workspaces names the workspaces whose sessions are assigned to the
	// pool's servers (their server_pool).
	Workspaces []string `db:"-" json:"workspaces"`
}

// Validate lists the problems only the whole pool shows, once a body has
// been applied to it: server assignment is for server pools only, whether
// the body set it or changed the type under it.
func (p Pool) Validate() FieldErrors {
	var errs FieldErrors
	if p.ServerAssignment && p.Type != PoolServer {
		errs.Add("server_assignment", "only a server pool can assign its servers to users, and pool %q is a %s pool; set server_assignment to false", p.Name, p.Type)
	}
	return errs
}

// PoolMembers are a pool's servers or agents; a pool has only one kind, and
// the API lists them as one array.
type PoolMembers struct {
	Servers []ServerMember
	Agents  []AgentMember
}

// MarshalJSON writes the members as one array, [] when there are none.
func (m PoolMembers) MarshalJSON() ([]byte, error) {
	switch {
	case len(m.Servers) > 0:
		return json.Marshal(m.Servers)
	case len(m.Agents) > 0:
		return json.Marshal(m.Agents)
	}
	return []byte("[]"), nil
}

// ServerMember is a server as its pool lists it.
type ServerMember struct {
	Name            string  `json:"name"`
	Zone            string  `json:"zone"`
	Address         string  `json:"address"`
	Enabled         bool    `json:"enabled"`
	MaxSessions     int32   `json:"max_sessions"`
	Sessions        int     `json:"sessions"`
	AssignedUser    *string `json:"assigned_user"`
	Labels          Labels  `json:"labels"`
	EffectiveLabels Labels  `json:"effective_labels"`
}

// AgentMember is a Docker agent as its pool lists it.
type AgentMember struct {
	Name            string  `json:"name"`
	Zone            string  `json:"zone"`
	Enabled         bool    `json:"enabled"`
	Cores           float64 `json:"cores"`
	MemoryMB        int32   `json:"memory_mb"`
	Sessions        int     `json:"sessions"`
	FreeCores       float64 `json:"free_cores"`
	FreeMemoryMB    int     `json:"free_memory_mb"`
	Labels          Labels  `json:"labels"`
	EffectiveLabels Labels  `json:"effective_labels"`
}

// SetMembers fills in p's members and workspaces from servers, agents and
// workspaces, which may include those of other pools or of none; each keeps
// the order it is given in.
func (p *Pool) SetMembers(servers []Server, agents []Agent, workspaces []Workspace) {
	p.Members = PoolMembers{}
	p.Workspaces = []string{}
	in := func(poolID *string) bool { return poolID != nil && *poolID == p.ID }
	for _, s := range servers {
		if in(s.PoolID) {
			p.Members.Servers = append(p.Members.Servers, ServerMember{
				Name: s.Name, Zone: s.Zone, Address: s.Address, Enabled: s.Enabled,
				MaxSessions: s.MaxSessions, Sessions: s.Sessions, AssignedUser: s.AssignedUser,
				Labels: s.Labels, EffectiveLabels: EffectiveLabels(s.Labels, p.Labels),
			})
		}
	}
	for _, a := range agents {
		if in(a.PoolID) {
			p.Members.Agents = append(p.Members.Agents, AgentMember{
				Name: a.Name, Zone: a.Zone, Enabled: a.Enabled, Cores: a.Cores, MemoryMB: a.MemoryMB,
				Sessions: a.Sessions, FreeCores: a.FreeCores, FreeMemoryMB: a.FreeMemoryMB,
				Labels: a.Labels, EffectiveLabels: EffectiveLabels(a.Labels, p.Labels),
			})
		}
	}
	for _, w := range workspaces {
		if in(w.ServerPoolID) {
			p.Workspaces = append(p.Workspaces, w.Name)
		}
	}
}

// EffectiveLabels are the labels a member's sessions are placed by: its own
// and its pool's, each once, sorted.
func EffectiveLabels(own, pool Labels) Labels {
	all := append(slices.Clone(own), pool...)
	slices.Sort(all)
	return Labels(slices.Compact(all))
}

// PoolUpdate is the body of PATCH /api/v1/pools/{name}.
type PoolUpdate struct {
	Name             Optional[string]   `json:"name"`
	Type             Optional[string]   `json:"type"`
	ServerAssignment Optional[bool]     `json:"server_assignment"`
	Labels           Optional[[]string] `json:"labels"`
}

// PoolCreate is the body of POST /api/v1/pools: the same fields, name and
// type required.
type PoolCreate PoolUpdate

// Validate lists the body's problems.
func (in PoolCreate) Validate() FieldErrors { return validatePool(PoolUpdate(in), required) }

// Validate lists the body's problems.
func (in PoolUpdate) Validate() FieldErrors { return validatePool(in, optional) }

func validatePool(in PoolUpdate, p presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, p)
	checkEnum(&errs, "type", in.Type, p, PoolDockerAgent, PoolServer)
	checkPresent(&errs, "server_assignment", in.ServerAssignment, optional)
	checkPresent(&errs, "labels", in.Labels, optional)
	return errs
}

// Pool returns the pool the body describes, with defaults filled in.
func (in PoolCreate) Pool() Pool {
	var p Pool
	PoolUpdate(in).Apply(&p)
	return p
}

// Apply changes p as the body says.
func (in PoolUpdate) Apply(p *Pool) {
	setIfPresent(&p.Name, in.Name)
	setIfPresent(&p.Type, in.Type)
	setIfPresent(&p.ServerAssignment, in.ServerAssignment)
	if in.Labels.Has() {
		p.Labels = Labels(in.Labels.Value)
	}
}
