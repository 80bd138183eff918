package domain

import (
	"encoding/json"

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
	WebFilterPolicy           string
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
