package audit

import (
	"context"
	"time"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Engines hands out the Docker engine at an endpoint (adapters/docker).
type Engines interface {
	For(endpoint string) (Engine, error)
}

// Engine is the Docker calls the audit makes on one engine. Errors wrap
// domain.ErrContainerNotFound where that applies.
type Engine interface {
	// ListByLabels lists containers, running or not, carrying every label
	// given (key=value, or key alone for "any value").
	ListByLabels(ctx context.Context, labels map[string]string) ([]domain.Container, error)
	// Inspect reads a container's state, labels and published ports.
	Inspect(ctx context.Context, id string) (domain.Container, error)
	// Remove stops and removes a container; one that does not exist counts
	// as removed.
	Remove(ctx context.Context, id string) error
	// Ping checks that the engine answers.
	Ping(ctx context.Context) error
	// ContainerEvents subscribes to the engine's container events. Events
	// arrive on the first channel until ctx is done or the stream breaks;
	// the second then receives why, once.
	ContainerEvents(ctx context.Context, opts ContainerEventsOptions) (<-chan ContainerEvent, <-chan error)
}

// EngineHealth is told whether each engine answered (app/enginehealth),
// so that placement passes over the agents of one that does not.
type EngineHealth interface {
	// Failed reports that the engine at endpoint could not be reached.
	Failed(endpoint string, err error)
	// Answered reports that the engine at endpoint answered.
	Answered(endpoint string)
}

// noEngineHealth forgets what it is told.
type noEngineHealth struct{}

func (noEngineHealth) Failed(string, error) {}
func (noEngineHealth) Answered(string)      {}

// ContainerEvent is one event of a container, as the engine reported it.
type ContainerEvent struct {
	// Action is what happened: "die", "destroy", "oom", ….
	Action      string
	ContainerID string
	// Labels are the container's labels.
	Labels map[string]string
	// ExitCode is the code a died container ended with; HasExitCode says
	// whether the engine gave one ("die" events do).
	ExitCode    int
	HasExitCode bool
	// Time is when it happened, by the engine's clock; a later
	// subscription may resume from it.
	Time time.Time
}

// ContainerEventsOptions selects the events of a subscription.
type ContainerEventsOptions struct {
	// Actions are the actions wanted ("die", "destroy", …); empty means
	// every action.
	Actions []string
	// Labels are labels every container must carry (key=value, or key
	// alone for any value).
	Labels map[string]string
	// Since, when set, makes the engine first replay the events it still
	// holds from that time on (it keeps the last 256 or so), so that a
	// subscription renewed after a drop loses nothing the engine kept.
	Since time.Time
}
