package autoscale

import (
	"context"
	"errors"
	"net/netip"
)

// MachineSpec is what the autoscaler asks a VM provider for: one machine
// that runs a Docker Engine reached over TLS with client certificates.
type MachineSpec struct {
	// Name is the agent's name, unique over the deployment; a provider
	// names (or tags) the machine with it, so that Create of a name that
	// already has a machine finds it instead of making a second one.
	Name string
	// Cores, MemoryMB and GPUs are what the machine should have (the
	// autoscale config's overrides, or the provider's size).
	Cores    float64
	MemoryMB int
	GPUs     int
	// Labels go on the machine where the provider has labels or tags
	// (greenroom.managed=true, greenroom.agent=<name>, ...).
	Labels map[string]string
	// TLS is what the machine's engine serves with: it listens on
	// tcp://0.0.0.0:EnginePort with --tlsverify, its certificate signed
	// by the provider's CA, and trusts client certificates signed by
	// that same CA.
	TLS EngineTLS
}

// EngineTLS is the PEM material a machine's engine is started with.
type EngineTLS struct {
	CACert     []byte // the provider's CA: verifies client certificates
	ServerCert []byte // the engine's certificate (signed by the CA)
	ServerKey  []byte
}

// EnginePort is the port every machine's engine listens on with TLS.
const EnginePort = 2376

// Machine is a machine a provider made.
type Machine struct {
	// ID is the provider's own id of the machine (a container id, a
	// droplet id); Delete takes it.
	ID string
	// Address is where the machine is reached: its engine answers on
	// tcp://Address:EnginePort, session ports are published on it, and
	// its DNS record points at it. Invalid while the provider has not
	// given it one yet (a cloud machine still booting).
	Address netip.Addr
}

// Endpoint is the Docker endpoint of the machine's engine.
func (m Machine) Endpoint() string {
	return "tcp://" + netip.AddrPortFrom(m.Address, EnginePort).String()
}

// Provider makes and deletes machines. Every method is safe to call
// again after a crash: Create of a name that has a machine returns it,
// Delete of a machine that is gone returns nil.
type Provider interface {
	// Type is the provider's type (local_docker, digitalocean).
	Type() string
	// Create makes the machine of spec (or finds the one named
	// spec.Name) and returns once the provider gave it an address; its
	// engine may still be starting.
	Create(ctx context.Context, spec MachineSpec) (Machine, error)
	// Delete deletes the machine with id and everything the provider made
	// for it (its disk, its volume); nil when it is already gone.
	Delete(ctx context.Context, id string) error
}

// ErrNoAddress is returned by Create when the provider made the machine
// but gave it no address within the call's context.
var ErrNoAddress = errors.New("the machine has no address yet")

// DNS registers the agents' names: one A record per agent, added when it
// is up and removed when it goes.
type DNS interface {
	// Register makes host (a name relative to the provider's zone, e.g.
	// the agent's name) resolve to addr, replacing what it resolved to.
	Register(ctx context.Context, host string, addr netip.Addr) error
	// Remove deletes host's A records; nil when it has none.
	Remove(ctx context.Context, host string) error
}
