package ports

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// requireToken lets through requests with "Authorization: Bearer <token>".
// Both sides are hashed before the constant-time comparison, so that not
// even the token's length leaks through timing.
func requireToken(rs responder, token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				unauthorized(rs, w, "send the admin token (GREENROOM_ADMIN_TOKEN) as Authorization: Bearer <token>")
				return
			}
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				unauthorized(rs, w, "the bearer token is not the admin token")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func unauthorized(rs responder, w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="greenroom"`)
	rs.problem(w, Problem{Status: http.StatusUnauthorized, Detail: detail})
}
