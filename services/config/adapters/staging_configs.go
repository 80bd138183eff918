package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// stagingConfigSelect reads staging configs (live ones: deleted_at IS NULL) with the
// number of their sessions currently staged, which the partial index
// sessions_staged_claim_idx counts, and the database's clock, which their
// schedules are read at (StagingConfig.ReadSchedule).
const stagingConfigSelect = `SELECT sc.id, sc.zone_id, z.name AS zone, sc.workspace_id, w.name AS workspace,
	sc.desired_sessions, sc.schedule, sc.expiration_hours, now() AS read_at,
	sc.allow_audio, sc.allow_clipboard_down, sc.allow_clipboard_up, sc.allow_downloads,
	sc.allow_microphone, sc.allow_uploads, sc.allow_gamepad,
	(SELECT count(*) FROM sessions s WHERE s.staging_config_id = sc.id AND s.status = 'staged') AS current_sessions,
	sc.status, sc.last_error, sc.last_error_at, sc.created_at, sc.updated_at
	FROM staging_configs sc
	JOIN zones z ON z.id = sc.zone_id
	JOIN workspaces w ON w.id = sc.workspace_id`

// GetStagingConfig loads the live staging config with id.
func (q Tables) GetStagingConfig(ctx context.Context, id string, lock app.Lock) (domain.StagingConfig, error) {
	var sc domain.StagingConfig
	err := get(ctx, q, &sc, "staging config "+id, stagingConfigSelect+` WHERE sc.deleted_at IS NULL AND sc.id = $1`+clause(lock, "sc"), id)
	sc.ReadSchedule(sc.ReadAt)
	return sc, err
}

// ListStagingConfigs loads one page of the live staging configs, by zone
// and workspace.
func (q Tables) ListStagingConfigs(ctx context.Context, p domain.Page) (domain.Paged[domain.StagingConfig], error) {
	page, err := listPage(ctx, q, "staging configs", stagingConfigSelect, []string{"sc.deleted_at IS NULL"}, nil,
		keyset[domain.StagingConfig]{
			columns: []string{"z.name", "w.name", "sc.id"},
			key:     func(sc domain.StagingConfig) []string { return []string{sc.Zone, sc.Workspace, sc.ID} },
		}, p)
	for i := range page.Items {
		page.Items[i].ReadSchedule(page.Items[i].ReadAt)
	}
	return page, err
}

// CountLiveStagingConfigsInZone counts the staging configs that target the
// zone with id.
func (q Tables) CountLiveStagingConfigsInZone(ctx context.Context, zoneID string) (int, error) {
	return countLiveStagingConfigs(ctx, q, "zone_id", zoneID)
}

// CountLiveStagingConfigsOfWorkspace counts the staging configs that keep
// sessions of the workspace with id staged.
func (q Tables) CountLiveStagingConfigsOfWorkspace(ctx context.Context, workspaceID string) (int, error) {
	return countLiveStagingConfigs(ctx, q, "workspace_id", workspaceID)
}

// countLiveStagingConfigs counts the live staging configs of a zone or
// workspace (column is zone_id or workspace_id).
func countLiveStagingConfigs(ctx context.Context, q Queryer, column, id string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM staging_configs WHERE `+column+` = $1 AND deleted_at IS NULL`, id)
	if err != nil {
		return 0, fmt.Errorf("counting staging configs by %s %s: %w", column, id, err)
	}
	return n, nil
}

// InsertStagingConfig stores a new staging config (zone and workspace by
// id) and returns it as stored. A live config for the same (zone,
// workspace) violates staging_configs_zone_workspace_idx.
func (q Tables) InsertStagingConfig(ctx context.Context, sc domain.StagingConfig) (domain.StagingConfig, error) {
	_, err := q.ExecContext(ctx, `INSERT INTO staging_configs
		(id, zone_id, workspace_id, desired_sessions, expiration_hours,
		 allow_audio, allow_clipboard_down, allow_clipboard_up, allow_downloads,
		 allow_microphone, allow_uploads, allow_gamepad, schedule)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		sc.ID, sc.ZoneID, sc.WorkspaceID, sc.DesiredSessions, sc.ExpirationHours,
		sc.AllowAudio, sc.AllowClipboardDown, sc.AllowClipboardUp, sc.AllowDownloads,
		sc.AllowMicrophone, sc.AllowUploads, sc.AllowGamepad, sc.Schedule)
	if err != nil {
		return domain.StagingConfig{}, fmt.Errorf("inserting staging config: %w", err)
	}
	return q.GetStagingConfig(ctx, sc.ID, app.NoLock)
}

// UpdateStagingConfig stores the settable fields of sc (desired sessions,
// schedule, expiration, permissions) and returns it as stored. Status,
// last_error and the counts are the provisioner's.
func (q Tables) UpdateStagingConfig(ctx context.Context, sc domain.StagingConfig) (domain.StagingConfig, error) {
	err := exec(ctx, q, "updating staging config "+sc.ID, `UPDATE staging_configs
		SET desired_sessions = $2, expiration_hours = $3,
			allow_audio = $4, allow_clipboard_down = $5, allow_clipboard_up = $6, allow_downloads = $7,
			allow_microphone = $8, allow_uploads = $9, allow_gamepad = $10, schedule = $11, updated_at = now()
		WHERE id = $1 AND deleted_at IS NULL`,
		sc.ID, sc.DesiredSessions, sc.ExpirationHours,
		sc.AllowAudio, sc.AllowClipboardDown, sc.AllowClipboardUp, sc.AllowDownloads,
		sc.AllowMicrophone, sc.AllowUploads, sc.AllowGamepad, sc.Schedule)
	if err != nil {
		return domain.StagingConfig{}, err
	}
	return q.GetStagingConfig(ctx, sc.ID, app.NoLock)
}

// SoftDeleteStagingConfig marks the staging config with id deleted. The row
// stays while sessions refer to it; the provisioner destroys its staged
// sessions when it hears of the deletion.
func (q Tables) SoftDeleteStagingConfig(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting staging config "+id,
		`UPDATE staging_configs SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
}

// purgeDeletedStagingConfigs removes the rows of deleted staging configs of
// a zone or workspace (column is zone_id or workspace_id) that no session
// refers to any more, so that they do not keep it from being deleted.
func purgeDeletedStagingConfigs(ctx context.Context, q Queryer, column, id string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM staging_configs sc
		WHERE sc.`+column+` = $1 AND sc.deleted_at IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.staging_config_id = sc.id)`, id)
	if err != nil {
		return fmt.Errorf("purging deleted staging configs: %w", err)
	}
	return nil
}
