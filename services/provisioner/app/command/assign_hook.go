package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// newHookClient is the HTTP client of assign hooks: connections to a
// container are kept alive between its sessions' hand-offs (a staged
// container is assigned once, but a replica assigns many containers of an
// agent, and the dial is most of a request on loopback). No proxy from the
// environment: the container is reached directly.
func newHookClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		// A hook answers; it does not send the provisioner elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// callAssignHook POSTs the assignment to the container's assign hook with
// the container's own secret, and returns how long it took, or why the
// assignment failed: a transport error, a timeout or any answer but 2xx is
// assign_failed — unless the container is gone, which is container_gone
// as for the exec. The secret goes in the Authorization header only; it
// is never logged, and no failure detail quotes the request.
func (p *Provisioner) callAssignHook(ctx context.Context, sc postgres.SessionContext, hook containerconfig.AssignHook,
	execCfg domain.ExecConfig, t domain.Tokens) (time.Duration, *postgres.Failure) {
	body := containerconfig.AssignRequest{SessionID: sc.Session.ID, User: t.Username, UserID: t.UserID,
		Permissions: sc.Session.PermissionsJSON}
	if execCfg.Assign != nil {
		body.Environment = execCfg.Assign.Render(t, nil).Environment
	}
	if !sc.Session.HostPort.Valid {
		return 0, ptrTo(assignFailed("the staged session has no published port"))
	}
	host := domain.SessionHost(sc.Agent.PublicHost, sc.Agent.DockerEndpoint)
	url := "http://" + net.JoinHostPort(host, strconv.FormatInt(sc.Session.HostPort.Int64, 10)) + hook.Path

	hctx, cancel := context.WithTimeout(ctx, min(hook.Timeout, p.cfg.AssignTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodPost, url, bytes.NewReader(body.JSON()))
	if err != nil {
		return 0, ptrTo(assignFailed(fmt.Sprintf("assign hook %s: %v", url, err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+sc.Session.AssignSecret.Reveal())
	start := p.now()
	resp, err := p.hooks.Do(req)
	var status int
	var answer []byte
	if err == nil {
		status = resp.StatusCode
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, failureOutputLimit))
		// Drain what is left so the connection is kept for the next one.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}
	took := p.now().Sub(start)
	p.metrics.AssignHookSeconds.Observe(took.Seconds())
	if err == nil && status >= 200 && status < 300 {
		return took, nil
	}
	if seen, gone := p.containerState(ctx, sc); gone {
		return took, &postgres.Failure{Reason: events.ReasonContainerGone, Observed: seen,
			Detail: fmt.Sprintf("container %s of the assigning session on agent %s: %s; its assign hook could not answer",
				docker.ShortID(sc.Session.ContainerID), sc.Agent.Name, seen)}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(hctx.Err(), context.DeadlineExceeded):
		return took, ptrTo(assignFailed(fmt.Sprintf("assign hook POST %s did not answer within %s", url, min(hook.Timeout, p.cfg.AssignTimeout))))
	case err != nil:
		return took, ptrTo(assignFailed(fmt.Sprintf("assign hook POST %s: %v", url, err)))
	}
	return took, ptrTo(assignFailed(fmt.Sprintf("assign hook POST %s answered %d: %s", url, status, trimOutput(string(answer)))))
}

// containerState says whether the session's container is gone (missing,
// or no longer running) and what was seen; an engine that does not answer
// says nothing.
func (p *Provisioner) containerState(ctx context.Context, sc postgres.SessionContext) (string, bool) {
	eng, err := p.engines.For(sc.Agent.DockerEndpoint)
	if err != nil {
		return "", false
	}
	seen, gone, _ := judgeContainerOf(ctx, eng, sc.Session.ContainerID) // not answering: not gone
	return seen, gone
}

func ptrTo[T any](v T) *T { return &v }
