package domain

import (
	"encoding/json"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Zone is what the rules need of a deployment zone.
type Zone struct {
	ID                   string
	Name                 string
	SearchAlternateZones bool
	Priority             int
}

// Group is what the rules need of a user group.
type Group struct {
	Name                      string
	Priority                  int // 1 is the highest
	Permissions               events.Permissions
	ExposeUserEnvironmentVars bool
	InjectSSHKeys             bool
	RunConfig                 json.RawMessage
	VolumeMapping             json.RawMessage
	// WebFilterPolicy names the group's web filter policy, "" for none.
	WebFilterPolicy string
	Limits          Limits
}

// Limits are how long a user's running session may last; zero is no
// limit. They are copied to the session when it is requested, and the
// expiry service ends it past either.
type Limits struct {
	// SessionTimeLimit counts from when the session starts running.
	SessionTimeLimit time.Duration
	// KeepaliveExpiration counts from its last keepalive (or its start).
	KeepaliveExpiration time.Duration
}

// Workspace is what the rules need of a workspace.
type Workspace struct {
	ID                    string
	Name                  string
	Enabled               bool
	PersistentProfilePath string
	VolumeMappings        json.RawMessage
	// OnServers is true for a workspace with a server pool: its sessions
	// are assignments to fixed servers, never staged (rule 8).
	OnServers bool
}

// StagingConfig is a pool of staged sessions for (zone, workspace).
type StagingConfig struct {
	ID          string
	ZoneID      string
	WorkspaceID string
	Permissions events.Permissions
}
