package domain

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Server is a fixed server of a server pool as server placement sees it.
type Server struct {
	ID          string
	Name        string
	Address     string
	MaxSessions int
	// Sessions is how many live sessions it holds now.
	Sessions int
	Enabled  bool
	// Reachable is false when a TCP connect to its address failed;
	// Unreachable then says how.
	Reachable   bool
	Unreachable string
	// AssignedUser is the username it is reserved for, or "" (only heeded
	// in a pool with server assignment).
	AssignedUser string
	// Labels are the server's own labels and its pool's.
	Labels []string
}

// ServerZone is a candidate zone with the servers of the pool in it.
type ServerZone struct {
	ID   string
	Name string
	// Known is false when no zone has this name.
	Known   bool
	Servers []Server
}

// ServerDemand is a session of a workspace with a server pool.
type ServerDemand struct {
	// Pool is the server pool's name (for the reasons).
	Pool string
	// ServerAssignment is the pool's server_assignment: servers with an
	// assigned user take only that user's sessions, and that user's
	// sessions go only to them.
	ServerAssignment bool
	User             string
	// OwnServer is the name of the server of the pool (in any zone)
	// assigned to User, or "" (heeded only with ServerAssignment).
	OwnServer     string
	IncludeLabels []string
	ExcludeLabels []string
}

// ServerPlacement is the server a session goes to.
type ServerPlacement struct {
	Zone   ServerZone
	Server Server
}

// PlaceOnServer picks the first zone, in order, with a server of the pool
// that can take d, and within it the server with the fewest sessions (so
// sessions spread evenly); ties go to the server whose name sorts first.
// A server takes d when it is enabled, reachable, below its max_sessions,
// has the labels d asks for and none it excludes, and, in a pool with
// server assignment, is the user's own server or (when the user has none
// in the pool) nobody's. When none can, it returns a *NoCapacityError
// saying what ruled out each server (by name), zone by zone.
func PlaceOnServer(zones []ServerZone, d ServerDemand) (ServerPlacement, error) {
	reasons := make([]string, 0, len(zones))
	for _, z := range zones {
		s, why := chooseServer(z, d)
		if why == "" {
			return ServerPlacement{Zone: z, Server: s}, nil
		}
		reasons = append(reasons, z.Name+": "+why)
	}
	return ServerPlacement{}, &NoCapacityError{Reasons: reasons}
}

func chooseServer(z ServerZone, d ServerDemand) (Server, string) {
	if !z.Known {
		return Server{}, "no such zone"
	}
	if len(z.Servers) == 0 {
		return Server{}, fmt.Sprintf("no servers of pool %s", d.Pool)
	}
	var fit []Server
	var why []string
	byName := slices.SortedFunc(slices.Values(z.Servers), func(a, b Server) int { return cmp.Compare(a.Name, b.Name) })
	for _, s := range byName {
		if reason := unfitServer(s, d); reason != "" {
			why = append(why, "server "+s.Name+" "+reason)
			continue
		}
		fit = append(fit, s)
	}
	if len(fit) == 0 {
		return Server{}, strings.Join(why, ", ")
	}
	slices.SortStableFunc(fit, func(a, b Server) int {
		if c := cmp.Compare(a.Sessions, b.Sessions); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return fit[0], ""
}

// unfitServer says why s cannot take d, or "" when it can. The reasons
// that do not change on their own come first.
func unfitServer(s Server, d ServerDemand) string {
	if !s.Enabled {
		return "is disabled"
	}
	if reason := unfitLabels(s.Labels, d.IncludeLabels, d.ExcludeLabels); reason != "" {
		return reason
	}
	if d.ServerAssignment {
		switch {
		case s.AssignedUser != "" && s.AssignedUser != d.User:
			return "is assigned to another user"
		case d.OwnServer != "" && s.Name != d.OwnServer:
			return fmt.Sprintf("is not the server assigned to %s (%s)", d.User, d.OwnServer)
		}
	}
	if s.Sessions >= s.MaxSessions {
		return fmt.Sprintf("has %d of %d sessions", s.Sessions, s.MaxSessions)
	}
	if !s.Reachable {
		if s.Unreachable != "" {
			return "is unreachable (" + s.Unreachable + ")"
		}
		return "is unreachable"
	}
	return ""
}

// unfitLabels says which label rules out a member with labels, or "" when
// none does: every include label must be there and no exclude label.
func unfitLabels(labels, include, exclude []string) string {
	for _, l := range include {
		if !slices.Contains(labels, l) {
			return fmt.Sprintf("lacks label %s", l)
		}
	}
	for _, l := range exclude {
		if slices.Contains(labels, l) {
			return fmt.Sprintf("has excluded label %s", l)
		}
	}
	return ""
}

// ServerDialAddress is the host:port a TCP connect to a server's address
// goes to: the address itself ("host:port"), or the host of a URL with its
// port or its scheme's usual one.
func ServerDialAddress(address string) (string, error) {
	if !strings.Contains(address, "://") {
		if _, _, err := net.SplitHostPort(address); err != nil {
			return "", fmt.Errorf("server address %q is neither host:port nor a URL: %v", address, err)
		}
		return address, nil
	}
	u, err := url.Parse(address)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("server address %q is not a URL with a host", address)
	}
	if port := u.Port(); port != "" {
		return net.JoinHostPort(u.Hostname(), port), nil
	}
	port, ok := map[string]string{"http": "80", "https": "443", "rdp": "3389", "vnc": "5900", "ssh": "22"}[u.Scheme]
	if !ok {
		return "", fmt.Errorf("server address %q has no port and scheme %s has no usual one", address, u.Scheme)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// ServerURL is the URL of a session on a server: its address when that is
// a URL, else tcp://host:port.
func ServerURL(address string) string {
	if strings.Contains(address, "://") {
		return address
	}
	return "tcp://" + address
}
