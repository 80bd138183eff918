package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const workspaceSelect = `SELECT w.id, w.name, w.image, w.cores, w.memory_mb, w.enabled,
	w.include_labels, w.exclude_labels, w.home_directory, w.persistent_profile_path, w.volume_mappings,
	w.docker_exec_config, w.run_config, w.assign_hook, w.port, w.readiness_path,
	w.web_filter_policy_id, wf.name AS web_filter_policy,
	w.server_pool_id, p.name AS server_pool, w.revision, w.created_at, w.updated_at
	FROM workspaces w
	LEFT JOIN pools p ON p.id = w.server_pool_id
	LEFT JOIN web_filter_policies wf ON wf.id = w.web_filter_policy_id`

// GetWorkspace loads the workspace named name.
func (q Tables) GetWorkspace(ctx context.Context, name string, lock app.Lock) (domain.Workspace, error) {
	var w domain.Workspace
	err := get(ctx, q, &w, fmt.Sprintf("workspace %q", name), workspaceSelect+` WHERE w.name = $1`+clause(lock, "w"), name)
	return w, err
}

func getWorkspaceByID(ctx context.Context, q Queryer, id string) (domain.Workspace, error) {
	var w domain.Workspace
	err := get(ctx, q, &w, "workspace "+id, workspaceSelect+` WHERE w.id = $1`, id)
	return w, err
}

// ListWorkspaces loads one page of the workspaces, by name.
func (q Tables) ListWorkspaces(ctx context.Context, p domain.Page) (domain.Paged[domain.Workspace], error) {
	return listPage(ctx, q, "workspaces", workspaceSelect, nil, nil,
		byName("w.name", func(v domain.Workspace) string { return v.Name }), p)
}

// ListWorkspacesOfServerPools loads the workspaces whose server pool is one
// of the pools with ids, by name.
func (q Tables) ListWorkspacesOfServerPools(ctx context.Context, ids []string) ([]domain.Workspace, error) {
	return listInPools[domain.Workspace](ctx, q, "workspaces", workspaceSelect, "w.server_pool_id", ids, "w.name")
}

// InsertWorkspace stores a new workspace (its server pool and web filter
// policy by id) and returns it as stored.
func (q Tables) InsertWorkspace(ctx context.Context, w domain.Workspace) (domain.Workspace, error) {
	_, err := q.ExecContext(ctx, `INSERT INTO workspaces
		(id, name, image, cores, memory_mb, enabled, include_labels, exclude_labels, persistent_profile_path,
		 volume_mappings, docker_exec_config, run_config, port, readiness_path, server_pool_id,
		 home_directory, web_filter_policy_id, assign_hook)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		w.ID, w.Name, w.Image, w.Cores, w.MemoryMB, w.Enabled, w.IncludeLabels, w.ExcludeLabels, w.PersistentProfilePath,
		w.VolumeMappings, w.DockerExecConfig, w.RunConfig, w.Port, w.ReadinessPath, w.ServerPoolID,
		w.HomeDirectory, w.WebFilterPolicyID, w.AssignHook)
	if err != nil {
		return domain.Workspace{}, fmt.Errorf("inserting workspace %q: %w", w.Name, err)
	}
	return getWorkspaceByID(ctx, q, w.ID)
}

// UpdateWorkspace stores every field of w and returns it as stored, with
// the revision the database gave it (a trigger raises it when a field
// that shapes its containers changed).
func (q Tables) UpdateWorkspace(ctx context.Context, w domain.Workspace) (domain.Workspace, error) {
	err := exec(ctx, q, fmt.Sprintf("updating workspace %q", w.Name), `UPDATE workspaces
		SET name = $2, image = $3, cores = $4, memory_mb = $5, enabled = $6, include_labels = $7,
			exclude_labels = $8, persistent_profile_path = $9, volume_mappings = $10,
			docker_exec_config = $11, run_config = $12, port = $13, readiness_path = $14,
			server_pool_id = $15, home_directory = $16, web_filter_policy_id = $17, assign_hook = $18,
			updated_at = now()
		WHERE id = $1`,
		w.ID, w.Name, w.Image, w.Cores, w.MemoryMB, w.Enabled, w.IncludeLabels, w.ExcludeLabels, w.PersistentProfilePath,
		w.VolumeMappings, w.DockerExecConfig, w.RunConfig, w.Port, w.ReadinessPath, w.ServerPoolID,
		w.HomeDirectory, w.WebFilterPolicyID, w.AssignHook)
	if err != nil {
		return domain.Workspace{}, err
	}
	return getWorkspaceByID(ctx, q, w.ID)
}

// ListWorkspacesOfWebFilterPolicy loads the workspaces that use the web
// filter policy with id, by name.
func (q Tables) ListWorkspacesOfWebFilterPolicy(ctx context.Context, id string) ([]domain.Workspace, error) {
	var ws []domain.Workspace
	if err := q.SelectContext(ctx, &ws, workspaceSelect+` WHERE w.web_filter_policy_id = $1 ORDER BY w.name`, id); err != nil {
		return nil, fmt.Errorf("listing workspaces of web filter policy %s: %w", id, err)
	}
	return ws, nil
}

// DeleteWorkspace deletes the workspace with id and its ended sessions; a
// foreign-key violation means staging configs still refer to it.
func (q Tables) DeleteWorkspace(ctx context.Context, id string) error {
	// Its ended sessions go with it (their events stay in the audit log),
	// and with them what kept its deleted staging configs; the caller
	// checked that no session of it is live.
	if _, err := q.ExecContext(ctx, `DELETE FROM sessions WHERE workspace_id = $1 AND status IN ('destroyed', 'failed')`, id); err != nil {
		return fmt.Errorf("deleting the workspace's ended sessions: %w", err)
	}
	if err := purgeDeletedStagingConfigs(ctx, q, "workspace_id", id); err != nil {
		return err
	}
	return exec(ctx, q, "deleting workspace", `DELETE FROM workspaces WHERE id = $1`, id)
}
