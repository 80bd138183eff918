package command

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// provisionOnServer gives a session of a workspace with a server pool to
// one of the pool's servers (rule 8): no container, only an assignment.
// Every enabled server of the pool in the candidate zones is checked with
// a TCP connect first, all at once and bounded by the prober's attempt
// timeout, outside any transaction; PlaceOnServer then picks, under
// locks, the reachable server with the fewest sessions and moves the
// session to running (session.ready), or fails it with the reason.
func (p *Provisioner) provisionOnServer(ctx context.Context, req events.ProvisionRequested, search domain.ZoneSearch,
	targets []ServerTarget, log *zap.Logger) error {
	checked := p.reach(ctx, targets)
	sc, failure, err := p.store.PlaceOnServer(ctx, req.SessionID, search, checked)
	if errors.Is(err, ErrNotProvisioning) {
		log.Debug("session no longer provisioning; nothing to do", zap.String("status", string(sc.Session.Status)))
		return nil
	}
	if err != nil {
		return fmt.Errorf("assigning session %s to a server: %w", req.SessionID, err)
	}
	if failure != nil {
		p.placementFailed(sc, *failure, log)
		return nil
	}
	log.Info("session assigned to a server", zap.String("server", sc.Server), zap.String("zone", sc.Zone),
		zap.String("workspace", sc.Workspace.Name), zap.String("url", sc.Session.URL))
	return nil
}

// reach checks every target at once and maps its id to why it could not
// be reached, "" when it could.
func (p *Provisioner) reach(ctx context.Context, targets []ServerTarget) map[string]string {
	checked := make(map[string]string, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			why := ""
			addr, err := domain.ServerDialAddress(t.Address)
			if err == nil {
				err = p.prober.Reach(ctx, addr)
			}
			if err != nil {
				why = err.Error()
			}
			mu.Lock()
			checked[t.ID] = why
			mu.Unlock()
		})
	}
	wg.Wait()
	return checked
}
