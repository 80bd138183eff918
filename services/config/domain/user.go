package domain

import "time"

// User is someone sessions are made for, and the groups they belong to (by
// name).
type User struct {
	ID        string    `db:"id" json:"id"`
	Username  string    `db:"username" json:"username"`
	Groups    Labels    `db:"groups" json:"groups"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

// UserUpdate is the body of PATCH /api/v1/users/{username}; groups, when
// present, replaces the memberships.
type UserUpdate struct {
	Username Optional[string]   `json:"username"`
	Groups   Optional[[]string] `json:"groups"`
}

// UserCreate is the body of POST /api/v1/users: the same fields, username
// required.
type UserCreate UserUpdate

// Validate lists the body's problems.
func (in UserCreate) Validate() FieldErrors { return validateUser(UserUpdate(in), required) }

// Validate lists the body's problems.
func (in UserUpdate) Validate() FieldErrors { return validateUser(in, optional) }

func validateUser(in UserUpdate, p presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "username", in.Username, p)
	checkPresent(&errs, "groups", in.Groups, optional)
	return errs
}

// User returns the user the body describes.
func (in UserCreate) User() User {
	var u User
	UserUpdate(in).Apply(&u)
	return u
}

// Apply changes u as the body says; groups are names only.
func (in UserUpdate) Apply(u *User) {
	setIfPresent(&u.Username, in.Username)
	if in.Groups.Has() {
		u.Groups = Labels(in.Groups.Value)
	}
}
