// Package domain holds the gateway's rules, with no I/O: which path names
// a session, on which host a zone's sessions are served, which WebSocket
// origins are accepted, where a zone's sign-ins are checked, and when
// traffic is worth a keepalive.
package domain

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// RequestHost is a zone's allow_origin_domain or upstream_auth_address
// meaning "whatever host the user's request came in on".
const RequestHost = "$request_host$"

// SessionPrefix is where sessions are served: /session/{id}/….
const SessionPrefix = "/session/"

// SessionPath splits a request path /session/{id}/rest into the session id
// and the path the container sees ("/rest"). ok is false for any other
// path; /session/{id} without its slash is ok with rest "" (the caller
// redirects to the slash, so that relative links resolve inside).
func SessionPath(p string) (id, rest string, ok bool) {
	tail, found := strings.CutPrefix(p, SessionPrefix)
	if !found || tail == "" {
		return "", "", false
	}
	id, rest, slash := strings.Cut(tail, "/")
	if id == "" {
		return "", "", false
	}
	if !slash {
		return id, "", true
	}
	return id, "/" + rest, true
}

// hostOnly is host without its port, lower case.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// ServedOn says whether a zone whose allow_origin_domain is domain serves
// its sessions to a request for host: the zone's domain only, or any host
// under RequestHost.
func ServedOn(host, allowOriginDomain string) bool {
	if allowOriginDomain == "" || allowOriginDomain == RequestHost {
		return true
	}
	return hostOnly(host) == hostOnly(allowOriginDomain)
}

// Zone is a zone as the dashboard chooses one.
type Zone struct {
	Name              string `db:"name"`
	AllowOriginDomain string `db:"allow_origin_domain"`
}

// ZoneServedOn is the zone a launch from host requests its session in:
// the first zone (by priority: zones come ordered) served on host by its
// allow_origin_domain, else the first under RequestHost. ok is false when
// no zone is served on host.
func ZoneServedOn(host string, zones []Zone) (string, bool) {
	for _, z := range zones {
		if z.AllowOriginDomain != RequestHost && z.AllowOriginDomain != "" && ServedOn(host, z.AllowOriginDomain) {
			return z.Name, true
		}
	}
	for _, z := range zones {
		if z.AllowOriginDomain == RequestHost || z.AllowOriginDomain == "" {
			return z.Name, true
		}
	}
	return "", false
}

// OriginAllowed says whether a WebSocket upgrade with this Origin header,
// for host, may reach a session of a zone whose allow_origin_domain is
// domain: the origin's host must be the zone's domain (the request's own
// host under RequestHost), so that a page of another site cannot open the
// user's desktop with the user's cookie.
func OriginAllowed(origin, host, allowOriginDomain string) bool {
	if origin == "" {
		return true // not a browser: no cross-site page is involved
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	want := allowOriginDomain
	if want == "" || want == RequestHost {
		want = host
	}
	return hostOnly(u.Host) == hostOnly(want)
}

// AuthBase is where a zone's sign-ins are checked: its
// upstream_auth_address (a host[:port] or a URL of the config service),
// or fallback under RequestHost (the gateway is not the config service).
func AuthBase(upstreamAuthAddress string, fallback *url.URL) (*url.URL, error) {
	if upstreamAuthAddress == "" || upstreamAuthAddress == RequestHost {
		return fallback, nil
	}
	if !strings.Contains(upstreamAuthAddress, "://") {
		upstreamAuthAddress = "http://" + upstreamAuthAddress
	}
	u, err := url.Parse(upstreamAuthAddress)
	if err != nil {
		return nil, err
	}
	// The config service refuses any other address; one written around
	// it (say, straight into the database) must not send sign-in tokens
	// to a host made of its path ("#" would be http://api/...).
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("upstream_auth_address %q is not host[:port] or an http(s):// URL with a host", upstreamAuthAddress)
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimSuffix(u.Path, "/"), "", ""
	return u, nil
}

// KeepaliveDue says whether traffic of a session at now is worth a
// keepalive, the last one having been sent at last: at most one every
// `every`, so that a desktop streaming many frames a second costs one
// event a period.
func KeepaliveDue(last, now time.Time, every time.Duration) bool {
	return last.IsZero() || now.Sub(last) >= every
}
