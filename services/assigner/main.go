// Command greenroom-assigner serves session requests: for each
// greenroom.session.requested it claims a staged session that the user may
// have (rules 3–5 of DESIGN.md) or asks for one to be made on demand.
package main

import (
	"flag"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/obs"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/assigner/service"
)

func main() {
	var (
		common settings.Common
		cfg    service.Config
	)
	fs := flag.NewFlagSet("greenroom-assigner", flag.ExitOnError)
	common.Register(fs, "127.0.0.1:8081")
	settings.Int(fs, &cfg.Concurrency, "GREENROOM_ASSIGNER_CONCURRENCY", 16, "requests served at once per replica")
	settings.Int(fs, &cfg.MaxDeliver, "GREENROOM_ASSIGNER_MAX_DELIVER", 5, "deliveries of a failing request before it is dead-lettered")
	fs.Usage = settings.Usage(fs, "greenroom-assigner", `Serves greenroom.session.requested: claims a staged session whose
permissions equal the user's, in the request's zone and then (if the zone
searches alternate zones) in the others; otherwise asks the provisioner for
an on-demand session. Run as many replicas as load needs.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal("assigner", err)
	}

	log, err := obs.NewLogger("assigner", common.LogLevel)
	if err != nil {
		app.Fatal("assigner", err)
	}
	ctx, stop := app.SignalContext()
	defer stop()

	deps, err := app.Connect(ctx, "assigner", common, log, time.Minute)
	if err != nil {
		app.Fatal("assigner", err)
	}
	defer deps.Close()
	svc, err := service.New(ctx, deps, cfg)
	if err != nil {
		app.Fatal("assigner", err)
	}
	if _, err := obs.Serve(ctx, common.HTTPAddr, deps.Ops.Mux, log); err != nil {
		app.Fatal("assigner", err)
	}

	log.Info("assigner running")
	if err := svc.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("assigner stopped", zap.Error(err))
		os.Exit(1)
	}
	log.Info("assigner stopped", zap.Bool("graceful", true))
}
