// Package fakeengine is a Docker engine in memory, for the unit tests of
// the use cases (app/command, app/audit): it makes every call they make,
// on containers it keeps in a map, so that their own logic is tested
// without Docker. Each test hands it out through its package's Engines.
package fakeengine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Engine is one Docker engine's containers. CreateErr, StartErr and
// ExecErr, when set, are what Create, Start and Exec answer.
type Engine struct {
	// Endpoint is where it answers; For of any other fails.
	Endpoint string

	CreateErr, StartErr, ExecErr error

	mu         sync.Mutex
	containers map[string]domain.Container
	made       int
	execs      []domain.ExecSpec
}

// New returns an engine at endpoint without containers.
func New(endpoint string) *Engine {
	return &Engine{Endpoint: endpoint, containers: map[string]domain.Container{}}
}

// Answers says whether the engine is the one at endpoint.
func (e *Engine) Answers(endpoint string) error {
	if endpoint != e.Endpoint {
		return fmt.Errorf("docker engine %s does not answer", endpoint)
	}
	return nil
}

// Put adds c, with an id made up when it has none, and returns its id.
// Running follows State.
func (e *Engine) Put(c domain.Container) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.ID == "" {
		e.made++
		c.ID = fmt.Sprintf("%064d", e.made)
	}
	c.Running = c.State == "running"
	c.Labels = maps.Clone(c.Labels)
	if c.HostPorts == nil {
		c.HostPorts = map[int]int{}
	}
	e.containers[c.ID] = c
	return c.ID
}

// Has says whether container id exists.
func (e *Engine) Has(id string) bool {
	_, err := e.Inspect(context.Background(), id)
	return err == nil
}

// Execs are the execs run, in order.
func (e *Engine) Execs() []domain.ExecSpec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.execs
}

// ListByLabels lists the containers carrying every label given (key=value,
// or key alone for any value).
func (e *Engine) ListByLabels(_ context.Context, labels map[string]string) ([]domain.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []domain.Container
	for _, c := range e.containers {
		if carries(c, labels) {
			c.Labels = maps.Clone(c.Labels)
			out = append(out, c)
		}
	}
	return out, nil
}

func carries(c domain.Container, labels map[string]string) bool {
	for k, v := range labels {
		if got, ok := c.Labels[k]; !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

// SessionContainers lists the containers labelled as session sessionID's.
func (e *Engine) SessionContainers(ctx context.Context, sessionID string) ([]domain.Container, error) {
	return e.ListByLabels(ctx, map[string]string{domain.LabelSession: sessionID})
}

// Inspect returns container id, or domain.ErrContainerNotFound.
func (e *Engine) Inspect(_ context.Context, id string) (domain.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.containers[id]
	if !ok {
		return domain.Container{}, fmt.Errorf("%w: %s", domain.ErrContainerNotFound, domain.ShortID(id))
	}
	c.Labels = maps.Clone(c.Labels)
	return c, nil
}

// Create adds a created container of spec, its port published.
func (e *Engine) Create(_ context.Context, spec domain.ContainerSpec) (string, error) {
	if e.CreateErr != nil {
		return "", e.CreateErr
	}
	id := e.Put(domain.Container{Name: spec.Name, State: "created", Labels: spec.Labels, Created: time.Now()})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers[id].HostPorts[spec.Port] = 32768 + e.made
	return id, nil
}

// Upload does nothing.
func (e *Engine) Upload(context.Context, string, domain.Upload) error { return nil }

// Start makes container id run.
func (e *Engine) Start(_ context.Context, id string) error {
	if e.StartErr != nil {
		return e.StartErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.containers[id]
	c.State, c.Running = "running", true
	e.containers[id] = c
	return nil
}

// Exec records spec; in a container that does not exist it fails with
// domain.ErrContainerNotFound.
func (e *Engine) Exec(ctx context.Context, id string, spec domain.ExecSpec) (domain.ExecResult, error) {
	e.mu.Lock()
	e.execs = append(e.execs, spec)
	e.mu.Unlock()
	if _, err := e.Inspect(ctx, id); err != nil {
		return domain.ExecResult{}, err
	}
	return domain.ExecResult{}, e.ExecErr
}

// Remove removes container id, if it exists.
func (e *Engine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.containers, id)
	return nil
}

// RemoveSession removes containerID and every container of sessionID.
func (e *Engine) RemoveSession(ctx context.Context, sessionID, containerID string) (int, error) {
	list, _ := e.SessionContainers(ctx, sessionID)
	ids := map[string]bool{}
	if containerID != "" {
		ids[containerID] = true
	}
	for _, c := range list {
		ids[c.ID] = true
	}
	for id := range ids {
		_ = e.Remove(ctx, id)
	}
	return len(ids), nil
}

// Ping answers.
func (e *Engine) Ping(context.Context) error { return nil }

// ContainerEvents is a stream that breaks at once: the fake reports no
// events.
func (e *Engine) ContainerEvents(context.Context, audit.ContainerEventsOptions) (<-chan audit.ContainerEvent, <-chan error) {
	errs := make(chan error, 1)
	errs <- errors.New("the fake engine reports no events")
	return nil, errs
}
