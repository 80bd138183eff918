package adapters

import (
	"context"
	"errors"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/config/app"
)

// SignedInUser looks up the user of a live sign-in token with
// libs/signin, which owns the sign_ins table.
func (q Tables) SignedInUser(ctx context.Context, token string) (app.SignedInUser, error) {
	u, err := signin.Lookup(ctx, q.Queryer, token)
	if errors.Is(err, signin.ErrUnknownToken) {
		return app.SignedInUser{}, app.ErrNotSignedIn
	}
	if err != nil {
		return app.SignedInUser{}, err
	}
	return app.SignedInUser{ID: u.ID, Name: u.Name}, nil
}
