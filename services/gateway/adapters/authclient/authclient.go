// Package authclient asks a zone's upstream auth address (the config
// service's GET /api/v1/session-auth) whether a sign-in may use a session.
// It implements app.SessionAuth.
package authclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/greenroom-dev/greenroom/services/gateway/app"
)

var _ app.SessionAuth = (*Client)(nil)

// Client calls session-auth endpoints.
type Client struct{ http *http.Client }

// New returns a client whose calls time out after timeout.
func New(timeout time.Duration) *Client {
	return &Client{http: &http.Client{Timeout: timeout}}
}

// Check asks base whether token may use session sessionID.
func (c *Client) Check(ctx context.Context, base *url.URL, token, sessionID string) (app.Grant, error) {
	u := base.JoinPath("/api/v1/session-auth")
	u.RawQuery = url.Values{"session": {sessionID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return app.Grant{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.http.Do(req)
	if err != nil {
		return app.Grant{}, fmt.Errorf("checking the sign-in at %s: %w", base, err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return app.Grant{}, app.ErrUnauthorized
	case http.StatusForbidden:
		return app.Grant{}, app.ErrForbidden
	case http.StatusNotFound:
		return app.Grant{}, app.ErrUnknownSession
	default:
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return app.Grant{}, fmt.Errorf("checking the sign-in at %s: %s: %s", base, res.Status, body)
	}
	var answer struct {
		User        string `json:"user"`
		UserID      string `json:"user_id"`
		UpstreamURL string `json:"upstream_url"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&answer); err != nil {
		return app.Grant{}, fmt.Errorf("reading the answer of %s: %w", base, err)
	}
	up, err := url.Parse(answer.UpstreamURL)
	if err != nil || up.Host == "" || (up.Scheme != "http" && up.Scheme != "https") {
		return app.Grant{}, fmt.Errorf("session %s has no container to reach (upstream_url %q)", sessionID, answer.UpstreamURL)
	}
	return app.Grant{User: answer.User, UserID: answer.UserID, Upstream: up}, nil
}
