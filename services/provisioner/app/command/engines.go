package command

import (
	"context"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Engines hands out the Docker engine of an agent (adapters/docker).
type Engines interface {
	// For returns the engine at endpoint, e.g. unix:///var/run/docker.sock.
	For(endpoint string) (Engine, error)
}

// Engine is the Docker calls the use cases make on one engine. Errors
// wrap domain.ErrContainerNotFound, ErrContainerNameInUse,
// ErrContainerNotRunning and ErrImageNotFound where those apply.
type Engine interface {
	// SessionContainers lists the containers labelled as session
	// sessionID's, running or not.
	SessionContainers(ctx context.Context, sessionID string) ([]domain.Container, error)
	// Inspect reads a container's state, labels and published ports.
	Inspect(ctx context.Context, id string) (domain.Container, error)
	// Create creates (but does not start) the container of spec and
	// returns its id.
	Create(ctx context.Context, spec domain.ContainerSpec) (string, error)
	// Upload writes u into a created container.
	Upload(ctx context.Context, id string, u domain.Upload) error
	// Start starts a created container.
	Start(ctx context.Context, id string) error
	// Exec runs spec inside container id and waits for it to finish.
	Exec(ctx context.Context, id string, spec domain.ExecSpec) (domain.ExecResult, error)
	// Remove stops and removes a container; one that does not exist counts
	// as removed.
	Remove(ctx context.Context, id string) error
	// RemoveSession removes container containerID (when set) and any
	// other container of session sessionID, returning how many it removed.
	RemoveSession(ctx context.Context, sessionID, containerID string) (int, error)
}

// ReadinessProbe tells when a new container answers on its published port,
// and whether a fixed server can be reached (adapters/probe).
type ReadinessProbe interface {
	// WaitReady probes t until it answers, ctx ends, or alive reports the
	// container cannot become ready.
	WaitReady(ctx context.Context, t domain.ProbeTarget, alive func(context.Context) error) error
	// Reach checks that address (host:port) accepts a TCP connection.
	Reach(ctx context.Context, address string) error
}

// EngineHealth is what this replica knows of the agents' engines
// (app/enginehealth): placement passes over an agent whose engine is
// known not to answer, and the use cases report what they find when they
// contact one.
type EngineHealth interface {
	EngineOutages
	// Failed reports that the engine at endpoint could not be reached.
	Failed(endpoint string, err error)
	// Answered reports that the engine at endpoint answered.
	Answered(endpoint string)
}

// EngineOutages tells placement which engines are known not to answer.
type EngineOutages interface {
	// Outage is why the engine at endpoint is known not to answer, and
	// since when; nil when it is not known to be down.
	Outage(endpoint string) *domain.EngineOutage
}

// noEngineHealth knows of no outage and forgets what it is told.
type noEngineHealth struct{}

func (noEngineHealth) Outage(string) *domain.EngineOutage { return nil }
func (noEngineHealth) Failed(string, error)               {}
func (noEngineHealth) Answered(string)                    {}
