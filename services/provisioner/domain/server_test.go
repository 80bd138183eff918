package domain

import (
	"errors"
	"strings"
	"testing"
)

func server(name string, sessions, max int, opts ...func(*Server)) Server {
	s := Server{ID: "id-" + name, Name: name, Address: "127.0.0.1:1", MaxSessions: max, Sessions: sessions,
		Enabled: true, Reachable: true}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func labelled(l ...string) func(*Server) { return func(s *Server) { s.Labels = l } }
func assignedTo(u string) func(*Server)  { return func(s *Server) { s.AssignedUser = u } }
func down(why string) func(*Server) {
	return func(s *Server) { s.Reachable, s.Unreachable = false, why }
}
func disabled(s *Server) { s.Enabled = false }

func szone(name string, servers ...Server) ServerZone {
	return ServerZone{ID: "id-" + name, Name: name, Known: true, Servers: servers}
}

func TestPlaceOnServerChoosesTheServerWithFewestSessions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		zones      []ServerZone
		demand     ServerDemand
		wantZone   string
		wantServer string
	}{
		{
			name:       "fewest sessions wins",
			zones:      []ServerZone{szone("z", server("s1", 3, 10), server("s2", 1, 10), server("s3", 2, 10))},
			wantZone:   "z",
			wantServer: "s2",
		},
		{
			name:       "a tie goes to the name that sorts first, whatever the order given",
			zones:      []ServerZone{szone("z", server("s3", 1, 10), server("s1", 1, 10), server("s2", 1, 10))},
			wantZone:   "z",
			wantServer: "s1",
		},
		{
			name:       "a full server is skipped",
			zones:      []ServerZone{szone("z", server("s1", 10, 10), server("s2", 9, 10))},
			wantZone:   "z",
			wantServer: "s2",
		},
		{
			name:       "an unreachable or disabled server gets nothing",
			zones:      []ServerZone{szone("z", server("s1", 0, 10, down("connection refused")), server("s2", 0, 10, disabled), server("s3", 5, 10))},
			wantZone:   "z",
			wantServer: "s3",
		},
		{
			name:       "a full zone falls through to the next",
			zones:      []ServerZone{szone("a", server("s1", 2, 2)), szone("b", server("s2", 0, 2))},
			wantZone:   "b",
			wantServer: "s2",
		},
		{
			name:       "include labels must all be there, on the server or its pool",
			zones:      []ServerZone{szone("z", server("s1", 0, 10, labelled("gpu")), server("s2", 5, 10, labelled("gpu", "eu")))},
			demand:     ServerDemand{IncludeLabels: []string{"gpu", "eu"}},
			wantZone:   "z",
			wantServer: "s2",
		},
		{
			name:       "an exclude label rules a server out",
			zones:      []ServerZone{szone("z", server("s1", 0, 10, labelled("dmz")), server("s2", 5, 10))},
			demand:     ServerDemand{ExcludeLabels: []string{"dmz"}},
			wantZone:   "z",
			wantServer: "s2",
		},
		{
			name: "with server assignment, a user's sessions go to their own server, even when others are emptier",
			zones: []ServerZone{szone("z", server("s1", 0, 10), server("s2", 4, 10, assignedTo("ann")),
				server("s3", 0, 10, assignedTo("bob")))},
			demand:     ServerDemand{ServerAssignment: true, User: "ann", OwnServer: "s2"},
			wantZone:   "z",
			wantServer: "s2",
		},
		{
			name:       "with server assignment, a user without a server gets an unassigned one",
			zones:      []ServerZone{szone("z", server("s1", 3, 10), server("s2", 0, 10, assignedTo("bob")))},
			demand:     ServerDemand{ServerAssignment: true, User: "cat"},
			wantZone:   "z",
			wantServer: "s1",
		},
		{
			name:       "without server assignment, assigned users are not heeded",
			zones:      []ServerZone{szone("z", server("s1", 3, 10), server("s2", 0, 10, assignedTo("bob")))},
			demand:     ServerDemand{User: "cat"},
			wantZone:   "z",
			wantServer: "s2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := PlaceOnServer(tt.zones, tt.demand)
			if err != nil {
				t.Fatalf("PlaceOnServer: %v", err)
			}
			if p.Zone.Name != tt.wantZone || p.Server.Name != tt.wantServer {
				t.Fatalf("placed on %s/%s, want %s/%s", p.Zone.Name, p.Server.Name, tt.wantZone, tt.wantServer)
			}
		})
	}
}

func TestPlaceOnServerSaysWhatRuledOutEveryServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zones  []ServerZone
		demand ServerDemand
		want   []string
	}{
		{
			name:   "full, unreachable and disabled servers, zone by zone",
			zones:  []ServerZone{szone("a", server("s1", 10, 10), server("s2", 0, 10, down("connection refused"))), szone("b", server("s3", 0, 1, disabled)), {Name: "c"}},
			demand: ServerDemand{Pool: "rdp"},
			want: []string{"a: server s1 has 10 of 10 sessions, server s2 is unreachable (connection refused)",
				"b: server s3 is disabled", "c: no such zone"},
		},
		{
			name:   "labels",
			zones:  []ServerZone{szone("a", server("s1", 0, 10, labelled("dmz")), server("s2", 0, 10))},
			demand: ServerDemand{IncludeLabels: []string{"gpu"}, ExcludeLabels: []string{"dmz"}},
			want:   []string{"a: server s1 lacks label gpu, server s2 lacks label gpu"},
		},
		{
			name:   "an assigned user's own server is full: no other server takes them",
			zones:  []ServerZone{szone("a", server("s1", 1, 1, assignedTo("ann")), server("s2", 0, 10))},
			demand: ServerDemand{ServerAssignment: true, User: "ann", OwnServer: "s1"},
			want:   []string{"a: server s1 has 1 of 1 sessions, server s2 is not the server assigned to ann (s1)"},
		},
		{
			name:   "an assigned user's own server in a zone not searched: no other server takes them",
			zones:  []ServerZone{szone("a", server("s2", 0, 10))},
			demand: ServerDemand{ServerAssignment: true, User: "ann", OwnServer: "s9"},
			want:   []string{"a: server s2 is not the server assigned to ann (s9)"},
		},
		{
			name:   "nobody else's sessions go to an assigned server",
			zones:  []ServerZone{szone("a", server("s1", 0, 10, assignedTo("ann")))},
			demand: ServerDemand{ServerAssignment: true, User: "bob"},
			want:   []string{"a: server s1 is assigned to another user"},
		},
		{
			name:   "a zone without servers of the pool",
			zones:  []ServerZone{szone("a")},
			demand: ServerDemand{Pool: "rdp"},
			want:   []string{"a: no servers of pool rdp"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := PlaceOnServer(tt.zones, tt.demand)
			var noCap *NoCapacityError
			if !errors.As(err, &noCap) {
				t.Fatalf("err = %v, want a *NoCapacityError", err)
			}
			if got := strings.Join(noCap.Reasons, "\n"); got != strings.Join(tt.want, "\n") {
				t.Fatalf("reasons:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestServerDialAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.0.0.5:3389":            "10.0.0.5:3389",
		"rdp://win1.example:3390":  "win1.example:3390",
		"https://desk.example/x":   "desk.example:443",
		"ssh://[2001:db8::1]":      "[2001:db8::1]:22",
		"http://127.0.0.1:8080/ok": "127.0.0.1:8080",
	} {
		got, err := ServerDialAddress(in)
		if err != nil || got != want {
			t.Errorf("ServerDialAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"no-port", "gopher://x.example", "://"} {
		if got, err := ServerDialAddress(bad); err == nil {
			t.Errorf("ServerDialAddress(%q) = %q, want an error", bad, got)
		}
	}
}
