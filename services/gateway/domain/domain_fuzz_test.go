package domain

// Fuzz tests of the gateway's parsing of what a browser and a zone give it
// (issue 15, "bad input"): session paths, Host and Origin headers, and a
// zone's upstream_auth_address. `make fuzz` runs each for FUZZTIME; the
// seeds (and any crasher kept under testdata/fuzz) run with the other
// tests.

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSessionPath: SessionPath never panics; an id it finds is non-empty
// and holds no '/', and /session/{id}{rest} is the path it was given.
func FuzzSessionPath(f *testing.F) {
	for _, s := range []string{"/session/s-1/", "/session/s-1/vnc/websockify?x", "/session/s-1", "/session/", "/session//x",
		"/sessions/s-1/", "/", "", "/session/%2F/x", "/session/a/b/../../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		id, rest, ok := SessionPath(p)
		if !ok {
			if id != "" || rest != "" {
				t.Fatalf("SessionPath(%q) = %q, %q, false", p, id, rest)
			}
			return
		}
		if id == "" || strings.Contains(id, "/") || (rest != "" && !strings.HasPrefix(rest, "/")) || SessionPrefix+id+rest != p {
			t.Fatalf("SessionPath(%q) = %q, %q", p, id, rest)
		}
	})
}

// FuzzOriginAllowed: OriginAllowed and ServedOn never panic; a zone with
// a domain never lets an origin or host on another host through.
func FuzzOriginAllowed(f *testing.F) {
	f.Add("https://desktops.example.com", "desktops.example.com", "desktops.example.com")
	f.Add("https://evil.example.net", "desktops.example.com", "desktops.example.com")
	f.Add("http://greenroom.localhost:8090", "greenroom.localhost:8090", RequestHost)
	f.Add("null", "x", "")
	f.Add("http://[::1]:8090", "[::1]:8090", "::1")
	f.Add("http://user@desktops.example.com.", "DESKTOPS.example.com:443", "desktops.example.com")
	f.Fuzz(func(t *testing.T, origin, host, zoneDomain string) {
		ok := OriginAllowed(origin, host, zoneDomain)
		served := ServedOn(host, zoneDomain)
		if zoneDomain == "" || zoneDomain == RequestHost {
			if !served {
				t.Fatalf("ServedOn(%q, %q) = false under the request host", host, zoneDomain)
			}
			return
		}
		if ok && origin != "" {
			u, err := url.Parse(origin)
			if err != nil || hostOnly(u.Host) != hostOnly(zoneDomain) {
				t.Fatalf("OriginAllowed(%q, %q, %q): the origin's host is not the zone's", origin, host, zoneDomain)
			}
		}
		if served && hostOnly(host) != hostOnly(zoneDomain) {
			t.Fatalf("ServedOn(%q, %q): another host", host, zoneDomain)
		}
	})
}

// FuzzAuthBase: AuthBase never panics; a base it returns has no query, and
// the check's URL made of it (base.JoinPath, as adapters/authclient does)
// ends in /api/v1/session-auth on the base's host.
func FuzzAuthBase(f *testing.F) {
	for _, s := range []string{"", RequestHost, "config.internal:8080", "https://config.example.com/base/", "http://[::1]:8080",
		"[::1]:8080", "10.0.0.5", "http://h/p?q=1#f", "://x", "http://%zz", "ftp://x"} {
		f.Add(s)
	}
	fallback := &url.URL{Scheme: "http", Host: "127.0.0.1:8081"}
	f.Fuzz(func(t *testing.T, addr string) {
		u, err := AuthBase(addr, fallback)
		if err != nil {
			return
		}
		if u == nil {
			t.Fatalf("AuthBase(%q): nil base and no error", addr)
		}
		if addr == "" || addr == RequestHost {
			if u != fallback {
				t.Fatalf("AuthBase(%q) is not the fallback", addr)
			}
			return
		}
		if u.RawQuery != "" {
			t.Fatalf("AuthBase(%q) = %s", addr, u)
		}
		// As adapters/authclient makes the check's URL.
		check, err := url.Parse(u.JoinPath("/api/v1/session-auth").String())
		if err != nil {
			t.Fatalf("AuthBase(%q) = %s, whose check URL does not parse: %v", addr, u, err)
		}
		if !strings.HasSuffix(check.Path, "/api/v1/session-auth") || strings.Contains(check.Path, "//") || check.Host != u.Host {
			t.Fatalf("AuthBase(%q) = %s, whose check URL is %s", addr, u, check)
		}
	})
}
