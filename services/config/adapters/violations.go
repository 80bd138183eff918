package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListViolations loads the violations f selects, newest first. Read only:
// the assigner records them.
func (q Tables) ListViolations(ctx context.Context, f domain.ViolationFilter) ([]domain.Violation, error) {
	var vs []domain.Violation
	err := q.SelectContext(ctx, &vs, `SELECT id, request_id, username, workspace, setting, session_id, created_at
		FROM violations
		WHERE ($1 = '' OR username = $1) AND ($2 = '' OR workspace = $2)
		ORDER BY created_at DESC, id DESC`, f.User, f.Workspace)
	if err != nil {
		return nil, fmt.Errorf("listing violations: %w", err)
	}
	return vs, nil
}
