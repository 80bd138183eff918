package app

import (
	"context"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListViolations returns one page of the violations f selects, newest first.
func (a *App) ListViolations(ctx context.Context, f domain.ViolationFilter, p domain.Page) (domain.Paged[domain.Violation], error) {
	return paged(a.store.ListViolations(ctx, f, p))
}
