package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/client"
)

// natsConnectTimeout bounds the initial connection to NATS.
const natsConnectTimeout = 5 * time.Second

type requestOptions struct {
	User, Workspace, Zone, RequestID string
	Timeout                          time.Duration
	JSON                             bool
}

// requestResult is what `greenroom request` reports, in text or JSON.
type requestResult struct {
	Status      string  `json:"status"` // ready, failed or timeout
	RequestID   string  `json:"request_id"`
	SessionID   string  `json:"session_id,omitempty"`
	User        string  `json:"user,omitempty"`
	Workspace   string  `json:"workspace,omitempty"`
	Zone        string  `json:"zone,omitempty"`
	Agent       string  `json:"agent,omitempty"`
	ContainerID string  `json:"container_id,omitempty"`
	URL         string  `json:"url,omitempty"`
	Origin      string  `json:"origin,omitempty"`
	Reason      string  `json:"reason,omitempty"`
	Detail      string  `json:"detail,omitempty"`
	ElapsedMS   float64 `json:"elapsed_ms"`
}

func newRequestCommand(g *globalOptions) *cobra.Command {
	var o requestOptions
	cmd := &cobra.Command{
		Use:   "request --user NAME --workspace NAME --zone NAME",
		Short: "Request a session over NATS and wait until it is ready",
		Long: `Request a session the way an internal service does: publish
greenroom.session.requested to JetStream (Nats-Msg-Id = request id) and wait
for greenroom.session.ready or greenroom.session.failed carrying that request
id. Prints the session id, whether it came from the staged pool or was made
on demand, its URL, and the time from publishing the request to receiving
"ready", in milliseconds.

Requests are idempotent: repeating a --request-id returns the same session.
Exit status: 0 when the session is ready, 1 when the request failed (the
reason is printed) or no outcome came within --timeout, 2 on bad usage.`,
		Example: `  greenroom request --user alice --workspace demo --zone zone-a
  greenroom request --user bob --workspace demo --zone zone-b --request-id ticket-42 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return runRequest(cmd.Context(), g, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.User, "user", "", "username the session is for (required)")
	f.StringVar(&o.Workspace, "workspace", "", "workspace name (required)")
	f.StringVar(&o.Zone, "zone", "", "zone searched first (required)")
	f.StringVar(&o.RequestID, "request-id", "", "idempotency key (default: a new UUID)")
	f.DurationVar(&o.Timeout, "timeout", 60*time.Second, "how long to wait for the outcome")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return cmd
}

func (o requestOptions) validate() error {
	for _, r := range []struct{ flag, v string }{{"user", o.User}, {"workspace", o.Workspace}, {"zone", o.Zone}} {
		if r.v == "" {
			return usagef("--%s is required", r.flag)
		}
	}
	if len(o.RequestID) > 200 {
		return usagef("--request-id is longer than 200 characters")
	}
	if o.Timeout <= 0 {
		return usagef("--timeout must be positive, got %s", o.Timeout)
	}
	return nil
}

func runRequest(ctx context.Context, g *globalOptions, o requestOptions, out io.Writer) error {
	nc, err := g.connectNATS(nats.Name("greenroom-cli"), nats.Timeout(natsConnectTimeout))
	if err != nil {
		if errors.As(err, new(usageError)) {
			return err
		}
		return fmt.Errorf("%w (is nats-server running? scripts/ensure-nats.sh starts one)", err)
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithSource("greenroom/cli"))
	if err != nil {
		return err
	}
	defer c.Close()

	if o.RequestID == "" {
		o.RequestID = uuid.NewString()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	started := time.Now()
	s, err := c.Request(ctx, client.Request{RequestID: o.RequestID, User: o.User, Workspace: o.Workspace, Zone: o.Zone})
	res := requestResult{RequestID: o.RequestID, ElapsedMS: millis(time.Since(started))}

	var failed *client.FailedError
	switch {
	case err == nil:
		res.Status = "ready"
		res.SessionID, res.User, res.Workspace, res.Zone = s.SessionID, s.User, s.Workspace, s.Zone
		res.Agent, res.ContainerID, res.URL, res.Origin = s.Agent, s.ContainerID, s.URL, s.Origin
	case errors.As(err, &failed):
		res.Status, res.Reason, res.Detail = "failed", failed.Reason, failed.Detail
		err = fmt.Errorf("request %s failed: %s: %s", o.RequestID, failed.Reason, failed.Detail)
	case errors.Is(err, context.DeadlineExceeded):
		res.Status, res.Reason = "timeout", "timeout"
		res.Detail = fmt.Sprintf("no outcome within %s", o.Timeout)
		err = fmt.Errorf("request %s: no outcome within %s; is the assigner running? The request stays in the stream: "+
			"repeat it with --request-id %s to keep waiting", o.RequestID, o.Timeout, o.RequestID)
	default:
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(res); werr != nil {
			return werr
		}
	} else if res.Status == "ready" {
		printRequestResult(out, res)
	}
	return err
}

func printRequestResult(out io.Writer, r requestResult) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "session\t%s\n", r.SessionID)
	fmt.Fprintf(tw, "origin\t%s\n", r.Origin)
	fmt.Fprintf(tw, "url\t%s\n", r.URL)
	fmt.Fprintf(tw, "user\t%s\n", r.User)
	fmt.Fprintf(tw, "workspace\t%s\n", r.Workspace)
	fmt.Fprintf(tw, "zone\t%s\n", r.Zone)
	fmt.Fprintf(tw, "agent\t%s\n", r.Agent)
	fmt.Fprintf(tw, "container\t%s\n", shortID(r.ContainerID))
	fmt.Fprintf(tw, "request\t%s\n", r.RequestID)
	fmt.Fprintf(tw, "elapsed\t%.1f ms (request published → session ready)\n", r.ElapsedMS)
	_ = tw.Flush()
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())) / 1000
}

// shortID abbreviates a Docker container id as docker ps does.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
