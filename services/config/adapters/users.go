package adapters

import (
	"context"
	"fmt"
	"slices"

	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const userSelect = `SELECT u.id, u.username,
	ARRAY(SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id
	      WHERE ug.user_id = u.id ORDER BY g.name) AS groups,
	u.ssh_public_keys, u.attributes, u.password_hash IS NOT NULL AS has_password, u.created_at, u.updated_at
	FROM users u`

// GetUser loads the user named username, with their groups.
func (q Tables) GetUser(ctx context.Context, username string, lock app.Lock) (domain.User, error) {
	var u domain.User
	err := get(ctx, q, &u, fmt.Sprintf("user %q", username), userSelect+` WHERE u.username = $1`+clause(lock, "u"), username)
	return u, err
}

// GetUserByID loads the user with id, with their groups.
func (q Tables) GetUserByID(ctx context.Context, id string) (domain.User, error) {
	var u domain.User
	err := get(ctx, q, &u, "user "+id, userSelect+` WHERE u.id = $1`, id)
	return u, err
}

// ListUsers loads one page of the users, by username.
func (q Tables) ListUsers(ctx context.Context, p domain.Page) (domain.Paged[domain.User], error) {
	return listPage(ctx, q, "users", userSelect, nil, nil,
		byName("u.username", func(v domain.User) string { return v.Username }), p)
}

// InsertUser stores a new user; their groups are set with SetUserGroups.
func (q Tables) InsertUser(ctx context.Context, u domain.User) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO users (id, username, ssh_public_keys, attributes) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Username, u.SSHPublicKeys, u.Attributes); err != nil {
		return fmt.Errorf("inserting user %q: %w", u.Username, err)
	}
	return nil
}

// UpdateUser stores the username, SSH keys and attributes of u; their
// groups are set with SetUserGroups.
func (q Tables) UpdateUser(ctx context.Context, u domain.User) error {
	return exec(ctx, q, fmt.Sprintf("updating user %q", u.Username),
		`UPDATE users SET username = $2, ssh_public_keys = $3, attributes = $4, updated_at = now() WHERE id = $1`,
		u.ID, u.Username, u.SSHPublicKeys, u.Attributes)
}

// SetUserPassword stores the password hash of the user with id (bcrypt,
// from libs/signin.HashPassword; nil removes it) and ends the user's
// sign-ins (libs/signin.SetPassword).
func (q Tables) SetUserPassword(ctx context.Context, id string, hash *string) error {
	return signin.SetPassword(ctx, q.Queryer, id, hash)
}

// SetUserGroups makes the groups named groups the user's only groups.
// Names that name no group are returned as missing, and nothing is changed.
func (q Tables) SetUserGroups(ctx context.Context, userID string, groups []string) (missing []string, err error) {
	var found []struct {
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	if err := q.SelectContext(ctx, &found, `SELECT id, name FROM groups WHERE name = ANY($1) FOR SHARE`, pq.Array(groups)); err != nil {
		return nil, fmt.Errorf("resolving groups: %w", err)
	}
	ids := make([]string, 0, len(found))
	names := make([]string, 0, len(found))
	for _, g := range found {
		ids = append(ids, g.ID)
		names = append(names, g.Name)
	}
	for _, name := range groups {
		if !slices.Contains(names, name) && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return missing, nil
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM user_groups WHERE user_id = $1`, userID); err != nil {
		return nil, fmt.Errorf("clearing groups of user %s: %w", userID, err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO user_groups (user_id, group_id) SELECT $1, unnest($2::uuid[])`,
		userID, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("setting groups of user %s: %w", userID, err)
	}
	return nil, nil
}

// DeleteUser deletes the user with id and their memberships; a foreign-key
// violation means sessions still refer to them.
func (q Tables) DeleteUser(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting user", `DELETE FROM users WHERE id = $1`, id)
}
