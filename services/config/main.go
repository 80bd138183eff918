// Command greenroom-config is Greenroom's configuration service: the admin
// HTTP API (zones, pools, agents, servers, workspaces, groups, users,
// staging configs, sessions, violations), the admin web UI, and the
// announcements of every configuration change on
// greenroom.config.changed.<kind>.
package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/obs"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/config/service"
)

func main() {
	var common settings.Common
	fs := flag.NewFlagSet("greenroom-config", flag.ExitOnError)
	common.Register(fs, settings.HTTPAddrDefault)
	fs.Usage = settings.Usage(fs, "greenroom-config", `Serves Greenroom's admin API (/api/v1, see schemas/api/openapi.yaml) and web
UI (/) on GREENROOM_HTTP_ADDR, with /healthz, /readyz and /metrics on the same
listener. Every /api/ call needs "Authorization: Bearer <GREENROOM_ADMIN_TOKEN>".
Each configuration change is announced on greenroom.config.changed.<kind>;
POST /api/v1/sessions publishes greenroom.session.requested and waits for
its outcome. Run as many replicas as load needs.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal("config", err)
	}

	log, err := obs.NewLogger("config", common.LogLevel)
	if err != nil {
		app.Fatal("config", err)
	}
	ctx, stop := app.SignalContext()
	defer stop()

	deps, err := app.Connect(ctx, "config", common, log, time.Minute)
	if err != nil {
		app.Fatal("config", err)
	}
	defer deps.Close()
	svc, err := service.New(deps, service.Config{AdminToken: common.AdminToken})
	if err != nil {
		app.Fatal("config", err)
	}
	defer svc.Close()

	svc.Start(ctx)
	srv, err := serve(common.HTTPAddr, svc.Handler(), log)
	if err != nil {
		app.Fatal("config", err)
	}
	log.Info("config service running", zap.String("admin_ui", "http://"+srv.Addr+"/"))

	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), common.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http server did not drain in time", zap.Error(err))
	}
	svc.Wait()
	log.Info("config service stopped", zap.Bool("graceful", true))
}

// serve listens on addr and serves h in the background. Unlike obs.Serve it
// returns the server, so that main can wait for requests in flight.
func serve(addr string, h http.Handler, log *zap.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", zap.Error(err))
		}
	}()
	return srv, nil
}
