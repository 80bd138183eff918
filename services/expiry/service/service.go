// Package service assembles Greenroom's expiry service, the timers that end
// sessions nobody else is going to end, from its parts: the Sweeper
// (app) firing the session timers in PostgreSQL (adapters/postgres), the
// consumer of greenroom.session.keepalive (ports/bus) extending running
// sessions (app.ExtendSession), and the outbox relay publishing the events
// both write, as one startstop.Group. main.go, the component tests of
// this package and the end-to-end tests all start it through New and
// Start.
package service

import (
	"go.uber.org/zap"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/expiry/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/ports/bus"
)

// Config configures the expiry service; zero values take each part's
// defaults.
type Config struct {
	// Sweeper tunes the session timers.
	Sweeper SweeperConfig
	// Keepalive tunes the consumer of greenroom.session.keepalive.
	Keepalive KeepaliveConfig
}

// SweeperConfig tunes the session timers (app.SweeperConfig).
type SweeperConfig = app.SweeperConfig

// KeepaliveConfig tunes the keepalive consumer (bus.KeepaliveConfig).
type KeepaliveConfig = bus.KeepaliveConfig

// Defaults of SweeperConfig (see app), for main's settings.
const (
	SweeperIntervalDefault     = app.SweeperIntervalDefault
	ProvisioningTimeoutDefault = app.ProvisioningTimeoutDefault
	AssignTimeoutDefault       = app.AssignTimeoutDefault
	DestroyTimeoutDefault      = app.DestroyTimeoutDefault
	SweeperBatchSizeDefault    = app.SweeperBatchSizeDefault
)

// Service is an expiry replica: a startstop.Group of the sweeper, the
// keepalive consumer and the outbox relay.
type Service struct {
	*startstop.Group
	// Sweeper fires the session timers.
	Sweeper *app.Sweeper
	// Keepalives extends running sessions.
	Keepalives *bus.KeepaliveConsumer
}

// New wires an expiry replica on deps; nothing runs until Start. Its
// metrics are registered on deps' registry.
func New(deps *libapp.Deps, cfg Config) (*Service, error) {
	cfg.Sweeper.Source = deps.Source()
	sweeper, err := app.NewSweeper(cfg.Sweeper, postgres.NewSessionTimers(deps.DB, deps.Log), deps.Log)
	if err != nil {
		return nil, err
	}
	cfg.Keepalive.Source = deps.Source()
	if cfg.Keepalive.ShutdownTimeout == 0 {
		cfg.Keepalive.ShutdownTimeout = deps.Settings.ShutdownTimeout
	}
	if cfg.Keepalive.Registerer == nil {
		cfg.Keepalive.Registerer = deps.Ops.Registry
	}
	keepalives, err := bus.NewKeepaliveConsumer(deps.JS, deps.Validator,
		app.ExtendSession{Sessions: postgres.NewKeepalives(deps.DB)}, cfg.Keepalive, deps.Log)
	if err != nil {
		return nil, err
	}
	sc := sweeper.Config()
	deps.Log.Info("expiry timers",
		zap.Duration("interval", sc.Interval),
		zap.Duration("provisioning_timeout", sc.ProvisioningTimeout),
		zap.Duration("assigning_timeout", sc.AssignTimeout),
		zap.Duration("destroying_timeout", sc.DestroyTimeout))
	deps.Ops.Registry.MustRegister(sweeper.Collectors()...)
	deps.Ops.Registry.MustRegister(keepalives.Collectors()...)
	g := startstop.NewGroup(deps.Settings.ShutdownTimeout).
		Add("sweeper", sweeper).
		Add("keepalive consumer", keepalives).
		Add("outbox relay", deps.NewRelay())
	return &Service{Group: g, Sweeper: sweeper, Keepalives: keepalives}, nil
}
