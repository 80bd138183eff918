// Command greenroom-expiry runs Greenroom's session timers: it fails sessions
// stuck in provisioning or assigning, expires staged sessions past their
// expiration and repeats the destroy of sessions stuck in destroying (see
// package service), and relays the events it writes to the outbox.
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
	fs.Usage = settings.Usage(fs, "greenroom-expiry", `
Fails sessions stuck in provisioning or assigning and expires staged sessions
past their staging config's expiration, announcing each on
greenroom.session.expired (and the failures on greenroom.session.failed);
sends greenroom.session.destroy again for sessions stuck in destroying.
Serves /healthz, /readyz and /metrics on the HTTP address.`)
	_ = fs.Parse(os.Args[1:])

	if err := run(common, cfg); err != nil {
		app.Fatal(serviceName, err)
	}
}

func run(common settings.Common, cfg service.SweeperConfig) error {
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
	if _, err := obs.Serve(ctx, common.HTTPAddr, deps.Ops.Mux, log); err != nil {
		return err
	}

	// Run until SIGINT/SIGTERM; both loops stop between transactions.
	var wg sync.WaitGroup
	wg.Go(func() { deps.NewRelay().Start(ctx) })
	wg.Go(func() { sweeper.Start(ctx) })
	log.Info("expiry started",
		zap.Duration("interval", sweeper.Config().Interval),
		zap.Duration("provisioning_timeout", sweeper.Config().ProvisioningTimeout),
		zap.Duration("assigning_timeout", sweeper.Config().AssignTimeout),
		zap.Duration("destroying_timeout", sweeper.Config().DestroyTimeout))
	<-ctx.Done()

	// Shutdown.
	log.Info("expiry stopping")
	return waitOrTimeout(&wg, common.ShutdownTimeout)
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
