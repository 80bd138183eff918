// Package enginehealth is what a provisioner replica knows of the
// reachability of each agent's Docker engine, so that placement passes
// over an agent whose engine does not answer (domain.Agent.Outage) and
// sends the session to one beside it that does, instead of to fail or
// wait there.
//
// Nothing here contacts an engine: the parts that do report what they
// find. The engine watcher (app/audit) keeps trying every enabled agent's
// engine, with backoff, for as long as it does not answer, so an outage
// it reports stays current; the provisioner (app/command) reports an
// engine it could not reach while making a container, and one that
// answered. Each replica keeps its own board: an engine one replica
// cannot reach may well answer another.
package enginehealth

import (
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// RememberDefault is how long a failure is believed without a newer
// report. The engine watcher reports every failed attempt, the slowest
// at its longest backoff plus a contact's timeout apart (30 s + 20 %
// jitter + 10 s by default), so while it watches an engine its outage
// never lapses; without it (the watcher disabled, or the engine's agent
// no longer enabled) an agent is tried again once its outage lapsed.
const RememberDefault = 2 * time.Minute

// Board is the engines known not to answer. It is safe for concurrent
// use; the zero value is not: use NewBoard.
type Board struct {
	remember time.Duration
	log      *zap.Logger
	now      func() time.Time

	mu   sync.Mutex
	down map[string]*outage
}

// outage is one engine's outage: since its first failure in a row, with
// the error it failed with and when a failure was last reported.
type outage struct {
	domain.EngineOutage
	last time.Time
}

// NewBoard returns a board on which a failure is believed for remember
// (RememberDefault when zero) after it was reported.
func NewBoard(remember time.Duration, log *zap.Logger) *Board {
	if remember <= 0 {
		remember = RememberDefault
	}
	return &Board{remember: remember, log: log.Named("engine_health"), now: time.Now, down: map[string]*outage{}}
}

// Failed reports that contacting the engine at endpoint failed with err.
// The outage runs from its first failure until the engine answers (or
// its last failure is older than the board remembers). It keeps the
// error it started with unless a later one says something else: while
// the Docker adapter backs off an endpoint it answers at once with the
// last contact's error and when it will try again, which is no news.
func (b *Board) Failed(endpoint string, err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	now := b.now()
	b.mu.Lock()
	o, known := b.down[endpoint]
	if known && now.Sub(o.last) > b.remember {
		known = false // that outage lapsed; this is a new one
	}
	if !known {
		o = &outage{EngineOutage: domain.EngineOutage{Err: msg, Since: now}}
		b.down[endpoint] = o
	} else if !strings.Contains(msg, o.Err) {
		o.Err = msg
	}
	o.last = now
	b.mu.Unlock()
	if !known {
		b.log.Warn("docker engine unreachable: placement passes over its agents until it answers",
			zap.String("endpoint", endpoint), zap.Error(err))
	}
}

// Answered reports that the engine at endpoint answered a call: its
// agents host sessions again.
func (b *Board) Answered(endpoint string) {
	b.mu.Lock()
	o, known := b.down[endpoint]
	delete(b.down, endpoint)
	b.mu.Unlock()
	if known {
		b.log.Info("docker engine answers again", zap.String("endpoint", endpoint),
			zap.Duration("unreachable_for", b.now().Sub(o.Since).Round(time.Millisecond)))
	}
}

// Outage is why the engine at endpoint is known not to answer, and since
// when; nil when it is not known to be down.
func (b *Board) Outage(endpoint string) *domain.EngineOutage {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, known := b.down[endpoint]
	if !known {
		return nil
	}
	if b.now().Sub(o.last) > b.remember {
		delete(b.down, endpoint)
		return nil
	}
	out := o.EngineOutage
	return &out
}
