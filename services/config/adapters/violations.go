package adapters

import (
	"context"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListViolations loads one page of the violations f selects, newest
// first. Read only: the assigner records them.
func (q Tables) ListViolations(ctx context.Context, f domain.ViolationFilter, p domain.Page) (domain.Paged[domain.Violation], error) {
	return listPage(ctx, q, "violations",
		`SELECT v.id, v.request_id, v.username, v.workspace, v.setting, v.session_id, v.created_at FROM violations v`,
		[]string{"($1 = '' OR v.username = $1)", "($2 = '' OR v.workspace = $2)"}, []any{f.User, f.Workspace},
		newestFirst(func(v domain.Violation) (time.Time, string) { return v.CreatedAt, v.ID }, "v"), p)
}
