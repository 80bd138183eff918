package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// These fakes run the use cases' own logic in memory; the service's
// component tests run them against PostgreSQL and JetStream.

// fakeTables keeps zones, the number of live staging configs in each, the
// request refs of session requests and the outbox in memory. The tables
// these tests do not use are left to the embedded Tx, which is nil: using
// one fails the test with a panic.
type fakeTables struct {
	Tx
	zones          map[string]domain.Zone // by name
	stagingConfigs map[string]int         // live ones, by zone id
	refs           RequestRefs
	outbox         []events.Event
}

func (t *fakeTables) GetZone(_ context.Context, name string, _ Lock) (domain.Zone, error) {
	z, ok := t.zones[name]
	if !ok {
		return domain.Zone{}, fmt.Errorf("zone %q: %w", name, ErrNotFound)
	}
	return z, nil
}

func (t *fakeTables) InsertZone(_ context.Context, z domain.Zone) (domain.Zone, error) {
	if _, taken := t.zones[z.Name]; taken {
		return domain.Zone{}, &RefusedError{Refusal: RefusedDuplicate, Err: errors.New(`duplicate key value violates unique constraint "zones_name_key"`)}
	}
	t.zones[z.Name] = z
	return z, nil
}

func (t *fakeTables) UpdateZone(_ context.Context, z domain.Zone) (domain.Zone, error) {
	for name, old := range t.zones {
		if old.ID == z.ID {
			delete(t.zones, name)
		}
	}
	t.zones[z.Name] = z
	return z, nil
}

func (t *fakeTables) CountLiveStagingConfigsInZone(_ context.Context, zoneID string) (int, error) {
	return t.stagingConfigs[zoneID], nil
}

func (t *fakeTables) ResolveRequest(context.Context, string, string, string, string) (RequestRefs, error) {
	return t.refs, nil
}

func (t *fakeTables) Enqueue(_ context.Context, _ string, ev events.Event, _ string) error {
	t.outbox = append(t.outbox, ev)
	return nil
}

// fakeStore commits a transaction's zones and outbox only when it
// succeeds.
type fakeStore struct{ *fakeTables }

func (s fakeStore) InTx(_ context.Context, fn func(tx Tx) error) error {
	tx := *s.fakeTables
	tx.zones = maps.Clone(s.zones)
	tx.outbox = nil
	if err := fn(&tx); err != nil {
		return err
	}
	s.zones, s.outbox = tx.zones, append(s.outbox, tx.outbox...)
	return nil
}

func (s fakeStore) Snapshot(_ context.Context, fn func(tables Tables) error) error {
	return fn(s.fakeTables)
}

// fakeRequests counts the session requests published.
type fakeRequests struct{ published int }

func (r *fakeRequests) Publish(context.Context, client.Request) (string, bool, error) {
	r.published++
	return "", false, nil
}

func (r *fakeRequests) Request(context.Context, client.Request) (client.Session, error) {
	r.published++
	return client.Session{}, nil
}

func (r *fakeRequests) Await(context.Context, string, time.Duration) (client.Session, error) {
	return client.Session{}, nil
}

type nopGauge struct{}

func (nopGauge) Inc() {}
func (nopGauge) Dec() {}

// newFakeApp returns an App over tables and requests.
func newFakeApp(tables *fakeTables, requests *fakeRequests) *App {
	if tables.zones == nil {
		tables.zones = map[string]domain.Zone{}
	}
	return New(Config{Store: fakeStore{tables}, Source: "greenroom/config", Requests: requests,
		Stopping: context.Background(), Waiting: nopGauge{}})
}

// refusal returns err as an *Error, or nil.
func refusal(err error) *Error {
	var e *Error
	errors.As(err, &e)
	return e
}
