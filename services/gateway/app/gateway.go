// Package app is the gateway's use cases: signing users in and out,
// deciding whether a request may reach a session (Authorize), and keeping
// sessions alive while they are used (Touch). It depends on the small
// interfaces below, implemented in adapters.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/gateway/domain"
)

// What Authorize and SignIn refuse, for the ports to answer.
var (
	// ErrUnknownSession: no live session with a user has this id (a
	// staged session nobody was given is not there either).
	ErrUnknownSession = errors.New("no such session")
	// ErrWrongDomain: the session's zone is not served on this host.
	ErrWrongDomain = errors.New("this session is not served on this domain")
	// ErrForeignOrigin: a WebSocket opened by a page of another site.
	ErrForeignOrigin = errors.New("WebSocket from another site refused")
	// ErrUnauthorized: not signed in.
	ErrUnauthorized = errors.New("not signed in")
	// ErrForbidden: the session is another user's.
	ErrForbidden = errors.New("this session is another user's")
	// ErrTooManyAttempts: too many failed sign-ins for this user or from
	// this client; wait.
	ErrTooManyAttempts = errors.New("too many failed sign-ins; try again later")
)

// Route is what the gateway knows of a session before it asks the
// session's zone who may use it.
type Route struct {
	// UserID is "" for a session with no user (a staged one).
	UserID string
	// Live is true for a running session only: one being handed over,
	// ending or ended is not reached.
	Live                bool
	AllowOriginDomain   string
	UpstreamAuthAddress string
}

// Sessions reads sessions (adapters/postgres).
type Sessions interface {
	// Route returns the session's route; ErrUnknownSession when there is
	// no such session.
	Route(ctx context.Context, sessionID string) (Route, error)
	// OfUser lists a user's live sessions, newest first.
	OfUser(ctx context.Context, userID string) ([]SessionSummary, error)
}

// SessionSummary is a user's session as the dashboard lists it.
type SessionSummary struct {
	ID        string    `db:"id"`
	Workspace string    `db:"workspace"`
	Zone      string    `db:"zone"`
	Status    string    `db:"status"`
	URL       string    `db:"url"`
	CreatedAt time.Time `db:"created_at"`
}

// Link is where the dashboard opens the session: its url when a browser
// can open it (a fixed server's tcp:// address cannot be), else "".
func (s SessionSummary) Link() string {
	if strings.HasPrefix(s.URL, "http://") || strings.HasPrefix(s.URL, "https://") {
		return s.URL
	}
	return ""
}

// SignIns keeps passwords and sign-ins (libs/signin in PostgreSQL).
type SignIns interface {
	CheckPassword(ctx context.Context, username, password string) (signin.User, error)
	Create(ctx context.Context, userID string, ttl time.Duration) (token string, expires time.Time, err error)
	Lookup(ctx context.Context, token string) (signin.User, error)
	Delete(ctx context.Context, token string) error
}

// Grant is a zone's answer that a user may use a session.
type Grant struct {
	User   string
	UserID string
	// Upstream is the session's container.
	Upstream *url.URL
}

// SessionAuth asks a zone's upstream auth address (the config service's
// GET /api/v1/session-auth) whether the sign-in token may use the session:
// a Grant, or ErrUnauthorized, ErrForbidden, ErrUnknownSession.
type SessionAuth interface {
	Check(ctx context.Context, base *url.URL, token, sessionID string) (Grant, error)
}

// Workspace is a tile of the dashboard: an enabled workspace.
type Workspace struct {
	Name string `db:"name"`
	// ServerPool is set for a workspace whose sessions are on fixed
	// servers (one tile all the same).
	ServerPool string `db:"server_pool"`
}

// Catalog reads what a user may launch, and where (adapters/postgres).
type Catalog interface {
	// Workspaces lists the enabled workspaces by name.
	Workspaces(ctx context.Context) ([]Workspace, error)
	// Zones lists the zones with their allow_origin_domain, by priority.
	Zones(ctx context.Context) ([]domain.Zone, error)
}

// Launched is the session a launch got.
type Launched struct {
	SessionID string
	URL       string
}

// Sessions requests and ends sessions on the bus (adapters/bus): a launch
// is greenroom.session.requested waited for, an end
// greenroom.session.destroy.
type Requests interface {
	Request(ctx context.Context, user, workspace, zone string) (Launched, error)
	Destroy(ctx context.Context, sessionID, reason string) error
}

// Keepalives announces that a session is being used
// (greenroom.session.keepalive).
type Keepalives interface {
	Keepalive(ctx context.Context, sessionID string) error
}

// Config tunes the gateway; zero values take the defaults.
type Config struct {
	// AuthFallback is where sign-ins are checked for zones whose
	// upstream_auth_address is $request_host$ (the config service).
	AuthFallback *url.URL
	// SignInTTL is how long a sign-in lasts (signin.TTLDefault).
	SignInTTL time.Duration
	// KeepaliveEvery is the most often a session's traffic is announced
	// as a keepalive.
	KeepaliveEvery time.Duration
	// GrantTTL is how long a zone's grant is reused for the same sign-in
	// and session, so that a page's many requests cost one check. A
	// sign-out here drops it at once; other replicas' copies expire.
	GrantTTL time.Duration
	// FailedSignIns is how many failed sign-ins a user name or a client
	// may make in a row; then one more every FailedSignInEvery.
	FailedSignIns     int
	FailedSignInEvery time.Duration
}

// Defaults of Config.
const (
	KeepaliveEveryDefault    = 30 * time.Second
	GrantTTLDefault          = 5 * time.Second
	FailedSignInsDefault     = 5
	FailedSignInEveryDefault = 12 * time.Second
)

// Gateway carries out the use cases.
type Gateway struct {
	cfg        Config
	sessions   Sessions
	signIns    SignIns
	auth       SessionAuth
	keepalives Keepalives
	catalog    Catalog
	requests   Requests
	log        *zap.Logger
	now        func() time.Time

	mu       sync.Mutex
	grants   map[grantKey]cachedGrant
	touched  map[string]time.Time
	failures map[string]*rate.Limiter
}

type grantKey struct{ token, session string }

type cachedGrant struct {
	grant Grant
	until time.Time
}

// Adapters are what the gateway works through.
type Adapters struct {
	Sessions   Sessions
	SignIns    SignIns
	Auth       SessionAuth
	Keepalives Keepalives
	Catalog    Catalog
	Requests   Requests
}

// New returns a gateway over its adapters.
func New(cfg Config, a Adapters, log *zap.Logger) *Gateway {
	if cfg.AuthFallback == nil {
		cfg.AuthFallback, _ = url.Parse("http://127.0.0.1:8080")
	}
	if cfg.SignInTTL <= 0 {
		cfg.SignInTTL = signin.TTLDefault
	}
	if cfg.KeepaliveEvery <= 0 {
		cfg.KeepaliveEvery = KeepaliveEveryDefault
	}
	if cfg.GrantTTL <= 0 {
		cfg.GrantTTL = GrantTTLDefault
	}
	if cfg.FailedSignIns <= 0 {
		cfg.FailedSignIns = FailedSignInsDefault
	}
	if cfg.FailedSignInEvery <= 0 {
		cfg.FailedSignInEvery = FailedSignInEveryDefault
	}
	return &Gateway{cfg: cfg, sessions: a.Sessions, signIns: a.SignIns, auth: a.Auth, keepalives: a.Keepalives,
		catalog: a.Catalog, requests: a.Requests, log: log.Named("gateway"), now: time.Now,
		grants: map[grantKey]cachedGrant{}, touched: map[string]time.Time{}, failures: map[string]*rate.Limiter{}}
}

// Config returns the configuration in effect.
func (g *Gateway) Config() Config { return g.cfg }

// usernameMax bounds the user names a sign-in looks up (and keys its
// rate limit by).
const usernameMax = 256

// SignIn checks a user's password and starts a sign-in, whose token the
// browser keeps. Attempts are limited per user name and per client
// (ErrTooManyAttempts), whichever runs out first: each attempt takes one
// of the allowance before the password is checked, so that parallel
// guesses are counted too, and a successful one gives it back.
func (g *Gateway) SignIn(ctx context.Context, username, password, client string) (token string, expires time.Time, err error) {
	if len(username) > usernameMax {
		return "", time.Time{}, signin.ErrBadCredentials
	}
	attempt, ok := g.reserve([]string{"user:" + username, "client:" + client})
	if !ok {
		return "", time.Time{}, ErrTooManyAttempts
	}
	u, err := g.signIns.CheckPassword(ctx, username, password)
	if errors.Is(err, signin.ErrBadCredentials) {
		g.log.Info("failed sign-in", zap.String("user", username), zap.String("client", client))
		return "", time.Time{}, err
	}
	attempt.giveBack()
	if err != nil {
		return "", time.Time{}, err
	}
	token, expires, err = g.signIns.Create(ctx, u.ID, g.cfg.SignInTTL)
	if err == nil {
		g.log.Info("signed in", zap.String("user", u.Name), zap.String("client", client))
	}
	return token, expires, err
}

// attempt is the allowance one sign-in attempt took.
type attempt struct {
	g            *Gateway
	reservations []*rate.Reservation
}

// giveBack returns the allowance: the attempt succeeded (or was not a
// guess).
func (a attempt) giveBack() {
	a.g.mu.Lock()
	defer a.g.mu.Unlock()
	for _, r := range a.reservations {
		r.CancelAt(a.g.now())
	}
}

// reserve takes one attempt of every key's allowance, or none when one of
// them has none left.
func (g *Gateway) reserve(keys []string) (attempt, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if len(g.failures) > 10_000 {
		// Forget the keys whose allowance has grown back whole.
		for k, l := range g.failures {
			if l.TokensAt(now) >= float64(g.cfg.FailedSignIns) {
				delete(g.failures, k)
			}
		}
	}
	a := attempt{g: g}
	for _, k := range keys {
		l, ok := g.failures[k]
		if !ok {
			l = rate.NewLimiter(rate.Every(g.cfg.FailedSignInEvery), g.cfg.FailedSignIns)
			g.failures[k] = l
		}
		r := l.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			for _, taken := range a.reservations {
				taken.CancelAt(now)
			}
			return attempt{}, false
		}
		a.reservations = append(a.reservations, r)
	}
	return a, true
}

// SignOut ends the sign-in of token.
func (g *Gateway) SignOut(ctx context.Context, token string) error {
	g.mu.Lock()
	for k := range g.grants {
		if k.token == token {
			delete(g.grants, k)
		}
	}
	g.mu.Unlock()
	return g.signIns.Delete(ctx, token)
}

// CurrentUser returns who token signs in; ErrUnauthorized when nobody.
func (g *Gateway) CurrentUser(ctx context.Context, token string) (signin.User, error) {
	u, err := g.signIns.Lookup(ctx, token)
	if errors.Is(err, signin.ErrUnknownToken) {
		return u, ErrUnauthorized
	}
	return u, err
}

// Sessions lists the live sessions of a user.
func (g *Gateway) Sessions(ctx context.Context, userID string) ([]SessionSummary, error) {
	return g.sessions.OfUser(ctx, userID)
}

// Request is what Authorize judges of one request for a session.
type Request struct {
	SessionID string
	// Token is the sign-in token the request carries ("" for none).
	Token string
	// Host is the request's Host; Origin its Origin header.
	Host, Origin string
	// Upgrade is set for a WebSocket upgrade.
	Upgrade bool
}

// Authorize decides whether r may reach its session: the session is live
// and has a user, it is served on r's host (its zone's
// allow_origin_domain), a WebSocket comes from that domain's pages, and
// the zone's upstream auth address says the sign-in is the session's
// user's.
func (g *Gateway) Authorize(ctx context.Context, r Request) (Grant, error) {
	if !canonicalID(r.SessionID) {
		return Grant{}, ErrUnknownSession
	}
	route, err := g.sessions.Route(ctx, r.SessionID)
	if err != nil {
		return Grant{}, err
	}
	if !route.Live || route.UserID == "" {
		return Grant{}, ErrUnknownSession
	}
	if !domain.ServedOn(r.Host, route.AllowOriginDomain) {
		return Grant{}, ErrWrongDomain
	}
	if r.Upgrade && !domain.OriginAllowed(r.Origin, r.Host, route.AllowOriginDomain) {
		return Grant{}, ErrForeignOrigin
	}
	if r.Token == "" {
		return Grant{}, ErrUnauthorized
	}
	key := grantKey{r.Token, r.SessionID}
	now := g.now()
	g.mu.Lock()
	cached, ok := g.grants[key]
	g.mu.Unlock()
	if ok && now.Before(cached.until) && cached.grant.UserID == route.UserID {
		return cached.grant, nil
	}
	base, err := domain.AuthBase(route.UpstreamAuthAddress, g.cfg.AuthFallback)
	if err != nil {
		return Grant{}, fmt.Errorf("the zone's upstream_auth_address %q: %w", route.UpstreamAuthAddress, err)
	}
	grant, err := g.auth.Check(ctx, base, r.Token, r.SessionID)
	if err != nil {
		return Grant{}, err
	}
	if grant.UserID != route.UserID {
		// The zone vouched for someone else than the session's user.
		return Grant{}, ErrForbidden
	}
	g.mu.Lock()
	if len(g.grants) > 10_000 {
		clear(g.grants)
	}
	g.grants[key] = cachedGrant{grant: grant, until: now.Add(g.cfg.GrantTTL)}
	g.mu.Unlock()
	return grant, nil
}

// Touch records that a session is being used: at most one keepalive per
// KeepaliveEvery is announced, in the background.
func (g *Gateway) Touch(sessionID string) {
	now := g.now()
	g.mu.Lock()
	due := domain.KeepaliveDue(g.touched[sessionID], now, g.cfg.KeepaliveEvery)
	if due {
		if len(g.touched) > 10_000 {
			for id, at := range g.touched {
				if now.Sub(at) > g.cfg.KeepaliveEvery {
					delete(g.touched, id)
				}
			}
		}
		g.touched[sessionID] = now
	}
	g.mu.Unlock()
	if !due {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.keepalives.Keepalive(ctx, sessionID); err != nil {
			g.log.Warn("could not announce a keepalive", zap.String("session_id", sessionID), zap.Error(err))
			g.mu.Lock()
			delete(g.touched, sessionID) // the next request tries again
			g.mu.Unlock()
		}
	}()
}

// Workspaces lists the tiles of the dashboard.
func (g *Gateway) Workspaces(ctx context.Context) ([]Workspace, error) {
	return g.catalog.Workspaces(ctx)
}

// Launch requests a session of workspace for user in the zone served on
// host (staged first, in the seed's order: the assigner decides) and
// waits for it.
func (g *Gateway) Launch(ctx context.Context, user signin.User, workspace, host string) (Launched, error) {
	zones, err := g.catalog.Zones(ctx)
	if err != nil {
		return Launched{}, err
	}
	zone, ok := domain.ZoneServedOn(host, zones)
	if !ok {
		return Launched{}, ErrWrongDomain
	}
	l, err := g.requests.Request(ctx, user.Name, workspace, zone)
	if err == nil {
		g.log.Info("session launched", zap.String("user", user.Name), zap.String("workspace", workspace),
			zap.String("zone", zone), zap.String("session_id", l.SessionID))
	}
	return l, err
}

// End ends a session of user's; ErrForbidden for another's.
func (g *Gateway) End(ctx context.Context, user signin.User, sessionID string) error {
	if !canonicalID(sessionID) {
		return ErrUnknownSession
	}
	route, err := g.sessions.Route(ctx, sessionID)
	if err != nil {
		return err
	}
	if !route.Live {
		return ErrUnknownSession
	}
	if route.UserID != user.ID {
		return ErrForbidden
	}
	return g.requests.Destroy(ctx, sessionID, "user")
}

// canonicalID says whether id is a session id as Greenroom writes them
// (lower-case hyphenated UUID), so that one session has one path, one
// cache key and one id in its events.
func canonicalID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}
