package app

import (
	"context"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListViolations returns the violations f selects, newest first.
func (a *App) ListViolations(ctx context.Context, f domain.ViolationFilter) ([]domain.Violation, error) {
	return a.store.ListViolations(ctx, f)
}
