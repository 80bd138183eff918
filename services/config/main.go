// Command greenroom-config is Greenroom's configuration service: the admin
// HTTP API (zones, pools, agents, servers, workspaces, groups, users,
// staging configs, sessions, violations), the admin web UI, and the
// announcements of every configuration change on
// greenroom.config.changed.<kind>.
package main

import (
	"flag"
	"os"
	// Staging configs' schedules name IANA time zones (libs/schedule):
	// the database is built in, so a host or image without tzdata reads
	// them too.
	_ "time/tzdata"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/config/service"
)

const name = "config"

func main() {
	// Settings.
	var common settings.Common
	fs := flag.NewFlagSet("greenroom-config", flag.ExitOnError)
	common.Register(fs, settings.HTTPAddrDefault)
	var cfg service.Config
	settings.Duration(fs, &cfg.AuditCheckpointEvery, "GREENROOM_AUDIT_CHECKPOINT_EVERY", audit.NotaryEveryDefault,
		"how often the audit log is checkpointed (an event altered before its checkpoint is not detected)")
	fs.Usage = settings.Usage(fs, "greenroom-config", `Serves Greenroom's admin API (/api/v1, see schemas/api/openapi.yaml) and web
UI (/) on GREENROOM_HTTP_ADDR, with /healthz, /readyz and /metrics on the same
listener. Every /api/ call needs "Authorization: Bearer <GREENROOM_ADMIN_TOKEN>".
Each configuration change is announced on greenroom.config.changed.<kind>;
POST /api/v1/sessions publishes greenroom.session.requested and waits for
its outcome. Checkpoints the audit log (greenroom.audit.checkpoint and
audit_checkpoints) every GREENROOM_AUDIT_CHECKPOINT_EVERY, one replica at a
time. Run as many replicas as load needs.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal(name, err)
	}

	// Logger, dependencies, service, serve, wait: the same for every service.
	app.Run(name, common, func(deps *app.Deps) (startstop.Service, error) {
		cfg.AdminToken = common.AdminToken
		return service.New(deps, cfg)
	})
}
