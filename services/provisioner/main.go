// Command provisioner is Greenroom's provisioner service: it makes every
// Docker call. It consumes greenroom.provision.requested (create, start
// and probe a session's container), greenroom.session.assigned (run the
// workspace's assign command in a claimed staged session),
// greenroom.session.expired and greenroom.session.destroy (remove a
// session's container) and greenroom.config.changed.> (reconcile staging
// pools), keeps every staging pool at its desired size, and fails the
// sessions whose container went behind its back.
//
// Where things are:
//
//	ports/bus           the JetStream consumer: events in
//	app/command         the use cases: provision_session.go, assign_session.go, destroy_session.go
//	app/staging         the staging pool reconciler
//	app/audit           the container auditor and engine watcher: fail sessions whose container is gone, remove orphan containers
//	app/autoscale       the autoscaler: pools that add and remove their own agents (VM and DNS providers)
//	domain              pure decisions: agent choice, container spec, assign command, pool plan
//	adapters/postgres   placement with capacity reservation, lifecycle transitions + outbox, pool queries
//	adapters/docker     every Docker Engine call
//	adapters/probe      the readiness probe
//	adapters/vm, dns    the VM providers (local_docker, digitalocean) and the DNS provider (rfc2136)
//	service             wiring: New, then Start and Stop (a libs/startstop Group)
package main

import (
	"flag"
	"os"
	// Staging configs' schedules name IANA time zones (libs/schedule):
	// the database is built in, so a host or image without tzdata reads
	// them too.
	_ "time/tzdata"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/ports/bus"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

const (
	name = "provisioner"
	// httpAddrDefault matches scripts/lib.sh: config 8080, assigner 8081,
	// provisioner 8082, expiry 8083.
	httpAddrDefault = "127.0.0.1:8082"
)

func main() {
	// Settings.
	fs := flag.NewFlagSet("greenroom-provisioner", flag.ExitOnError)
	var common settings.Common
	common.Register(fs, httpAddrDefault)
	var cfg service.Config
	settings.Int(fs, &cfg.Concurrency, "GREENROOM_PROVISIONER_CONCURRENCY", bus.ConcurrencyDefault, "assignments, destroys and config changes one replica handles at once")
	settings.Int(fs, &cfg.ProvisionConcurrency, "GREENROOM_PROVISION_CONCURRENCY", bus.ProvisionConcurrencyDefault, "containers one replica creates at once (a lane of its own, so creations never delay assignments)")
	settings.Duration(fs, &cfg.Provision.ReadinessTimeout, "GREENROOM_READINESS_TIMEOUT", command.ReadinessTimeoutDefault, "how long a new container may take to answer its readiness probe")
	settings.Duration(fs, &cfg.Provision.AssignTimeout, "GREENROOM_ASSIGN_TIMEOUT", command.AssignTimeoutDefault, "how long a workspace's assign command may run")
	settings.Duration(fs, &cfg.Reconciler.Interval, "GREENROOM_RECONCILE_INTERVAL", staging.ReconcilerIntervalDefault, "period of the reconcile pass over every staging pool")
	settings.Int(fs, &cfg.Reconciler.RefillConcurrency, "GREENROOM_REFILL_CONCURRENCY", staging.RefillConcurrencyDefault, "staged sessions provisioning at once, over every pool and replica")
	settings.Duration(fs, &cfg.Reconciler.RefillQuiet, "GREENROOM_REFILL_QUIET", staging.RefillQuietDefault, "a claimed pool is refilled once its claims pause this long (a burst of hand-offs keeps the CPU)")
	settings.Duration(fs, &cfg.Reconciler.RefillDelayMax, "GREENROOM_REFILL_DELAY_MAX", staging.RefillDelayMaxDefault, "and at the latest this long after the first claim")
	settings.WebURL(fs, &cfg.Provision.GatewayURL, "GREENROOM_GATEWAY_URL", command.GatewayURLDefault,
		"the gateway users open sessions at: a container session's url is this, on its zone's allow_origin_domain, at /session/{id}/")
	settings.Duration(fs, &cfg.ContainerAudit.Interval, "GREENROOM_CONTAINER_AUDIT_INTERVAL", audit.ContainerAuditorIntervalDefault, "period of the pass that fails sessions whose container is gone")
	settings.Duration(fs, &cfg.EngineWatcher.Heartbeat, "GREENROOM_AGENT_HEARTBEAT", audit.EngineWatcherHeartbeatDefault, "how often each agent's engine is pinged (its last_heartbeat_at); one that does not answer gets no placements until it does")
	settings.Duration(fs, &cfg.Autoscale.Interval, "GREENROOM_AUTOSCALE_INTERVAL", autoscale.IntervalDefault, "period of the autoscaler's decision for every autoscale config")
	settings.Duration(fs, &cfg.Autoscale.BootTimeout, "GREENROOM_AUTOSCALE_BOOT_TIMEOUT", autoscale.BootTimeoutDefault, "how long a new agent's machine may take to answer with the images loaded before it is deleted and another tried")
	settings.String(fs, &cfg.AutoscaleImageSource, "GREENROOM_AUTOSCALE_IMAGE_SOURCE", service.AutoscaleImageSourceDefault, "the Docker engine whose workspace images are copied into each new agent before it takes sessions")
	cfg.Engines.TLS.Register(fs)
	fs.Usage = settings.Usage(fs, "greenroom-provisioner", `Creates, probes, assigns and removes session containers on the Docker agents,
keeps every staging pool at its desired size, and fails the sessions whose
container is gone.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal(name, err)
	}
	// Before waiting for anything: a TLS file that cannot be read is a
	// start-up error.
	if err := cfg.Engines.TLS.Check(); err != nil {
		app.Fatal(name, err)
	}

	// Logger, dependencies, service, serve, wait: the same for every service.
	app.Run(name, common, func(deps *app.Deps) (startstop.Service, error) { return service.New(deps, cfg) })
}
