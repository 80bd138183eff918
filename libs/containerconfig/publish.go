package containerconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrNoInternalAddress: an agent whose engine is reached by host name has
// no internal_address to publish its sessions' ports on.
var ErrNoInternalAddress = errors.New("the agent has no internal_address")

// PublishAddress is the address of an agent its sessions' ports are
// published on and Greenroom reaches them at (the provisioner's probe and
// assign hook, the gateway): the agent's internal_address; else the
// loopback interface for a local engine (unix socket, named pipe); else
// the host of a tcp:// endpoint, when it is an IP address. Never every
// interface: a container is reached only through Greenroom. The config
// service refuses an agent for which it returns ErrNoInternalAddress, the
// provisioner fails its sessions with it.
func PublishAddress(internalAddress, dockerEndpoint string) (string, error) {
	if internalAddress != "" {
		return internalAddress, nil
	}
	u, err := url.Parse(dockerEndpoint)
	if err != nil || u.Scheme == "unix" || u.Scheme == "npipe" || u.Hostname() == "" {
		return "127.0.0.1", nil
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		return ip.String(), nil
	}
	return "", fmt.Errorf("%w (its docker_endpoint's host %s is not an IP address)", ErrNoInternalAddress, u.Hostname())
}
