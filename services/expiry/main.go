// Command greenroom-expiry runs Greenroom's session timers: it fails sessions
// stuck in provisioning or assigning, expires staged sessions past their
// expiration, ends running sessions past their time limit or keepalive and
// repeats the destroy of sessions stuck in destroying (app.Sweeper, its
// SQL in adapters/postgres); it extends running sessions on
// greenroom.session.keepalive (ports/bus, app.ExtendSession), and relays
// the events it writes to the outbox. Package service wires the parts.
// Any number of replicas may run; they never fire a session twice.
package main

import (
	"flag"
	"os"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/expiry/service"
)

const (
	name            = "expiry"
	httpAddrDefault = "127.0.0.1:8083"
)

func main() {
	// Settings.
	fs := flag.NewFlagSet("greenroom-expiry", flag.ExitOnError)
	var common settings.Common
	common.Register(fs, httpAddrDefault)
	var cfg service.Config
	settings.Duration(fs, &cfg.Sweeper.Interval, "GREENROOM_EXPIRY_INTERVAL", service.SweeperIntervalDefault,
		"time between two expiry passes")
	settings.Duration(fs, &cfg.Sweeper.ProvisioningTimeout, "GREENROOM_PROVISIONING_TIMEOUT", service.ProvisioningTimeoutDefault,
		"how long a session may stay in provisioning before it is failed")
	// Not GREENROOM_ASSIGN_TIMEOUT: that is the provisioner's bound on the
	// assign command, and make up starts every service from one environment.
	settings.Duration(fs, &cfg.Sweeper.AssignTimeout, "GREENROOM_ASSIGNING_TIMEOUT", service.AssignTimeoutDefault,
		"how long a claimed session may stay in assigning before it is failed; keep it above the provisioner's GREENROOM_ASSIGN_TIMEOUT")
	settings.Duration(fs, &cfg.Sweeper.DestroyTimeout, "GREENROOM_DESTROYING_TIMEOUT", service.DestroyTimeoutDefault,
		"how long a session may stay in destroying before its destroy is sent again (at most once per this period)")
	settings.Int(fs, &cfg.Sweeper.BatchSize, "GREENROOM_EXPIRY_BATCH_SIZE", service.SweeperBatchSizeDefault,
		"most sessions changed in one transaction")
	settings.Int(fs, &cfg.Keepalive.Concurrency, "GREENROOM_EXPIRY_KEEPALIVE_CONCURRENCY", bus.ConcurrencyDefault,
		"keepalives handled at once per replica")
	settings.Int(fs, &cfg.Keepalive.MaxDeliver, "GREENROOM_EXPIRY_MAX_DELIVER", bus.MaxDeliverDefault,
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
		app.Fatal(name, err)
	}

	// Logger, dependencies, service, serve, wait: the same for every service.
	app.Run(name, common, func(deps *app.Deps) (startstop.Service, error) { return service.New(deps, cfg) })
}
