// Command greenroom-assigner serves session requests: for each
// greenroom.session.requested it claims a staged session that the user may
// have (rules 3–5 of DESIGN.md) or asks for one to be made on demand.
package main

import (
	"flag"
	"os"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/assigner/service"
)

const name = "assigner"

func main() {
	// Settings.
	var (
		common settings.Common
		cfg    service.Config
	)
	fs := flag.NewFlagSet("greenroom-assigner", flag.ExitOnError)
	common.Register(fs, "127.0.0.1:8081")
	settings.Int(fs, &cfg.Concurrency, "GREENROOM_ASSIGNER_CONCURRENCY", 16, "requests served at once per replica")
	// The bus default (10: retries 0.2 s doubling to 30 s, about 80 s in
	// all) rides out a restart of PostgreSQL; 5 gave up after 3 s and
	// dead-lettered accepted requests without an answer (make chaos,
	// postgres-restart).
	settings.Int(fs, &cfg.MaxDeliver, "GREENROOM_ASSIGNER_MAX_DELIVER", bus.MaxDeliverDefault, "deliveries of a failing request before it is dead-lettered")
	settings.Duration(fs, &cfg.RequestMaxAge, "GREENROOM_REQUEST_MAX_AGE", service.RequestMaxAgeDefault,
		"requests older than this (by their CloudEvents time, else when the stream stored them) are answered failed, reason expired, never served")
	fs.Usage = settings.Usage(fs, "greenroom-assigner", `Serves greenroom.session.requested: claims a staged session whose
permissions equal the user's, in the request's zone and then (if the zone
searches alternate zones) in the others; otherwise asks the provisioner for
an on-demand session. Run as many replicas as load needs.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal(name, err)
	}

	// Logger, dependencies, service, serve, wait: the same for every service.
	app.Run(name, common, func(deps *app.Deps) (startstop.Service, error) { return service.New(deps, cfg) })
}
