// Package service assembles the gateway: the use cases (app) over
// PostgreSQL (adapters/postgres), the zones' session-auth endpoints
// (adapters/authclient) and the bus (adapters/bus), its HTTP handler
// (ports), and a loop removing expired sign-ins, as one startstop.Group.
// main.go and the tests start it through New and Start.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/gateway/adapters/authclient"
	"github.com/greenroom-dev/greenroom/services/gateway/adapters/bus"
	"github.com/greenroom-dev/greenroom/services/gateway/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/gateway/app"
	"github.com/greenroom-dev/greenroom/services/gateway/ports"
)

// Config configures the gateway; zero values take the defaults.
type Config struct {
	app.Config
	// AuthTimeout bounds one call to a zone's session-auth endpoint.
	AuthTimeout time.Duration
	// SweepInterval is how often expired sign-ins are deleted.
	SweepInterval time.Duration
	// TLSCert and TLSKey, PEM files, make the gateway serve HTTPS (and
	// its sign-in cookie Secure); both or neither.
	TLSCert, TLSKey string
	// SecureCookie makes the sign-in cookie Secure on plain HTTP too
	// (behind a load balancer that terminates TLS).
	SecureCookie bool
}

// Defaults of Config.
const (
	AuthTimeoutDefault   = 5 * time.Second
	SweepIntervalDefault = 10 * time.Minute
)

// Service is a gateway replica.
type Service struct {
	*startstop.Group
	// Gateway carries out the use cases.
	Gateway *app.Gateway
	handler http.Handler
	tlsCert string
	tlsKey  string
}

// Requester is the gateway's name as a requesting service: it asks for
// sessions on greenroom.session.requested.gateway and hears their outcomes
// on greenroom.session.ready.gateway / .failed.gateway only (its NATS
// user's permissions, README "NATS users").
const Requester = "gateway"

// New wires a gateway on deps; the handler serves at once.
func New(deps *libapp.Deps, cfg Config) (*Service, error) {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("GREENROOM_GATEWAY_TLS_CERT and GREENROOM_GATEWAY_TLS_KEY go together: give both, or neither")
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = AuthTimeoutDefault
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = SweepIntervalDefault
	}
	store := postgres.New(deps.DB)
	requests, err := client.New(deps.NC, client.WithSource(deps.Source()), client.WithRequester(Requester))
	if err != nil {
		return nil, fmt.Errorf("creating the session request client: %w", err)
	}
	gw := app.New(cfg.Config, app.Adapters{
		Sessions: store, SignIns: store, Catalog: store,
		Auth:       authclient.New(cfg.AuthTimeout),
		Keepalives: bus.NewKeepalives(deps.Publisher, deps.Source()),
		Requests:   bus.NewRequests(requests, deps.Publisher, deps.Source()),
	}, deps.Log)
	log := deps.Log.Named("sign_in_sweeper")
	sweeper := startstop.NewLoop(startstop.LoopConfig{Interval: cfg.SweepInterval, Pass: func(ctx context.Context) {
		if n, err := store.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
			log.Warn("could not delete expired sign-ins", zap.Error(err))
		} else if n > 0 {
			log.Info("deleted expired sign-ins", zap.Int64("sign_ins", n))
		}
	}})
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	return &Service{
		Group:   startstop.NewGroup(deps.Settings.ShutdownTimeout).Add("sign-in sweeper", sweeper).AfterStop(requests.Close),
		Gateway: gw,
		handler: ports.NewHandler(ports.Config{Gateway: gw, Ops: deps.Ops.Mux, Log: deps.Log, Transport: transport,
			SecureCookie: cfg.SecureCookie}),
		tlsCert: cfg.TLSCert,
		tlsKey:  cfg.TLSKey,
	}, nil
}

// TLSFiles are the certificate and key the gateway serves HTTPS with
// ("" for plain HTTP); libs/app.Run reads them.
func (s *Service) TLSFiles() (cert, key string) { return s.tlsCert, s.tlsKey }

// Handler serves users: sign-in, dashboard, sessions; and /healthz,
// /readyz, /metrics.
func (s *Service) Handler() http.Handler { return s.handler }
