// Command greenroom-gateway is the only way into a session: it signs users
// in, shows them their dashboard, and proxies /session/{id}/… (HTTP and
// WebSocket) to the session's container for the session's user only,
// on the session's zone's allow_origin_domain, after the zone's
// upstream_auth_address (the config service's /api/v1/session-auth) said
// so. Its traffic keeps sessions alive. Any number of replicas may run.
//
// Where things are:
//
//	ports               HTTP: /login, /logout, /, /session/{id}/…
//	app                 sign-in with rate limits, Authorize, keepalives
//	domain              paths, domains, origins, auth addresses
//	adapters/postgres   sessions' routes, sign-ins (libs/signin)
//	adapters/authclient the zones' session-auth endpoints
//	adapters/bus        greenroom.session.keepalive
//	service             wiring: New, then Start and Stop
package main

import (
	"flag"
	"os"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	gwapp "github.com/greenroom-dev/greenroom/services/gateway/app"
	"github.com/greenroom-dev/greenroom/services/gateway/service"
)

const (
	name = "gateway"
	// addrDefault matches scripts/lib.sh.
	addrDefault = "127.0.0.1:8090"
)

func main() {
	// Settings.
	fs := flag.NewFlagSet("greenroom-gateway", flag.ExitOnError)
	var common settings.Common
	common.RegisterAs(fs, "GREENROOM_GATEWAY_ADDR", addrDefault,
		"address the gateway serves users on (dashboard, /login, /session/{id}/) with /healthz, /readyz and /metrics")
	var cfg service.Config
	settings.WebURL(fs, &cfg.AuthFallback, "GREENROOM_GATEWAY_AUTH_URL", "http://127.0.0.1:8080",
		"where sign-ins are checked for zones whose upstream_auth_address is $request_host$: the config service")
	settings.Duration(fs, &cfg.SignInTTL, "GREENROOM_GATEWAY_SIGNIN_TTL", signin.TTLDefault, "how long a sign-in lasts")
	settings.Duration(fs, &cfg.KeepaliveEvery, "GREENROOM_GATEWAY_KEEPALIVE_EVERY", gwapp.KeepaliveEveryDefault,
		"the most often a session's traffic is announced as a keepalive")
	settings.String(fs, &cfg.TLSCert, "GREENROOM_GATEWAY_TLS_CERT", "", "PEM certificate (chain) to serve HTTPS with; with GREENROOM_GATEWAY_TLS_KEY")
	settings.String(fs, &cfg.TLSKey, "GREENROOM_GATEWAY_TLS_KEY", "", "PEM private key of GREENROOM_GATEWAY_TLS_CERT")
	settings.Bool(fs, &cfg.SecureCookie, "GREENROOM_GATEWAY_COOKIE_SECURE", false,
		"make the sign-in cookie Secure on plain HTTP too: the gateway is behind a load balancer that terminates TLS")
	fs.Usage = settings.Usage(fs, "greenroom-gateway", `The only way into a session. Users sign in at /login (a password set by an
admin through the API), see their sessions at /, and open /session/{id}/:
the gateway proxies it (HTTP and WebSocket) to the container for the
session's user only (403 for another user, 404 for an unknown id or a staged
session), on the zone's allow_origin_domain, after asking the zone's
upstream_auth_address (GET /api/v1/session-auth of the config service). The
container sees the user in X-Greenroom-User. Traffic keeps the session
alive. Run as many replicas as load needs, one set per zone domain if you
like.`)
	if err := settings.Parse(fs, os.Args[1:]); err != nil {
		app.Fatal(name, err)
	}

	// Logger, dependencies, service, serve, wait: the same for every service.
	app.Run(name, common, func(deps *app.Deps) (startstop.Service, error) { return service.New(deps, cfg) })
}
