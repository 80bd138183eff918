package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiRequestTimeout bounds one call to the admin API.
const apiRequestTimeout = 15 * time.Second

// apiClient calls the config service's admin API (schemas/api/openapi.yaml).
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(g *globalOptions) (*apiClient, error) {
	u, err := url.Parse(g.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api-url %q is not an http(s) URL", g.APIURL)
	}
	return &apiClient{
		base:  strings.TrimRight(g.APIURL, "/"),
		token: g.token(),
		http:  &http.Client{Timeout: apiRequestTimeout},
	}, nil
}

// problem is an RFC 9457 problem details body, as the API answers errors.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

// apiError is an answer with a 4xx or 5xx status.
type apiError struct {
	Method, Path string
	Status       int
	Problem      problem
	hint         string
}

func (e *apiError) Error() string {
	msg := e.Problem.Detail
	if msg == "" {
		msg = e.Problem.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, msg)
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

// isStatus reports whether err is an API answer with the given status.
func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// do sends method path with body (JSON-encoded unless nil) and decodes a
// successful answer into out (unless nil).
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s %s body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API at %s: %w", c.base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("reading %s %s answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		ae := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		_ = json.Unmarshal(raw, &ae.Problem)
		if resp.StatusCode == http.StatusUnauthorized {
			if c.token == "" {
				ae.hint = "no admin token: set GREENROOM_ADMIN_TOKEN or --admin-token"
			} else {
				ae.hint = "check GREENROOM_ADMIN_TOKEN / --admin-token"
			}
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if raw2, ok := out.(*json.RawMessage); ok {
		*raw2 = append((*raw2)[:0], raw...)
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s %s answer: %w", method, path, err)
	}
	return nil
}

// listPageLimit is the ?limit= of list calls: the most the API gives in
// one page (a variable so that a test can make pages small).
var listPageLimit = 1000

// list GETs every page of the list at path with query, following
// next_cursor until it is absent or empty, and calls page with each
// page's items (a JSON array).
func (c *apiClient) list(ctx context.Context, path string, query url.Values, page func(items json.RawMessage) error) error {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", fmt.Sprint(listPageLimit))
	seen := map[string]bool{}
	for {
		var answer struct {
			Items      json.RawMessage `json:"items"`
			NextCursor string          `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &answer); err != nil {
			return err
		}
		if err := page(answer.Items); err != nil {
			return fmt.Errorf("decoding the items of GET %s: %w", path, err)
		}
		if answer.NextCursor == "" {
			return nil
		}
		if seen[answer.NextCursor] {
			return fmt.Errorf("GET %s: the API gave cursor %q twice", path, answer.NextCursor)
		}
		seen[answer.NextCursor] = true
		q.Set("cursor", answer.NextCursor)
	}
}

// listObjects GETs every item of the list at path, as JSON objects.
func (c *apiClient) listObjects(ctx context.Context, path string, query url.Values) ([]map[string]any, error) {
	var all []map[string]any
	err := c.list(ctx, path, query, func(items json.RawMessage) error {
		var page []map[string]any
		err := json.Unmarshal(items, &page)
		all = append(all, page...)
		return err
	})
	return all, err
}

// show GETs path with query and shows the answer: with asJSON as the API
// gave it, indented; else decoded into out, which table then prints.
func (c *apiClient) show(ctx context.Context, path string, query url.Values, asJSON bool, w io.Writer, out any, table func()) error {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, query, nil, &raw); err != nil {
		return err
	}
	if asJSON {
		return writeIndentedJSON(w, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the answer of GET %s: %w", path, err)
	}
	table()
	return nil
}

// apiSession is a session as the API lists it.
type apiSession struct {
	ID          string  `json:"id"`
	RequestID   *string `json:"request_id"`
	User        *string `json:"user"`
	Workspace   string  `json:"workspace"`
	Zone        string  `json:"zone"`
	Agent       *string `json:"agent"`
	Server      *string `json:"server"`
	ContainerID string  `json:"container_id"`
	URL         string  `json:"url"`
	Origin      string  `json:"origin"`
	// OnDemandReason says why it was made on demand (null when staged).
	OnDemandReason  *string    `json:"on_demand_reason"`
	Status          string     `json:"status"`
	StagingConfigID *string    `json:"staging_config_id"`
	FailureReason   string     `json:"failure_reason"`
	CreatedAt       time.Time  `json:"created_at"`
	AssignedAt      *time.Time `json:"assigned_at"`
	ExpiresAt       *time.Time `json:"expires_at"`
}

// apiStagingConfig is a staging config as the API lists it.
type apiStagingConfig struct {
	ID              string  `json:"id"`
	Zone            string  `json:"zone"`
	Workspace       string  `json:"workspace"`
	DesiredSessions int     `json:"desired_sessions"`
	CurrentSessions int     `json:"current_sessions"`
	Status          string  `json:"status"`
	LastError       string  `json:"last_error"`
	ExpirationHours float64 `json:"expiration_hours"`
}

func (c *apiClient) listStagingConfigs(ctx context.Context) ([]apiStagingConfig, error) {
	var all []apiStagingConfig
	err := c.list(ctx, "/api/v1/staging-configs", nil, func(items json.RawMessage) error {
		var page []apiStagingConfig
		err := json.Unmarshal(items, &page)
		all = append(all, page...)
		return err
	})
	return all, err
}

// findStagingConfig returns the live staging config of zone and workspace.
func (c *apiClient) findStagingConfig(ctx context.Context, zone, workspace string) (apiStagingConfig, error) {
	all, err := c.listStagingConfigs(ctx)
	if err != nil {
		return apiStagingConfig{}, err
	}
	for _, sc := range all {
		if sc.Zone == zone && sc.Workspace == workspace {
			return sc, nil
		}
	}
	return apiStagingConfig{}, fmt.Errorf("no staging config for zone %q and workspace %q", zone, workspace)
}

// apiPool is a pool as the API shows it, with its members.
type apiPool struct {
	Name             string          `json:"name"`
	Type             string          `json:"type"`
	ServerAssignment bool            `json:"server_assignment"`
	Labels           []string        `json:"labels"`
	Members          []apiPoolMember `json:"members"`
	Workspaces       []string        `json:"workspaces"`
}

// apiPoolMember is a server of a server pool or an agent of a docker_agent
// pool; the fields of the other kind are zero.
type apiPoolMember struct {
	Name            string   `json:"name"`
	Zone            string   `json:"zone"`
	Enabled         bool     `json:"enabled"`
	Sessions        int      `json:"sessions"`
	EffectiveLabels []string `json:"effective_labels"`

	Address      string  `json:"address"`
	MaxSessions  int     `json:"max_sessions"`
	AssignedUser *string `json:"assigned_user"`

	Cores        float64 `json:"cores"`
	MemoryMB     int     `json:"memory_mb"`
	FreeCores    float64 `json:"free_cores"`
	FreeMemoryMB int     `json:"free_memory_mb"`
}
