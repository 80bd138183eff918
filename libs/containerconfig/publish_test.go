package containerconfig

import (
	"errors"
	"testing"
)

// A session's port is published on the agent's private address only, never
// on every interface: containers are reached through Greenroom.
func TestPortsArePublishedOnTheAgentsInternalAddressOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		internalAddress, endpoint string
		want                      string
		err                       error
	}{
		{"", "unix:///var/run/docker.sock", "127.0.0.1", nil},
		{"", "npipe:////./pipe/docker_engine", "127.0.0.1", nil},
		{"", "tcp://10.0.0.5:2375", "10.0.0.5", nil},
		{"", "tcp://[fd00::5]:2376", "fd00::5", nil},
		{"10.1.0.7", "tcp://docker-1.example.com:2376", "10.1.0.7", nil},
		{"192.168.5.2", "unix:///var/run/docker.sock", "192.168.5.2", nil},
		{"", "tcp://docker-1.example.com:2376", "", ErrNoInternalAddress},
	}
	for _, tt := range tests {
		got, err := PublishAddress(tt.internalAddress, tt.endpoint)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("PublishAddress(%q, %q) = %q, %v; want %q, %v", tt.internalAddress, tt.endpoint, got, err, tt.want, tt.err)
		}
		if got == "0.0.0.0" || got == "::" {
			t.Errorf("PublishAddress(%q, %q) publishes on every interface", tt.internalAddress, tt.endpoint)
		}
	}
}
