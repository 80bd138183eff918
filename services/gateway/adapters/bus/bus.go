// Package bus is the gateway on the bus: a session's traffic announced as
// greenroom.session.keepalive (app.Keepalives), launches requested with
// greenroom.session.requested and ends with greenroom.session.destroy
// (app.Requests).
package bus

import (
	"context"

	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/gateway/app"
)

var _ app.Keepalives = (*Keepalives)(nil)

// Keepalives publishes keepalives.
type Keepalives struct {
	pub    *libbus.Publisher
	source string
}

// NewKeepalives returns a publisher of keepalives from source.
func NewKeepalives(pub *libbus.Publisher, source string) *Keepalives {
	return &Keepalives{pub: pub, source: source}
}

// Keepalive announces that session sessionID is being used.
func (k *Keepalives) Keepalive(ctx context.Context, sessionID string) error {
	ev, err := events.New(k.source, events.TypeSessionKeepalive, events.SessionKeepalive{SessionID: sessionID})
	if err != nil {
		return err
	}
	_, err = k.pub.Publish(ctx, events.TypeSessionKeepalive, ev, "")
	return err
}

var _ app.Requests = (*Requests)(nil)

// Requests requests sessions (libs/client) and ends them.
type Requests struct {
	client *client.Client
	pub    *libbus.Publisher
	source string
}

// NewRequests returns requests through c, ends published by pub.
func NewRequests(c *client.Client, pub *libbus.Publisher, source string) *Requests {
	return &Requests{client: c, pub: pub, source: source}
}

// Request requests a session and waits for its outcome.
func (r *Requests) Request(ctx context.Context, user, workspace, zone string) (app.Launched, error) {
	s, err := r.client.Request(ctx, client.Request{User: user, Workspace: workspace, Zone: zone})
	if err != nil {
		return app.Launched{}, err
	}
	return app.Launched{SessionID: s.SessionID, URL: s.URL}, nil
}

// Destroy asks for a session to be destroyed (greenroom.session.destroy).
func (r *Requests) Destroy(ctx context.Context, sessionID, reason string) error {
	ev, err := events.New(r.source, events.TypeSessionDestroy, events.SessionDestroy{SessionID: sessionID, Reason: reason})
	if err != nil {
		return err
	}
	_, err = r.pub.Publish(ctx, events.TypeSessionDestroy, ev, "")
	return err
}
