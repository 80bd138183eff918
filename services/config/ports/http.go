// Package ports is how the world talks to the config service: the admin
// HTTP API of schemas/api/openapi.yaml under /api/v1 (bearer token: the
// admin token, or an API key limited to its scopes), the one call of a
// signed-in user, /api/v1/session-auth (their own sign-in token), the
// admin web UI at /, and the operator endpoints /healthz, /readyz and
// /metrics, all on one listener.
package ports

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// Config is what the HTTP handler serves.
type Config struct {
	// App runs the use cases.
	App *app.App
	// Ops serves /healthz, /readyz and /metrics (deps.Ops.Mux).
	Ops http.Handler
	// AdminToken is the bearer token that may make every /api/ call but
	// session-auth; API keys (/api/v1/api-keys) may make those their
	// scopes grant.
	AdminToken string
	// Metrics measures every request.
	Metrics *Metrics
	// Log receives the causes of 500s.
	Log *zap.Logger
	// Events feeds GET /api/v1/events, the admin console's live views.
	Events app.EventFeed
}

// NewHandler returns the config service's whole HTTP surface.
func NewHandler(cfg Config) (http.Handler, error) {
	rs := responder{log: cfg.Log}
	a := cfg.App
	ui, err := newConsole(context.Background())
	if err != nil {
		return nil, err
	}

	r := chi.NewRouter()
	r.Use(cfg.Metrics.measure)
	r.NotFound(notFound(rs))
	r.MethodNotAllowed(methodNotAllowed(rs))
	r.Method(http.MethodGet, "/healthz", cfg.Ops)
	r.Method(http.MethodGet, "/readyz", cfg.Ops)
	r.Method(http.MethodGet, "/metrics", cfg.Ops)
	r.Get("/", ui.servePage)
	r.Get("/console/*", ui.serveFile)

	r.Route("/api", func(r chi.Router) {
		auth := newAuthenticator(rs, a, cfg.AdminToken)
		r.NotFound(auth.authenticated(notFound(rs)).ServeHTTP)
		r.MethodNotAllowed(auth.authenticated(methodNotAllowed(rs)).ServeHTTP)
		r.Route("/v1", func(r chi.Router) {
			// A user's call, authenticated by their sign-in token: the
			// admin token is neither needed nor accepted.
			r.Get("/session-auth", sessionAuth(rs, a))
			r.Group(func(r chi.Router) {
				r.Use(auth.require(domain.ScopeSessions))
				sessionsV1(r, rs, a)
			})
			r.Group(func(r chi.Router) {
				r.Use(auth.require(domain.ScopeAdmin))
				adminV1(r, rs, a)
				r.Get("/events", events(cfg.Events, cfg.Metrics.EventStreams))
			})
		})
	})
	return r, nil
}

// sessionsV1 routes the operations of /api/v1 an API key with scope
// sessions may call (as may the admin token and admin keys): each line is
// one operation of openapi.yaml.
func sessionsV1(r chi.Router, rs responder, a *app.App) {
	s := sessionHandlers{rs: rs, app: a}

	r.Get("/sessions", s.list)
	r.Post("/sessions", s.request)
	r.Get("/sessions/{id}", get(rs, "id", a.GetSession))
	r.Delete("/sessions/{id}", s.destroy)
	r.Post("/sessions/{id}/keepalive", s.keepalive)
}

// adminV1 routes the other operations of /api/v1, for the admin token and
// API keys with scope admin: each line is one operation of openapi.yaml.
func adminV1(r chi.Router, rs responder, a *app.App) {
	r.Get("/zones", list(rs, a.ListZones))
	r.Post("/zones", create(rs, a.CreateZone))
	r.Get("/zones/{name}", get(rs, "name", a.GetZone))
	r.Patch("/zones/{name}", update(rs, "name", a.UpdateZone))
	r.Delete("/zones/{name}", remove(rs, "name", a.DeleteZone))

	r.Get("/pools", list(rs, a.ListPools))
	r.Post("/pools", create(rs, a.CreatePool))
	r.Get("/pools/{name}", get(rs, "name", a.GetPool))
	r.Patch("/pools/{name}", update(rs, "name", a.UpdatePool))
	r.Delete("/pools/{name}", remove(rs, "name", a.DeletePool))

	r.Get("/agents", list(rs, a.ListAgents))
	r.Post("/agents", create(rs, a.CreateAgent))
	r.Get("/agents/{name}", get(rs, "name", a.GetAgent))
	r.Patch("/agents/{name}", update(rs, "name", a.UpdateAgent))
	r.Delete("/agents/{name}", remove(rs, "name", a.DeleteAgent))

	r.Get("/servers", list(rs, a.ListServers))
	r.Post("/servers", create(rs, a.CreateServer))
	r.Get("/servers/{name}", get(rs, "name", a.GetServer))
	r.Patch("/servers/{name}", update(rs, "name", a.UpdateServer))
	r.Delete("/servers/{name}", remove(rs, "name", a.DeleteServer))

	r.Get("/workspaces", list(rs, a.ListWorkspaces))
	r.Post("/workspaces", create(rs, a.CreateWorkspace))
	r.Get("/workspaces/{name}", get(rs, "name", a.GetWorkspace))
	r.Patch("/workspaces/{name}", update(rs, "name", a.UpdateWorkspace))
	r.Delete("/workspaces/{name}", remove(rs, "name", a.DeleteWorkspace))

	r.Get("/groups", list(rs, a.ListGroups))
	r.Post("/groups", create(rs, a.CreateGroup))
	r.Get("/groups/{name}", get(rs, "name", a.GetGroup))
	r.Patch("/groups/{name}", update(rs, "name", a.UpdateGroup))
	r.Delete("/groups/{name}", remove(rs, "name", a.DeleteGroup))

	r.Get("/users", list(rs, a.ListUsers))
	r.Post("/users", create(rs, a.CreateUser))
	r.Get("/users/{username}", get(rs, "username", a.GetUser))
	r.Patch("/users/{username}", update(rs, "username", a.UpdateUser))
	r.Delete("/users/{username}", remove(rs, "username", a.DeleteUser))

	r.Get("/web-filter-policies", list(rs, a.ListWebFilterPolicies))
	r.Post("/web-filter-policies", create(rs, a.CreateWebFilterPolicy))
	r.Get("/web-filter-policies/{name}", get(rs, "name", a.GetWebFilterPolicy))
	r.Patch("/web-filter-policies/{name}", update(rs, "name", a.UpdateWebFilterPolicy))
	r.Delete("/web-filter-policies/{name}", remove(rs, "name", a.DeleteWebFilterPolicy))

	r.Get("/staging-configs", list(rs, a.ListStagingConfigs))
	r.Post("/staging-configs", create(rs, a.CreateStagingConfig))
	r.Get("/staging-configs/{id}", get(rs, "id", a.GetStagingConfig))
	r.Patch("/staging-configs/{id}", update(rs, "id", a.UpdateStagingConfig))
	r.Delete("/staging-configs/{id}", remove(rs, "id", a.DeleteStagingConfig))

	r.Get("/vm-providers", list(rs, a.ListVMProviders))
	r.Post("/vm-providers", create(rs, a.CreateVMProvider))
	r.Get("/vm-providers/{name}", get(rs, "name", a.GetVMProvider))
	r.Patch("/vm-providers/{name}", update(rs, "name", a.UpdateVMProvider))
	r.Delete("/vm-providers/{name}", remove(rs, "name", a.DeleteVMProvider))

	r.Get("/dns-providers", list(rs, a.ListDNSProviders))
	r.Post("/dns-providers", create(rs, a.CreateDNSProvider))
	r.Get("/dns-providers/{name}", get(rs, "name", a.GetDNSProvider))
	r.Patch("/dns-providers/{name}", update(rs, "name", a.UpdateDNSProvider))
	r.Delete("/dns-providers/{name}", remove(rs, "name", a.DeleteDNSProvider))

	r.Get("/autoscale-configs", list(rs, a.ListAutoscaleConfigs))
	r.Post("/autoscale-configs", create(rs, a.CreateAutoscaleConfig))
	r.Get("/autoscale-configs/{name}", get(rs, "name", a.GetAutoscaleConfig))
	r.Patch("/autoscale-configs/{name}", update(rs, "name", a.UpdateAutoscaleConfig))
	r.Delete("/autoscale-configs/{name}", remove(rs, "name", a.DeleteAutoscaleConfig))

	r.Get("/violations", sessionHandlers{rs: rs, app: a}.violations)

	r.Get("/api-keys", list(rs, a.ListAPIKeys))
	r.Post("/api-keys", create(rs, a.CreateAPIKey))
	r.Get("/api-keys/{name}", get(rs, "name", a.GetAPIKey))
	r.Delete("/api-keys/{name}", remove(rs, "name", a.DeleteAPIKey))
}

func notFound(rs responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.problem(w, Problem{Status: http.StatusNotFound, Detail: "no such path: " + r.URL.Path})
	}
}

func methodNotAllowed(rs responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.problem(w, Problem{Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path})
	}
}
