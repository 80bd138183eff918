package app

import (
	"context"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// AdminTokenActor is the bearer of the admin token.
var AdminTokenActor = events.Actor{Type: events.ActorAdminToken}

// APIKeyActor is the bearer of the API key named name.
func APIKeyActor(name string) events.Actor {
	return events.Actor{Type: events.ActorAPIKey, Name: name}
}

// SystemActor is who makes a change whose context names no one: the
// config service itself, called in-process rather than through the API.
var SystemActor = events.Actor{Type: events.ActorSystem, Name: "config"}

// actorKey is the context key of the actor of a request.
type actorKey struct{}

// WithActor returns ctx naming who makes the changes made with it (the
// bearer of an API request); every change made with it announces them.
func WithActor(ctx context.Context, who events.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

// actorOf is who makes the changes made with ctx: the actor WithActor
// put in it, SystemActor when there is none.
func actorOf(ctx context.Context) events.Actor {
	if who, ok := ctx.Value(actorKey{}).(events.Actor); ok {
		return who
	}
	return SystemActor
}
