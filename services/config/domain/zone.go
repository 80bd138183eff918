package domain

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// RequestHost is the default of a zone's allow_origin_domain and
// upstream_auth_address: "whatever host the user's request came in on". A
// staged container is started before any request exists, so it cannot know
// that host; the seed's rule is that the default cannot be used for staged
// sessions.
const RequestHost = "$request_host$"

// Load balancing strategies of a zone.
const (
	LeastLoad = "least_load"
	MostLoad  = "most_load"
)

// Zone defaults (openapi.yaml ZoneCreate).
const (
	ZonePriorityDefault      int32 = 100
	ZoneLoadBalancingDefault       = LeastLoad
)

// Zone is a deployment zone: where sessions run and how zones fall back to
// each other.
type Zone struct {
	ID                   string    `db:"id" json:"id"`
	Name                 string    `db:"name" json:"name"`
	SearchAlternateZones bool      `db:"search_alternate_zones" json:"search_alternate_zones"`
	AllowOriginDomain    string    `db:"allow_origin_domain" json:"allow_origin_domain"`
	UpstreamAuthAddress  string    `db:"upstream_auth_address" json:"upstream_auth_address"`
	LoadBalancing        string    `db:"load_balancing" json:"load_balancing"`
	Priority             int32     `db:"priority" json:"priority"`
	CreatedAt            time.Time `db:"created_at" json:"created_at"`
	UpdatedAt            time.Time `db:"updated_at" json:"updated_at"`
}

// StagingBlocker names the first setting that keeps the zone from hosting
// staged sessions (one still at RequestHost), or "" when there is none.
func (z Zone) StagingBlocker() string {
	switch {
	case z.AllowOriginDomain == RequestHost:
		return "allow_origin_domain"
	case z.UpstreamAuthAddress == RequestHost:
		return "upstream_auth_address"
	}
	return ""
}

// ZoneUpdate is the body of PATCH /api/v1/zones/{name}.
type ZoneUpdate struct {
	Name                 Optional[string] `json:"name"`
	SearchAlternateZones Optional[bool]   `json:"search_alternate_zones"`
	AllowOriginDomain    Optional[string] `json:"allow_origin_domain"`
	UpstreamAuthAddress  Optional[string] `json:"upstream_auth_address"`
	LoadBalancing        Optional[string] `json:"load_balancing"`
	Priority             Optional[int32]  `json:"priority"`
}

// ZoneCreate is the body of POST /api/v1/zones: the same fields, name
// required.
type ZoneCreate ZoneUpdate

// Validate lists the body's problems.
func (in ZoneCreate) Validate() FieldErrors { return validateZone(ZoneUpdate(in), required) }

// Validate lists the body's problems.
func (in ZoneUpdate) Validate() FieldErrors { return validateZone(in, optional) }

func validateZone(in ZoneUpdate, name presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, name)
	checkPresent(&errs, "search_alternate_zones", in.SearchAlternateZones, optional)
	if present(&errs, "allow_origin_domain", in.AllowOriginDomain, optional) && !validOriginDomain(in.AllowOriginDomain.Value) {
		errs.Add("allow_origin_domain", "must be a host name such as desktops.example.com (no scheme, port or path; the gateway serves the zone's sessions on it), or %s", RequestHost)
	}
	if present(&errs, "upstream_auth_address", in.UpstreamAuthAddress, optional) && !validAuthAddress(in.UpstreamAuthAddress.Value) {
		errs.Add("upstream_auth_address", "must be the config service's host[:port] (an IPv6 address in brackets: [fd00::1]:8080) or http(s):// URL (where the gateway checks sign-ins), or %s", RequestHost)
	}
	checkEnum(&errs, "load_balancing", in.LoadBalancing, optional, LeastLoad, MostLoad)
	checkMin(&errs, "priority", in.Priority, optional, 1)
	return errs
}

// Zone returns the zone the body describes, with defaults filled in.
func (in ZoneCreate) Zone() Zone {
	z := Zone{
		AllowOriginDomain:   RequestHost,
		UpstreamAuthAddress: RequestHost,
		LoadBalancing:       ZoneLoadBalancingDefault,
		Priority:            ZonePriorityDefault,
	}
	ZoneUpdate(in).Apply(&z)
	return z
}

// Apply changes z as the body says.
func (in ZoneUpdate) Apply(z *Zone) {
	setIfPresent(&z.Name, in.Name)
	setIfPresent(&z.SearchAlternateZones, in.SearchAlternateZones)
	setIfPresent(&z.AllowOriginDomain, in.AllowOriginDomain)
	setIfPresent(&z.UpstreamAuthAddress, in.UpstreamAuthAddress)
	setIfPresent(&z.LoadBalancing, in.LoadBalancing)
	setIfPresent(&z.Priority, in.Priority)
}

// SetsRequestHost names the first field the body sets to RequestHost, or "".
// Such a change is refused while a staging config targets the zone.
func (in ZoneUpdate) SetsRequestHost() string {
	switch {
	case in.AllowOriginDomain.Has() && in.AllowOriginDomain.Value == RequestHost:
		return "allow_origin_domain"
	case in.UpstreamAuthAddress.Has() && in.UpstreamAuthAddress.Value == RequestHost:
		return "upstream_auth_address"
	}
	return ""
}

// hostName is a DNS host name (letters, digits, hyphens; dot-separated).
var hostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// validOriginDomain: RequestHost, a host name or an IP address.
func validOriginDomain(v string) bool {
	return v == RequestHost || (len(v) <= 253 && hostName.MatchString(v)) || net.ParseIP(v) != nil
}

// validAuthAddress: RequestHost, host[:port], or an http(s) URL with a
// host and nothing after its path.
func validAuthAddress(v string) bool {
	if v == RequestHost {
		return true
	}
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
	}
	host := v
	if h, port, err := net.SplitHostPort(v); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
		host = h
	} else if strings.Contains(v, ":") {
		// An IPv6 address needs its brackets ([::1] or [::1]:8080): the
		// gateway reads "fe80::1" as host "fe80:" and port ":1".
		return false
	}
	return validOriginDomain(host) && host != RequestHost
}
