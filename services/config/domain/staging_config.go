package domain

import (
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// StagingConfigExpirationHoursDefault is how long a staged session waits
// for a user before it is replaced, unless told.
const StagingConfigExpirationHoursDefault = 24.0

// Staging config statuses, set by the provisioner as it fills the pool.
const (
	StagingOK        = "ok"
	StagingFilling   = "filling"
	StagingShortfall = "shortfall"
)

// StagingConfig keeps DesiredSessions sessions of a workspace staged in a
// zone, started with Permissions; only users whose effective permissions
// equal them get one. CurrentSessions, Status, LastError and LastErrorAt say
// how the provisioner is doing.
type StagingConfig struct {
	ID              string  `db:"id" json:"id"`
	ZoneID          string  `db:"zone_id" json:"-"`
	Zone            string  `db:"zone" json:"zone"`
	WorkspaceID     string  `db:"workspace_id" json:"-"`
	Workspace       string  `db:"workspace" json:"workspace"`
	DesiredSessions int32   `db:"desired_sessions" json:"desired_sessions"`
	ExpirationHours float64 `db:"expiration_hours" json:"expiration_hours"`
	events.Permissions
	CurrentSessions int        `db:"current_sessions" json:"current_sessions"`
	Status          string     `db:"status" json:"status"`
	LastError       string     `db:"last_error" json:"last_error"`
	LastErrorAt     *time.Time `db:"last_error_at" json:"last_error_at"`
	CreatedAt       time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt       time.Time  `db:"updated_at" json:"updated_at"`
}

// permissionFields are the seven allow_* settings of a group's or a staging
// config's body.
type permissionFields struct {
	AllowAudio         Optional[bool] `json:"allow_audio"`
	AllowClipboardDown Optional[bool] `json:"allow_clipboard_down"`
	AllowClipboardUp   Optional[bool] `json:"allow_clipboard_up"`
	AllowDownloads     Optional[bool] `json:"allow_downloads"`
	AllowMicrophone    Optional[bool] `json:"allow_microphone"`
	AllowUploads       Optional[bool] `json:"allow_uploads"`
	AllowGamepad       Optional[bool] `json:"allow_gamepad"`
}

func (in permissionFields) validate(errs *FieldErrors) {
	for _, f := range []struct {
		field string
		value Optional[bool]
	}{
		{"allow_audio", in.AllowAudio},
		{"allow_clipboard_down", in.AllowClipboardDown},
		{"allow_clipboard_up", in.AllowClipboardUp},
		{"allow_downloads", in.AllowDownloads},
		{"allow_microphone", in.AllowMicrophone},
		{"allow_uploads", in.AllowUploads},
		{"allow_gamepad", in.AllowGamepad},
	} {
		checkPresent(errs, f.field, f.value, optional)
	}
}

func (in permissionFields) apply(p *events.Permissions) {
	setIfPresent(&p.AllowAudio, in.AllowAudio)
	setIfPresent(&p.AllowClipboardDown, in.AllowClipboardDown)
	setIfPresent(&p.AllowClipboardUp, in.AllowClipboardUp)
	setIfPresent(&p.AllowDownloads, in.AllowDownloads)
	setIfPresent(&p.AllowMicrophone, in.AllowMicrophone)
	setIfPresent(&p.AllowUploads, in.AllowUploads)
	setIfPresent(&p.AllowGamepad, in.AllowGamepad)
}

// StagingConfigCreate is the body of POST /api/v1/staging-configs.
type StagingConfigCreate struct {
	Zone            Optional[string]  `json:"zone"`
	Workspace       Optional[string]  `json:"workspace"`
	DesiredSessions Optional[int32]   `json:"desired_sessions"`
	ExpirationHours Optional[float64] `json:"expiration_hours"`
	permissionFields
}

// Validate lists the body's problems.
func (in StagingConfigCreate) Validate() FieldErrors {
	var errs FieldErrors
	checkNonEmpty(&errs, "zone", in.Zone, required)
	checkNonEmpty(&errs, "workspace", in.Workspace, required)
	checkMin(&errs, "desired_sessions", in.DesiredSessions, required, 0)
	checkPositive(&errs, "expiration_hours", in.ExpirationHours, optional)
	in.permissionFields.validate(&errs)
	return errs
}

// StagingConfig returns the staging config the body describes, with
// defaults filled in; zone and workspace are still names only. Permissions
// not given are a group's defaults (PermissionsDefault), so that the
// smallest staging config serves the users of the smallest group.
func (in StagingConfigCreate) StagingConfig() StagingConfig {
	sc := StagingConfig{
		Zone:            in.Zone.Value,
		Workspace:       in.Workspace.Value,
		DesiredSessions: in.DesiredSessions.Value,
		ExpirationHours: in.ExpirationHours.Or(StagingConfigExpirationHoursDefault),
		Permissions:     PermissionsDefault(),
		Status:          StagingFilling,
	}
	in.permissionFields.apply(&sc.Permissions)
	return sc
}

// StagingConfigUpdate is the body of PATCH /api/v1/staging-configs/{id}.
// Zone and workspace cannot change: that is another staging config.
type StagingConfigUpdate struct {
	DesiredSessions Optional[int32]   `json:"desired_sessions"`
	ExpirationHours Optional[float64] `json:"expiration_hours"`
	permissionFields
}

// Validate lists the body's problems.
func (in StagingConfigUpdate) Validate() FieldErrors {
	var errs FieldErrors
	checkMin(&errs, "desired_sessions", in.DesiredSessions, optional, 0)
	checkPositive(&errs, "expiration_hours", in.ExpirationHours, optional)
	in.permissionFields.validate(&errs)
	return errs
}

// Apply changes sc as the body says.
func (in StagingConfigUpdate) Apply(sc *StagingConfig) {
	setIfPresent(&sc.DesiredSessions, in.DesiredSessions)
	setIfPresent(&sc.ExpirationHours, in.ExpirationHours)
	in.permissionFields.apply(&sc.Permissions)
}
