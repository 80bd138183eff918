// Package signin owns users' passwords and sign-ins (the password_hash
// column of users and the sign_ins table): a password is stored as a
// bcrypt hash; a sign-in is a random token the browser keeps in an
// HttpOnly cookie (CookieName) or a client sends as a bearer token, stored
// here only as its SHA-256. The gateway signs users in and out; the
// gateway and the config service's /api/v1/session-auth look tokens up.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"
)

// CookieName is the cookie holding a browser's sign-in token.
const CookieName = "greenroom_session"

// TTLDefault is how long a sign-in lasts.
const TTLDefault = 12 * time.Hour

// PasswordMinLength is the shortest password accepted.
const PasswordMinLength = 8

// bcryptCost is bcrypt's work factor: about 50–250 ms a check on this
// kind of machine, which slows guessing without slowing a sign-in.
const bcryptCost = 11

var (
	// ErrBadCredentials: no such user, no password set, or a wrong one
	// (which of them is not said).
	ErrBadCredentials = errors.New("unknown user or wrong password")
	// ErrUnknownToken: no sign-in with this token, or it expired.
	ErrUnknownToken = errors.New("not signed in (unknown or expired sign-in)")
)

// User is who a sign-in belongs to.
type User struct {
	ID   string `db:"id"`
	Name string `db:"username"`
}

// HashPassword returns the bcrypt hash of password to store.
func HashPassword(password string) (string, error) {
	if len(password) < PasswordMinLength {
		return "", fmt.Errorf("must be at least %d characters long", PasswordMinLength)
	}
	if len(password) > 72 {
		return "", errors.New("must be at most 72 bytes long (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	return string(h), err
}

// dummyHash is compared against when the user does not exist, so that a
// wrong user name takes as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("greenroom-no-such-user"), bcryptCost)

// CheckPassword returns the user named username when password is theirs.
func CheckPassword(ctx context.Context, q sqlx.QueryerContext, username, password string) (User, error) {
	var row struct {
		User
		Hash sql.NullString `db:"password_hash"`
	}
	err := sqlx.GetContext(ctx, q, &row, `SELECT id, username, password_hash FROM users WHERE username = $1`, username)
	if errors.Is(err, sql.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("looking up user %q: %w", username, err)
	}
	if !row.Hash.Valid {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return User{}, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword([]byte(row.Hash.String), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	return row.User, nil
}

// SetPassword stores a user's password hash (HashPassword's; nil removes
// the password) and ends the user's sign-ins: whoever knew the old one is
// signed out everywhere. Run it in the transaction that changes the user.
func SetPassword(ctx context.Context, q sqlx.ExecerContext, userID string, hash *string) error {
	if _, err := q.ExecContext(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, userID, hash); err != nil {
		return fmt.Errorf("setting the password of user %s: %w", userID, err)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM sign_ins WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("ending the sign-ins of user %s: %w", userID, err)
	}
	return nil
}

// Create records a sign-in of user lasting ttl and returns its token, to
// give the browser; only its hash is stored.
func Create(ctx context.Context, q sqlx.ExecerContext, userID string, ttl time.Duration) (token string, expires time.Time, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, err
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	expires = time.Now().Add(ttl).UTC().Truncate(time.Microsecond)
	if _, err := q.ExecContext(ctx, `INSERT INTO sign_ins (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`,
		hash(token), userID, expires); err != nil {
		return "", time.Time{}, fmt.Errorf("recording a sign-in: %w", err)
	}
	return token, expires, nil
}

// Lookup returns the user a live sign-in token belongs to.
func Lookup(ctx context.Context, q sqlx.QueryerContext, token string) (User, error) {
	if token == "" {
		return User{}, ErrUnknownToken
	}
	var u User
	err := sqlx.GetContext(ctx, q, &u, `SELECT u.id, u.username FROM sign_ins s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now()`, hash(token))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrUnknownToken
	}
	if err != nil {
		return User{}, fmt.Errorf("looking up a sign-in: %w", err)
	}
	return u, nil
}

// Delete ends the sign-in of token (sign-out); an unknown one is no error.
// Expired sign-ins of any user go with it.
func Delete(ctx context.Context, q sqlx.ExecerContext, token string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM sign_ins WHERE token_hash = $1 OR expires_at < now()`, hash(token)); err != nil {
		return fmt.Errorf("ending a sign-in: %w", err)
	}
	return nil
}

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
