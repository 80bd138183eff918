package domain

import (
	"encoding/json"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/schedule"
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
// equal them get one. While an entry of its Schedule is in effect, that
// entry's desired_sessions replaces DesiredSessions (libs/schedule):
// EffectiveDesiredSessions is what the provisioner aims for at ReadAt,
// and ScheduleActive the index of the entry in effect then, if any.
// CurrentSessions, Status, LastError and LastErrorAt say how the
// provisioner is doing.
type StagingConfig struct {
	ID              string            `db:"id" json:"id"`
	ZoneID          string            `db:"zone_id" json:"-"`
	Zone            string            `db:"zone" json:"zone"`
	WorkspaceID     string            `db:"workspace_id" json:"-"`
	Workspace       string            `db:"workspace" json:"workspace"`
	DesiredSessions int32             `db:"desired_sessions" json:"desired_sessions"`
	Schedule        schedule.Schedule `db:"schedule" json:"schedule"`
	ExpirationHours float64           `db:"expiration_hours" json:"expiration_hours"`
	events.Permissions
	EffectiveDesiredSessions int32      `db:"-" json:"effective_desired_sessions"`
	ScheduleActive           *int       `db:"-" json:"schedule_active"`
	CurrentSessions          int        `db:"current_sessions" json:"current_sessions"`
	Status                   string     `db:"status" json:"status"`
	LastError                string     `db:"last_error" json:"last_error"`
	LastErrorAt              *time.Time `db:"last_error_at" json:"last_error_at"`
	CreatedAt                time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt                time.Time  `db:"updated_at" json:"updated_at"`
	// ReadAt is the database's clock when the config was read: the time
	// its schedule is read at, the provisioner's clock too.
	ReadAt time.Time `db:"read_at" json:"-"`
}

// ReadSchedule sets EffectiveDesiredSessions and ScheduleActive as the
// schedule has them at now.
func (sc *StagingConfig) ReadSchedule(now time.Time) {
	desired, active := schedule.Effective(sc.Schedule, int(sc.DesiredSessions), now)
	sc.EffectiveDesiredSessions, sc.ScheduleActive = int32(desired), active
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
	Zone            Optional[string]          `json:"zone"`
	Workspace       Optional[string]          `json:"workspace"`
	DesiredSessions Optional[int32]           `json:"desired_sessions"`
	Schedule        Optional[json.RawMessage] `json:"schedule"`
	ExpirationHours Optional[float64]         `json:"expiration_hours"`
	permissionFields
}

// Validate lists the body's problems, its schedule checked for overlaps
// from now on.
func (in StagingConfigCreate) Validate() FieldErrors { return in.ValidateAt(time.Now()) }

// ValidateAt is Validate with the schedule checked for overlaps over the
// horizon from now (schedule.Horizon).
func (in StagingConfigCreate) ValidateAt(now time.Time) FieldErrors {
	var errs FieldErrors
	checkNonEmpty(&errs, "zone", in.Zone, required)
	checkNonEmpty(&errs, "workspace", in.Workspace, required)
	checkMin(&errs, "desired_sessions", in.DesiredSessions, required, 0)
	checkSchedule(&errs, in.Schedule, now)
	checkPositive(&errs, "expiration_hours", in.ExpirationHours, optional)
	in.permissionFields.validate(&errs)
	return errs
}

// checkSchedule records the problems of a schedule: each entry's by its
// field ("schedule[1].cron"), then, when every entry is valid, the first
// overlap of two runs ("schedule[1]").
func checkSchedule(errs *FieldErrors, o Optional[json.RawMessage], now time.Time) {
	if !present(errs, schedule.Field, o, optional) {
		return
	}
	s, problems := schedule.Parse(o.Value)
	if len(problems) == 0 {
		problems = schedule.Validate(s, now)
	}
	for _, p := range problems {
		*errs = append(*errs, FieldError{Field: p.Field, Detail: p.Detail})
	}
}

// scheduleOf is the schedule of a body that passed checkSchedule.
func scheduleOf(o Optional[json.RawMessage]) schedule.Schedule {
	s, _ := schedule.Parse(o.Value)
	return s
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
		Schedule:        schedule.Schedule{},
		ExpirationHours: in.ExpirationHours.Or(StagingConfigExpirationHoursDefault),
		Permissions:     PermissionsDefault(),
		Status:          StagingFilling,
	}
	if in.Schedule.Has() {
		sc.Schedule = scheduleOf(in.Schedule)
	}
	in.permissionFields.apply(&sc.Permissions)
	return sc
}

// StagingConfigUpdate is the body of PATCH /api/v1/staging-configs/{id}.
// Zone and workspace cannot change: that is another staging config. A
// schedule replaces the config's whole schedule ([] removes it).
type StagingConfigUpdate struct {
	DesiredSessions Optional[int32]           `json:"desired_sessions"`
	Schedule        Optional[json.RawMessage] `json:"schedule"`
	ExpirationHours Optional[float64]         `json:"expiration_hours"`
	permissionFields
}

// Validate lists the body's problems, its schedule checked for overlaps
// from now on.
func (in StagingConfigUpdate) Validate() FieldErrors { return in.ValidateAt(time.Now()) }

// ValidateAt is Validate with the schedule checked for overlaps over the
// horizon from now (schedule.Horizon).
func (in StagingConfigUpdate) ValidateAt(now time.Time) FieldErrors {
	var errs FieldErrors
	checkMin(&errs, "desired_sessions", in.DesiredSessions, optional, 0)
	checkSchedule(&errs, in.Schedule, now)
	checkPositive(&errs, "expiration_hours", in.ExpirationHours, optional)
	in.permissionFields.validate(&errs)
	return errs
}

// Apply changes sc as the body says.
func (in StagingConfigUpdate) Apply(sc *StagingConfig) {
	setIfPresent(&sc.DesiredSessions, in.DesiredSessions)
	if in.Schedule.Has() {
		sc.Schedule = scheduleOf(in.Schedule)
	}
	setIfPresent(&sc.ExpirationHours, in.ExpirationHours)
	in.permissionFields.apply(&sc.Permissions)
}
