package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// view reads the object of kind that key names (what the path of its GET
// takes: a name, a username, a staging config's id) in q, taking lock on
// its row, and renders it as that GET answers it, so that what a change
// announces reads as the API does. An API key carries no secret: only
// IssuedAPIKey, which no view returns, does; a user shows has_password,
// never their password.
func view(ctx context.Context, q Tables, kind, key string, lock Lock) (json.RawMessage, error) {
	var (
		v   any
		err error
	)
	switch kind {
	case KindZone:
		v, err = q.GetZone(ctx, key, lock)
	case KindPool:
		var p domain.Pool
		if p, err = q.GetPool(ctx, key, lock); err == nil {
			v, err = withMembers(ctx, q, p)
		}
	case KindAgent:
		v, err = q.GetAgent(ctx, key, lock)
	case KindServer:
		v, err = q.GetServer(ctx, key, lock)
	case KindWorkspace:
		v, err = q.GetWorkspace(ctx, key, lock)
	case KindGroup:
		v, err = q.GetGroup(ctx, key, lock)
	case KindUser:
		v, err = q.GetUser(ctx, key, lock)
	case KindStagingConfig:
		v, err = q.GetStagingConfig(ctx, key, lock)
	case KindWebFilterPolicy:
		v, err = q.GetWebFilterPolicy(ctx, key, lock)
	case KindVMProvider:
		v, err = q.GetVMProvider(ctx, key, lock)
	case KindDNSProvider:
		v, err = q.GetDNSProvider(ctx, key, lock)
	case KindAutoscaleConfig:
		v, err = q.GetAutoscaleConfig(ctx, key, lock)
	case KindAPIKey:
		// A key is never changed, only created and deleted: there is no
		// change to lock out.
		v, err = q.GetAPIKey(ctx, key)
	default:
		return nil, fmt.Errorf("no view of a %s", kind)
	}
	if err != nil {
		return nil, err
	}
	return render(v)
}

// viewKey is the key view takes for the object with id and name of kind.
func viewKey(kind, id, name string) string {
	if kind == KindStagingConfig {
		return id
	}
	return name
}

// render is v as the API writes it.
func render(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("rendering %T: %w", v, err)
	}
	return b, nil
}
