package ports

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// authenticator checks the bearer token of an /api/ call: the admin token
// may do everything, an API key what its scopes grant.
type authenticator struct {
	rs  responder
	app *app.App
	// adminToken is the SHA-256 of the admin token. Both sides are hashed
	// before the constant-time comparison, so that not even the token's
	// length leaks through timing.
	adminToken [sha256.Size]byte
}

func newAuthenticator(rs responder, a *app.App, adminToken string) authenticator {
	return authenticator{rs: rs, app: a, adminToken: sha256.Sum256([]byte(adminToken))}
}

// require lets through requests whose bearer token is the admin token or
// an API key that grants scope, their context naming it as the actor of
// the changes they make; it answers 401 to other tokens, and 403 naming
// the scope to a key without it.
func (au authenticator) require(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, ok := au.authenticate(w, r)
			if !ok {
				return
			}
			if key != nil && !key.Grants(scope) {
				au.rs.problem(w, Problem{Status: http.StatusForbidden, Detail: fmt.Sprintf(
					"API key %q lacks scope %q (it has %s)", key.Name, scope, strings.Join(key.Scopes, ", "))})
				return
			}
			next.ServeHTTP(w, r.WithContext(withActor(r.Context(), key)))
		})
	}
}

// authenticated lets through requests with any valid bearer token, for
// answers that need no scope (an unknown path).
func (au authenticator) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := au.authenticate(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// authenticate returns the API key of the request's bearer token, nil for
// the admin token. When the token is neither it answers 401 itself (500
// when the key could not be looked up) and returns false.
func (au authenticator) authenticate(w http.ResponseWriter, r *http.Request) (*domain.APIKey, bool) {
	token, ok := bearerToken(r)
	if !ok {
		unauthorized(au.rs, w, "send the admin token (GREENROOM_ADMIN_TOKEN) or an API key as Authorization: Bearer <token>")
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], au.adminToken[:]) == 1 {
		return nil, true
	}
	key, err := au.app.AuthenticateAPIKey(r.Context(), token)
	if err != nil {
		au.rs.fail(w, r, err)
		return nil, false
	}
	return &key, true
}

// withActor puts in ctx who a request authenticated with key (nil: the admin
// token) is, as the actor of the changes it makes.
func withActor(ctx context.Context, key *domain.APIKey) context.Context {
	if key == nil {
		return app.WithActor(ctx, app.AdminTokenActor)
	}
	return app.WithActor(ctx, app.APIKeyActor(key.Name))
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header, and whether there was one.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// signInToken returns a user's sign-in token: a bearer token (an API
// client), else the sign-in cookie (a browser); "" when there is neither.
func signInToken(r *http.Request) string {
	if token, ok := bearerToken(r); ok {
		return token
	}
	if c, err := r.Cookie(signin.CookieName); err == nil {
		return c.Value
	}
	return ""
}

// sessionAuth serves GET /api/v1/session-auth: the user of the sign-in
// token and, with ?session=<id>, that session if it is theirs to reach.
func sessionAuth(rs responder, a *app.App) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, err := a.AuthenticateSession(r.Context(), signInToken(r), r.URL.Query().Get("session"))
		if err != nil {
			rs.fail(w, r, err)
			return
		}
		rs.json(w, http.StatusOK, out)
	}
}

const bearerChallenge = `Bearer realm="greenroom"`

func unauthorized(rs responder, w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", bearerChallenge)
	rs.problem(w, Problem{Status: http.StatusUnauthorized, Detail: detail})
}
