package domain

import (
	"net/url"
	"testing"
	"time"
)

func TestSessionPathNamesTheSessionAndWhatTheContainerSees(t *testing.T) {
	for _, tt := range []struct {
		path, id, rest string
		ok             bool
	}{
		{"/session/s-1/", "s-1", "/", true},
		{"/session/s-1/vnc/websockify?x", "s-1", "/vnc/websockify?x", true},
		{"/session/s-1", "s-1", "", true},
		{"/session/", "", "", false},
		{"/session//x", "", "", false},
		{"/sessions/s-1/", "", "", false},
		{"/", "", "", false},
	} {
		id, rest, ok := SessionPath(tt.path)
		if id != tt.id || rest != tt.rest || ok != tt.ok {
			t.Errorf("SessionPath(%q) = %q, %q, %v; want %q, %q, %v", tt.path, id, rest, ok, tt.id, tt.rest, tt.ok)
		}
	}
}

func TestAZonesSessionsAreServedOnItsDomainOnly(t *testing.T) {
	for _, tt := range []struct {
		host, domain string
		want         bool
	}{
		{"desktops.example.com", "desktops.example.com", true},
		{"Desktops.Example.com:8443", "desktops.example.com", true},
		{"evil.example.net", "desktops.example.com", false},
		{"127.0.0.1:8090", "desktops.example.com", false},
		{"anything:8090", RequestHost, true},
	} {
		if got := ServedOn(tt.host, tt.domain); got != tt.want {
			t.Errorf("ServedOn(%q, %q) = %v, want %v", tt.host, tt.domain, got, tt.want)
		}
	}
}

func TestWebSocketsFromAnotherSiteAreRefused(t *testing.T) {
	for _, tt := range []struct {
		origin, host, domain string
		want                 bool
	}{
		{"https://desktops.example.com", "desktops.example.com", "desktops.example.com", true},
		{"https://evil.example.net", "desktops.example.com", "desktops.example.com", false},
		{"http://greenroom.localhost:8090", "greenroom.localhost:8090", RequestHost, true},
		{"http://evil.localhost:8090", "greenroom.localhost:8090", RequestHost, false},
		{"null", "desktops.example.com", "desktops.example.com", false},
		{"", "desktops.example.com", "desktops.example.com", true},
	} {
		if got := OriginAllowed(tt.origin, tt.host, tt.domain); got != tt.want {
			t.Errorf("OriginAllowed(%q, %q, %q) = %v, want %v", tt.origin, tt.host, tt.domain, got, tt.want)
		}
	}
}

func TestSignInsAreCheckedAtTheZonesUpstreamAuthAddress(t *testing.T) {
	fallback, _ := url.Parse("http://127.0.0.1:8080")
	for _, tt := range []struct{ address, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https://auth.example.com/", "https://auth.example.com"},
		{RequestHost, "http://127.0.0.1:8080"},
		{"", "http://127.0.0.1:8080"},
	} {
		got, err := AuthBase(tt.address, fallback)
		if err != nil || got.String() != tt.want {
			t.Errorf("AuthBase(%q) = %v, %v; want %s", tt.address, got, err, tt.want)
		}
	}
}

func TestTrafficKeepsASessionAliveAtMostOncePerPeriod(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		last, now time.Time
		want      bool
	}{
		{time.Time{}, t0, true},
		{t0, t0.Add(10 * time.Second), false},
		{t0, t0.Add(30 * time.Second), true},
	} {
		if got := KeepaliveDue(tt.last, tt.now, 30*time.Second); got != tt.want {
			t.Errorf("KeepaliveDue(%v, %v) = %v, want %v", tt.last, tt.now, got, tt.want)
		}
	}
}

func TestALaunchGoesToTheZoneServedOnItsHost(t *testing.T) {
	zones := []Zone{{"zone-a", "desktops.example.com"}, {"zone-b", "eu.example.com"}, {"zone-c", RequestHost}}
	for _, tt := range []struct {
		host, want string
		ok         bool
	}{
		{"eu.example.com:8443", "zone-b", true},
		{"desktops.example.com", "zone-a", true},
		{"127.0.0.1:8090", "zone-c", true},
	} {
		if got, ok := ZoneServedOn(tt.host, zones); got != tt.want || ok != tt.ok {
			t.Errorf("ZoneServedOn(%q) = %q, %v; want %q", tt.host, got, ok, tt.want)
		}
	}
	if _, ok := ZoneServedOn("127.0.0.1:8090", zones[:2]); ok {
		t.Error("a host no zone is served on got a zone")
	}
}
