package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// newHookClient is the HTTP client of assign hooks. A staged container
// is handed over once, so the connection its hand-off uses is opened when
// it is staged (warmAssignHook) and kept alive until then, however long
// the container waits: opening it is a dial through the agent's published
// port (its docker-proxy dialling the container in turn) and the first
// accept of a process that has served nothing yet, work that the
// hand-off need not wait for. An idle connection costs a file descriptor
// on each side; the container's exit closes it, and so does a server of
// the image that closes idle connections (many do, after seconds to a
// minute: the hand-off then opens one, and the metric says so). No proxy
// from the environment: the container is reached directly.
func newHookClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // one per staged container, however many
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     0, // as long as the container waits
			DisableCompression:  true,
		},
		// A hook answers; it does not send the provisioner elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// callAssignHook POSTs the assignment to the container's assign hook with
// the container's own secret, and returns how long it took and the first
// bytes of its answer, or why the assignment failed: a transport error, a
// timeout or any answer but 2xx is assign_failed — unless the container
// is gone, which is container_gone as for the exec. The secret goes in
// the Authorization header only; it is never logged, and no failure
// detail quotes the request.
func (p *Provisioner) callAssignHook(ctx context.Context, sc SessionContext, hook containerconfig.AssignHook,
	execCfg domain.ExecConfig, t domain.Tokens) (time.Duration, string, *Failure) {
	body := containerconfig.AssignRequest{SessionID: sc.Session.ID, User: t.Username, UserID: t.UserID,
		Permissions: sc.Session.PermissionsJSON}
	if execCfg.Assign != nil {
		body.Environment = execCfg.Assign.Render(t, nil).Environment
	}
	if !sc.Session.HostPort.Valid {
		return 0, "", ptrTo(assignFailed("the staged session has no published port"))
	}
	host, err := sc.Agent.Address()
	if err != nil {
		return 0, "", ptrTo(assignFailed(err.Error()))
	}
	url := domain.ContainerURL(host, int(sc.Session.HostPort.Int64), hook.Path)

	hctx, cancel := context.WithTimeout(ctx, min(hook.Timeout, p.cfg.AssignTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodPost, url, bytes.NewReader(body.JSON()))
	if err != nil {
		return 0, "", ptrTo(assignFailed(fmt.Sprintf("assign hook %s: %v", url, err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+sc.Session.AssignSecret.Reveal())
	// A hook is idempotent (a redelivered session.assigned calls it again):
	// saying so lets the client send it again on a fresh connection when
	// the kept-alive one turns out closed by the container as it is used.
	req.Header.Set("Idempotency-Key", sc.Session.ID)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			p.metrics.AssignHookConnections.WithLabelValues(strconv.FormatBool(info.Reused)).Inc()
		},
	}))
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
		return took, string(answer), nil
	}
	if seen, gone := p.containerState(ctx, sc); gone {
		return took, "", &Failure{Reason: events.ReasonContainerGone, Observed: seen,
			Detail: fmt.Sprintf("container %s of the assigning session on agent %s: %s; its assign hook could not answer",
				domain.ShortID(sc.Session.ContainerID), sc.Agent.Name, seen)}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(hctx.Err(), context.DeadlineExceeded):
		return took, "", ptrTo(assignFailed(fmt.Sprintf("assign hook POST %s did not answer within %s", url, min(hook.Timeout, p.cfg.AssignTimeout))))
	case err != nil:
		return took, "", ptrTo(assignFailed(fmt.Sprintf("assign hook POST %s: %v", url, err)))
	}
	return took, "", ptrTo(assignFailed(fmt.Sprintf("assign hook POST %s answered %d: %s", url, status, trimOutput(string(answer)))))
}

// warmAssignHook opens, for a staged container whose workspace has an
// assign hook, the connection its hand-off will use: one GET of its
// readiness path (which the probe has just shown to answer, and which is
// there to be probed) through the hooks' client, whose answer is read to
// the end so the connection stays alive in the client's pool. A workspace
// without a readiness path is not warmed: its hand-off opens the
// connection. A failure only costs the hand-off that dial.
func (p *Provisioner) warmAssignHook(ctx context.Context, ws Workspace, host string, hostPort int) {
	if ws.ReadinessPath == "" || len(ws.AssignHook) == 0 || containerconfig.CheckReadinessPath(ws.ReadinessPath) != "" {
		return
	}
	// The probe has just had an answer: a slow one is not worth holding
	// the session back from being staged.
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	url := domain.ContainerURL(host, hostPort, ws.ReadinessPath)
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := p.hooks.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// containerState says whether the session's container is gone (missing,
// or no longer running) and what was seen; an engine that does not answer
// says nothing.
func (p *Provisioner) containerState(ctx context.Context, sc SessionContext) (string, bool) {
	eng, err := p.engines.For(sc.Agent.DockerEndpoint)
	if err != nil {
		return "", false
	}
	seen, gone, _ := judgeContainerOf(ctx, eng, sc.Session.ContainerID) // not answering: not gone
	return seen, gone
}

func ptrTo[T any](v T) *T { return &v }
