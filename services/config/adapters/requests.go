package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/services/config/app"
)

// Requests sends the API's session requests durably (app.SessionRequester):
// each is written to the outbox in a transaction of its own and published
// by its committer right after the commit (outbox.Direct), with the
// request_id as the event's id and Nats-Msg-Id. When the bus is down the
// commit still stands, and the outbox relay publishes the request once the
// bus is back. So a request the API accepted (committed) is never lost, and
// one it could not commit was never sent: the caller may retry it, with the
// same request_id, without getting two sessions. Outcomes are heard
// through client.
type Requests struct {
	db     *sqlx.DB
	direct *outbox.Direct
	client *client.Client
	source string
}

// NewRequests returns the Requests of conn, published through direct, with
// outcomes heard by c; source is the CloudEvents source of the requests.
func NewRequests(conn *sqlx.DB, direct *outbox.Direct, c *client.Client, source string) *Requests {
	return &Requests{db: conn, direct: direct, client: c, source: source}
}

// Publish accepts r: once it returns nil, r is in the outbox and will be
// published. An error wraps app.ErrNotAccepted: nothing was sent.
func (q *Requests) Publish(ctx context.Context, r client.Request) (string, bool, error) {
	if r.RequestID == "" {
		r.RequestID = uuid.NewString()
	}
	ev, err := events.NewWithID(r.RequestID, q.source, events.TypeSessionRequested, events.SessionRequested{
		RequestID: r.RequestID, User: r.User, Workspace: r.Workspace, Zone: r.Zone,
	})
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", app.ErrNotAccepted, err)
	}
	err = q.direct.InTx(ctx, q.db, func(ctx context.Context, tx *sqlx.Tx) error {
		// A row of the same request_id still in the outbox is this
		// request, sent before: nothing more to write.
		return outbox.Enqueue(ctx, tx, events.TypeSessionRequested, ev, r.RequestID)
	})
	if err != nil {
		return "", false, fmt.Errorf("%w: writing the request to the outbox: %v", app.ErrNotAccepted, err)
	}
	// Whether JetStream had it already is not known here: the duplicate
	// window drops a second publish of the same request_id.
	return r.RequestID, false, nil
}

// Request accepts r and waits until its session is ready, it fails, or ctx
// ends. The wait is registered before the request is written, so an
// outcome that comes at once is not missed.
func (q *Requests) Request(ctx context.Context, r client.Request) (client.Session, error) {
	p := q.client.Expect(r)
	defer p.Close()
	if _, _, err := q.Publish(ctx, client.Request{RequestID: p.RequestID(), User: r.User, Workspace: r.Workspace, Zone: r.Zone}); err != nil {
		return client.Session{}, err
	}
	return p.Wait(ctx)
}

// Await waits for the outcome of a request accepted earlier (client.Await).
func (q *Requests) Await(ctx context.Context, requestID string, lookback time.Duration) (client.Session, error) {
	return q.client.Await(ctx, requestID, lookback)
}

var _ app.SessionRequester = (*Requests)(nil)
