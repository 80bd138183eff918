// Command greenroom-expiry runs Greenroom's session timers: it fails sessions
// stuck in provisioning or assigning, expires staged sessions past their
// expiration, ends running sessions past their time limit or keepalive and
// repeats the destroy of sessions stuck in destroying (see package
// service); it extends running sessions on greenroom.session.keepalive, and
// relays the events it writes to the outbox.
// Any number of replicas may run; they never fire a session twice.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/obs"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/expiry/service"
)

const (
	serviceName     = "expiry"
	httpAddrDefault = "127.0.0.1:8083"
	connectTimeout  = time.Minute
)

func main() {
	// Configuration.
	fs := flag.NewFlagSet("greenroom-expiry", flag.ExitOnError)
	var common settings.Common
	common.Register(fs, httpAddrDefault)
	var cfg service.SweeperConfig
	settings.Duration(fs, &cfg.Interval, "GREENROOM_EXPIRY_INTERVAL", service.SweeperIntervalDefault,
		"time between two expiry passes")
	settings.Duration(fs, &cfg.ProvisioningTimeout, "GREENROOM_PROVISIONING_TIMEOUT", service.ProvisioningTimeoutDefault,
		"how long a session may stay in provisioning before it is failed")
	// Not GREENROOM_ASSIGN_TIMEOUT: that is the provisioner's bound on the
	// assign command, and make up starts every service from one environment.
	settings.Duration(fs, &cfg.AssignTimeout, "GREENROOM_ASSIGNING_TIMEOUT", service.AssignTimeoutDefault,
		"how long a claimed session may stay in assigning before it is failed; keep it above the provisioner's GREENROOM_ASSIGN_TIMEOUT")
	settings.Duration(fs, &cfg.DestroyTimeout, "GREENROOM_DESTROYING_TIMEOUT", service.DestroyTimeoutDefault,
		"how long a session may stay in destroying before its destroy is sent again (at most once per this period)")
	settings.Int(fs, &cfg.BatchSize, "GREENROOM_EXPIRY_BATCH_SIZE", service.SweeperBatchSizeDefault,
		"most sessions changed in one transaction")
	var keepalive service.KeepaliveConfig
	settings.Int(fs, &keepalive.Concurrency, "GREENROOM_EXPIRY_KEEPALIVE_CONCURRENCY", bus.ConcurrencyDefault,
		"keepalives handled at once per replica")
	settings.Int(fs, &keepalive.MaxDeliver, "GREENROOM_EXPIRY_MAX_DELIVER", bus.MaxDeliverDefault,
		"deliveries of a failing keepalive before it is dead-lettered")
	fs.Usage = settings.Usage(fs, "greenroom-expiry", `
Fails sessions stuck in provisioning or assigning, expires staged sessions
past their staging config's expiration and ends running sessions past their
group's session_time_limit or keepalive_expiration, announcing each on
greenroom.session.expired (reasons provisioning_timeout, assign_timeout,
staged_expired, time_limit, keepalive; the failures also on
greenroom.session.failed); sends greenroom.session.destroy again for
sessions stuck in destroying. Consumes greenroom.session.keepalive (durable
consumer "expiry"): each moves its running session's keepalive deadline,
and its expires_at, to the event's time plus its keepalive_expiration.
Serves /healthz, /readyz and /metrics on the HTTP address.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal(serviceName, err)
	}

	if err := run(common, cfg, keepalive); err != nil {
		app.Fatal(serviceName, err)
	}
}

func run(common settings.Common, cfg service.SweeperConfig, keepaliveCfg service.KeepaliveConfig) error {
	log, err := obs.NewLogger(serviceName, common.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := app.SignalContext()
	defer stop()

	// Wiring.
	deps, err := app.Connect(ctx, serviceName, common, log, connectTimeout)
	if err != nil {
		return err
	}
	defer deps.Close()
	cfg.Source = deps.Source()
	sweeper, err := service.NewSweeper(cfg, deps.DB, log)
	if err != nil {
		return err
	}
	deps.Ops.Registry.MustRegister(sweeper.Collectors()...)
	keepaliveCfg.Source = deps.Source()
	keepaliveCfg.ShutdownTimeout = common.ShutdownTimeout
	keepalives, err := service.NewKeepaliveConsumer(ctx, deps.JS, deps.Validator, deps.DB, keepaliveCfg, log)
	if err != nil {
		return err
	}
	deps.Ops.Registry.MustRegister(keepalives.Collectors()...)
	if _, err := obs.Serve(ctx, common.HTTPAddr, deps.Ops.Mux, log); err != nil {
		return err
	}

	// Run until SIGINT/SIGTERM; the loops stop between transactions, the
	// consumer after the keepalives in flight.
	var wg sync.WaitGroup
	wg.Go(func() { deps.NewRelay().Start(ctx) })
	wg.Go(func() { sweeper.Start(ctx) })
	var consumeErr error // read once wg is done
	wg.Go(func() {
		if err := keepalives.Run(ctx); err != nil && ctx.Err() == nil {
			// A replica that cannot consume keepalives stops, and says why.
			consumeErr = err
			stop()
		}
	})
	log.Info("expiry started",
		zap.Duration("interval", sweeper.Config().Interval),
		zap.Duration("provisioning_timeout", sweeper.Config().ProvisioningTimeout),
		zap.Duration("assigning_timeout", sweeper.Config().AssignTimeout),
		zap.Duration("destroying_timeout", sweeper.Config().DestroyTimeout))
	<-ctx.Done()

	// Shutdown.
	log.Info("expiry stopping")
	if err := waitOrTimeout(&wg, common.ShutdownTimeout); err != nil {
		return err
	}
	return consumeErr
}

func waitOrTimeout(wg *sync.WaitGroup, timeout time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("shutdown took longer than %s", timeout)
	}
}
