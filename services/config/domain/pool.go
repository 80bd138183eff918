package domain

import "time"

// Pool types.
const (
	PoolDockerAgent = "docker_agent"
	PoolServer      = "server"
)

// Pool groups Docker agents or fixed servers; its labels are every member's
// labels, which a workspace's include/exclude labels match.
type Pool struct {
	ID               string    `db:"id" json:"id"`
	Name             string    `db:"name" json:"name"`
	Type             string    `db:"type" json:"type"`
	ServerAssignment bool      `db:"server_assignment" json:"server_assignment"`
	Labels           Labels    `db:"labels" json:"labels"`
	CreatedAt        time.Time `db:"created_at" json:"created_at"`
	UpdatedAt        time.Time `db:"updated_at" json:"updated_at"`
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
