package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListUsers returns one page (p) of every user with their groups.
func (a *App) ListUsers(ctx context.Context, p domain.Page) (domain.Paged[domain.User], error) {
	return paged(a.store.ListUsers(ctx, p))
}

// GetUser returns the user named username.
func (a *App) GetUser(ctx context.Context, username string) (domain.User, error) {
	u, err := a.store.GetUser(ctx, username, NoLock)
	return u, notFoundOr(err, "no user named %q", username)
}

// CreateUser stores a new user in the groups the body names, with the
// hash of their password when the body gives one.
func (a *App) CreateUser(ctx context.Context, in domain.UserCreate) (domain.User, error) {
	hash, err := a.passwordHash(in.Validate(), in.Password)
	if err != nil {
		return domain.User{}, err
	}
	u := in.User()
	u.ID = domain.NewID()
	err = a.change(ctx, KindUser, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		if err := tx.InsertUser(ctx, u); err != nil {
			return "", "", err
		}
		if err := setGroups(ctx, tx, u); err != nil {
			return "", "", err
		}
		if hash != nil {
			if err := tx.SetUserPassword(ctx, u.ID, hash); err != nil {
				return "", "", err
			}
		}
		u, err = tx.GetUserByID(ctx, u.ID)
		return u.ID, u.Username, err
	})
	return u, explain(err, fmt.Sprintf("user %q", in.Username.Value))
}

// UpdateUser changes the user named username; groups, when given, replace
// their memberships; a password replaces theirs, null removes it.
func (a *App) UpdateUser(ctx context.Context, username string, in domain.UserUpdate) (domain.User, error) {
	hash, err := a.passwordHash(in.Validate(), in.Password)
	if err != nil {
		return domain.User{}, err
	}
	var u domain.User
	err = a.change(ctx, KindUser, OpUpdated, username, func(tx Tx) (_, _ string, err error) {
		if u, err = tx.GetUser(ctx, username, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no user named %q", username)
		}
		in.Apply(&u)
		if err := tx.UpdateUser(ctx, u); err != nil {
			return "", "", err
		}
		if in.Groups.Has() {
			if err := setGroups(ctx, tx, u); err != nil {
				return "", "", err
			}
		}
		if in.Password.Set {
			if err := tx.SetUserPassword(ctx, u.ID, hash); err != nil {
				return "", "", err
			}
		}
		u, err = tx.GetUserByID(ctx, u.ID)
		return u.ID, u.Username, err
	})
	return u, explain(err, fmt.Sprintf("user %q", in.Username.Or(username)))
}

// passwordHash refuses a user body with problems — errs, and a password
// libs/signin's rules refuse — and otherwise returns the hash of its
// password: nil when it gives none, or null. The hash is made before any
// transaction begins: bcrypt is slow on purpose.
func (a *App) passwordHash(errs domain.FieldErrors, password domain.Optional[string]) (*string, error) {
	var hash *string
	if password.Has() {
		h, err := a.hashPassword(password.Value)
		if err != nil {
			errs.Add("password", "%s", err)
		}
		hash = &h
	}
	if len(errs) > 0 {
		return nil, invalid(errs)
	}
	return hash, nil
}

// setGroups makes u.Groups the user's memberships.
func setGroups(ctx context.Context, tx Tx, u domain.User) error {
	missing, err := tx.SetUserGroups(ctx, u.ID, u.Groups)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fieldError(Invalid, "groups", "no group named %s", `"`+strings.Join(missing, `", "`)+`"`)
	}
	return nil
}

// DeleteUser deletes the user named username, unless sessions refer to
// them.
func (a *App) DeleteUser(ctx context.Context, username string) error {
	err := a.change(ctx, KindUser, OpDeleted, username, func(tx Tx) (_, _ string, err error) {
		u, err := tx.GetUser(ctx, username, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no user named %q", username)
		}
		return u.ID, u.Username, tx.DeleteUser(ctx, u.ID)
	})
	return explain(err, fmt.Sprintf("user %q", username))
}
