package domain

import (
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// User is someone sessions are made for, the groups they belong to (by
// name), and what they bring into a session when their effective group
// says so: SSH public keys (inject_ssh_keys) and attributes
// (expose_user_environment_vars). HasPassword says whether they can sign
// in; the password itself, and its hash, are never part of a User, so
// that no answer, log line or event can carry them.
type User struct {
	ID            string    `db:"id" json:"id"`
	Username      string    `db:"username" json:"username"`
	Groups        Labels    `db:"groups" json:"groups"`
	SSHPublicKeys Labels    `db:"ssh_public_keys" json:"ssh_public_keys"`
	Attributes    StringMap `db:"attributes" json:"attributes"`
	HasPassword   bool      `db:"has_password" json:"has_password"`
	CreatedAt     time.Time `db:"created_at" json:"created_at"`
	UpdatedAt     time.Time `db:"updated_at" json:"updated_at"`
}

// UserUpdate is the body of PATCH /api/v1/users/{username}; groups, SSH
// keys and attributes, when present, replace what the user had. Password
// is write-only: a value sets it (libs/signin's rules, checked when it is
// hashed), null removes it so that the user can no longer sign in.
type UserUpdate struct {
	Username      Optional[string]            `json:"username"`
	Groups        Optional[[]string]          `json:"groups"`
	SSHPublicKeys Optional[[]string]          `json:"ssh_public_keys"`
	Attributes    Optional[map[string]string] `json:"attributes"`
	Password      Optional[string]            `json:"password"`
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
	if present(&errs, "ssh_public_keys", in.SSHPublicKeys, optional) {
		for i, key := range in.SSHPublicKeys.Value {
			if problem := containerconfig.CheckSSHPublicKey(key); problem != "" {
				errs.Add(fmt.Sprintf("ssh_public_keys[%d]", i), "%s", problem)
			}
		}
	}
	if present(&errs, "attributes", in.Attributes, optional) {
		addSettingErrors(&errs, "attributes", containerconfig.CheckAttributes(in.Attributes.Value))
	}
	return errs
}

// User returns the user the body describes.
func (in UserCreate) User() User {
	u := User{SSHPublicKeys: Labels{}, Attributes: StringMap{}}
	UserUpdate(in).Apply(&u)
	return u
}

// Apply changes u as the body says; groups are names only.
func (in UserUpdate) Apply(u *User) {
	setIfPresent(&u.Username, in.Username)
	if in.Groups.Has() {
		u.Groups = Labels(in.Groups.Value)
	}
	if in.SSHPublicKeys.Has() {
		u.SSHPublicKeys = Labels(in.SSHPublicKeys.Value)
	}
	if in.Attributes.Has() {
		u.Attributes = StringMap(in.Attributes.Value)
	}
}
