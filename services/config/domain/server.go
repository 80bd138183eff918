package domain

import "time"

// ServerMaxSessionsDefault is how many sessions a server accepts unless told.
const ServerMaxSessionsDefault int32 = 1

// Server is a fixed host in a server pool, with the number of its live
// sessions (each counts against MaxSessions).
type Server struct {
	ID           string    `db:"id" json:"id"`
	Name         string    `db:"name" json:"name"`
	ZoneID       string    `db:"zone_id" json:"-"`
	Zone         string    `db:"zone" json:"zone"`
	PoolID       *string   `db:"pool_id" json:"-"`
	Pool         *string   `db:"pool" json:"pool"`
	Address      string    `db:"address" json:"address"`
	MaxSessions  int32     `db:"max_sessions" json:"max_sessions"`
	Enabled      bool      `db:"enabled" json:"enabled"`
	AssignedUser *string   `db:"assigned_user" json:"assigned_user"`
	Labels       Labels    `db:"labels" json:"labels"`
	Sessions     int       `db:"sessions" json:"sessions"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time `db:"updated_at" json:"updated_at"`
}

// ServerUpdate is the body of PATCH /api/v1/servers/{name}.
type ServerUpdate struct {
	Name         Optional[string]   `json:"name"`
	Zone         Optional[string]   `json:"zone"`
	Pool         Optional[string]   `json:"pool"`
	Address      Optional[string]   `json:"address"`
	MaxSessions  Optional[int32]    `json:"max_sessions"`
	Enabled      Optional[bool]     `json:"enabled"`
	AssignedUser Optional[string]   `json:"assigned_user"`
	Labels       Optional[[]string] `json:"labels"`
}

// ServerCreate is the body of POST /api/v1/servers: the same fields, name,
// zone and address required.
type ServerCreate ServerUpdate

// Validate lists the body's problems.
func (in ServerCreate) Validate() FieldErrors { return validateServer(ServerUpdate(in), required) }

// Validate lists the body's problems.
func (in ServerUpdate) Validate() FieldErrors { return validateServer(in, optional) }

func validateServer(in ServerUpdate, p presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, p)
	checkNonEmpty(&errs, "zone", in.Zone, p)
	checkNonEmpty(&errs, "pool", in.Pool, nullable)
	checkNonEmpty(&errs, "address", in.Address, p)
	checkMin(&errs, "max_sessions", in.MaxSessions, optional, 1)
	checkPresent(&errs, "enabled", in.Enabled, optional)
	checkPresent(&errs, "assigned_user", in.AssignedUser, nullable)
	checkPresent(&errs, "labels", in.Labels, optional)
	return errs
}

// Server returns the server the body describes, with defaults filled in;
// the zone and pool are still names only.
func (in ServerCreate) Server() Server {
	s := Server{MaxSessions: ServerMaxSessionsDefault, Enabled: true}
	ServerUpdate(in).Apply(&s)
	return s
}

// Apply changes s as the body says; a changed zone or pool is a name only.
func (in ServerUpdate) Apply(s *Server) {
	setIfPresent(&s.Name, in.Name)
	setIfPresent(&s.Zone, in.Zone)
	if in.Pool.Set {
		s.Pool = in.Pool.Ptr()
	}
	setIfPresent(&s.Address, in.Address)
	setIfPresent(&s.MaxSessions, in.MaxSessions)
	setIfPresent(&s.Enabled, in.Enabled)
	if in.AssignedUser.Set {
		s.AssignedUser = in.AssignedUser.Ptr()
	}
	if in.Labels.Has() {
		s.Labels = Labels(in.Labels.Value)
	}
}
