package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// Session limits are intervals, read as nanoseconds (domain.Duration).
const (
	groupColumns = `g.id, g.name, g.priority, g.allow_audio, g.allow_clipboard_down, g.allow_clipboard_up,
	g.allow_downloads, g.allow_microphone, g.allow_uploads, g.allow_gamepad,
	g.expose_user_environment_vars, g.inject_ssh_keys, g.run_config, g.volume_mapping,
	g.web_filter_policy_id, (SELECT wf.name FROM web_filter_policies wf WHERE wf.id = g.web_filter_policy_id) AS web_filter_policy,
	(EXTRACT(EPOCH FROM g.session_time_limit) * 1000000000)::bigint AS session_time_limit,
	(EXTRACT(EPOCH FROM g.keepalive_expiration) * 1000000000)::bigint AS keepalive_expiration,
	g.created_at, g.updated_at`
	groupSelect = `SELECT ` + groupColumns + ` FROM groups g`
)

// GetGroup loads the group named name.
func (q Tables) GetGroup(ctx context.Context, name string, lock app.Lock) (domain.Group, error) {
	var g domain.Group
	err := get(ctx, q, &g, fmt.Sprintf("group %q", name), groupSelect+` WHERE g.name = $1`+clause(lock, "g"), name)
	return g, err
}

// ListGroups loads one page of the groups, by name.
func (q Tables) ListGroups(ctx context.Context, p domain.Page) (domain.Paged[domain.Group], error) {
	return listPage(ctx, q, "groups", groupSelect, nil, nil,
		byName("g.name", func(v domain.Group) string { return v.Name }), p)
}

// InsertGroup stores a new group (its web filter policy by id) and returns
// it as stored.
func (q Tables) InsertGroup(ctx context.Context, g domain.Group) (domain.Group, error) {
	var out domain.Group
	err := q.GetContext(ctx, &out, `INSERT INTO groups AS g
		(id, name, priority, allow_audio, allow_clipboard_down, allow_clipboard_up, allow_downloads,
		 allow_microphone, allow_uploads, allow_gamepad, expose_user_environment_vars, inject_ssh_keys,
		 run_config, volume_mapping, web_filter_policy_id, session_time_limit, keepalive_expiration)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::interval, $17::interval)
		RETURNING `+groupColumns,
		g.ID, g.Name, g.Priority, g.AllowAudio, g.AllowClipboardDown, g.AllowClipboardUp, g.AllowDownloads,
		g.AllowMicrophone, g.AllowUploads, g.AllowGamepad, g.ExposeUserEnvironmentVars, g.InjectSSHKeys,
		g.RunConfig, g.VolumeMapping, g.WebFilterPolicyID, intervalArg(g.SessionTimeLimit), intervalArg(g.KeepaliveExpiration))
	if err != nil {
		return domain.Group{}, fmt.Errorf("inserting group %q: %w", g.Name, err)
	}
	return out, nil
}

// UpdateGroup stores every field of g and returns it as stored.
func (q Tables) UpdateGroup(ctx context.Context, g domain.Group) (domain.Group, error) {
	var out domain.Group
	err := get(ctx, q, &out, fmt.Sprintf("group %q", g.Name), `UPDATE groups AS g
		SET name = $2, priority = $3, allow_audio = $4, allow_clipboard_down = $5, allow_clipboard_up = $6,
			allow_downloads = $7, allow_microphone = $8, allow_uploads = $9, allow_gamepad = $10,
			expose_user_environment_vars = $11, inject_ssh_keys = $12, run_config = $13,
			volume_mapping = $14, web_filter_policy_id = $15, session_time_limit = $16::interval,
			keepalive_expiration = $17::interval, updated_at = now()
		WHERE g.id = $1 RETURNING `+groupColumns,
		g.ID, g.Name, g.Priority, g.AllowAudio, g.AllowClipboardDown, g.AllowClipboardUp, g.AllowDownloads,
		g.AllowMicrophone, g.AllowUploads, g.AllowGamepad, g.ExposeUserEnvironmentVars, g.InjectSSHKeys,
		g.RunConfig, g.VolumeMapping, g.WebFilterPolicyID, intervalArg(g.SessionTimeLimit), intervalArg(g.KeepaliveExpiration))
	return out, err
}

// ListGroupsOfWebFilterPolicy loads the groups that use the web filter
// policy with id, by name.
func (q Tables) ListGroupsOfWebFilterPolicy(ctx context.Context, id string) ([]domain.Group, error) {
	var gs []domain.Group
	if err := q.SelectContext(ctx, &gs, groupSelect+` WHERE g.web_filter_policy_id = $1 ORDER BY g.name`, id); err != nil {
		return nil, fmt.Errorf("listing groups of web filter policy %s: %w", id, err)
	}
	return gs, nil
}

// intervalArg is a session limit as an interval parameter: NULL for none.
func intervalArg(d *domain.Duration) any {
	if d == nil {
		return nil
	}
	return sessions.IntervalArg(time.Duration(*d))
}

// DeleteGroup deletes the group with id; its memberships go with it.
func (q Tables) DeleteGroup(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting group", `DELETE FROM groups WHERE id = $1`, id)
}
