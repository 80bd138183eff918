package service_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// nonLoopbackIPv4 is an address of this machine other than loopback (the
// Docker bridge's at least, where Docker runs).
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address to dial from")
	return ""
}

func dial(host string, port int64) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.FormatInt(port, 10)), 3*time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

// Issue 13, point 3: a session's port is published on its agent's
// internal address only, so the container cannot be reached around
// Greenroom from another address of the machine: on loopback for a local
// engine by default, on internal_address when the agent has one.
func TestSessionPortIsReachableOnlyOnTheAgentsInternalAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{cores: 0.25, memoryMB: 64})
	other := nonLoopbackIPv4(t)

	run := func(wantAddress, refusedOn string) {
		t.Helper()
		sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
		e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", rid))
		s := e.session(sid)
		in, err := e.inspect(s.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		for port, bindings := range in.HostConfig.PortBindings {
			for _, b := range bindings {
				if b.HostIP.String() != wantAddress {
					t.Errorf("port %s published on %q, want only %s", port, b.HostIP, wantAddress)
				}
			}
		}
		want := "http://" + net.JoinHostPort(wantAddress, strconv.FormatInt(s.HostPort.Int64, 10)) + "/"
		if s.UpstreamURL != want {
			t.Errorf("session upstream_url %q, want %q", s.UpstreamURL, want)
		}
		if err := dial(wantAddress, s.HostPort.Int64); err != nil {
			t.Fatalf("the container does not answer on its internal address %s: %v", wantAddress, err)
		}
		if err := dial(refusedOn, s.HostPort.Int64); err == nil {
			t.Errorf("the container's port %d answered on %s, around Greenroom", s.HostPort.Int64, refusedOn)
		} else {
			t.Logf("dialing the port on %s: %v", refusedOn, err)
		}
	}

	run("127.0.0.1", other) // a local engine: loopback
	e.exec(`UPDATE agents SET internal_address = $1 WHERE id = $2`, other, f.agentID)
	run(other, "127.0.0.1")
}
