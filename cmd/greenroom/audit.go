package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/settings"
)

// auditFetchBatch is how many events one fetch from the stream asks for.
const auditFetchBatch = 256

// auditDataWidth bounds the DATA column of the text output.
const auditDataWidth = 100

type replayOptions struct {
	Since, Until string
	Subject      string
	RequestID    string
	JSON         bool
}

func newAuditCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log (the GREENROOM JetStream stream)",
		Long: `Every request, decision and outcome is an event in the GREENROOM stream,
kept for 30 days by default. The audit commands read it back.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAuditReplayCommand(g))
	return cmd
}

func newAuditReplayCommand(g *globalOptions) *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay --since 10m|RFC3339 [--until ...] [--subject greenroom.>] [--request-id ID]",
		Short: "Print the events of a time range, in stream order",
		Long: `Print every event recorded in the GREENROOM stream from --since (a duration
back from now, like 10m, 2h or 3d, or an RFC 3339 time) up to --until (same
forms; default: now), in stream order: time, stream sequence, subject, event
type, request id, and the event data (shortened; --json prints it whole, one
JSON object per line). Stops when it has caught up with the stream.

--subject narrows to a NATS subject filter (wildcards * and > work);
--request-id keeps the events about one request, following it from
greenroom.session.requested to its outcome.`,
		Example: `  greenroom audit replay --since 10m
  greenroom audit replay --since 2025-11-24T06:00:00Z --until 2025-11-24T07:00:00Z
  greenroom audit replay --since 1h --subject 'greenroom.session.*' --json
  greenroom audit replay --since 1d --request-id ticket-42`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReplay(cmd.Context(), g, o, time.Now(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Since, "since", "10m", "start: a duration back from now (10m, 2h, 3d) or an RFC 3339 time")
	f.StringVar(&o.Until, "until", "", "end: a duration back from now or an RFC 3339 time (default: now)")
	f.StringVar(&o.Subject, "subject", "greenroom.>", "NATS subject filter")
	f.StringVar(&o.RequestID, "request-id", "", "only events about this request")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object per event, with the whole data")
	return cmd
}

// parseTimeFlag reads "10m", "36h", "3d" (that long before now) or an RFC
// 3339 time.
func parseTimeFlag(flag, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, usagef("--%s is empty", flag)
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := parseAgo(v)
	if err != nil {
		return time.Time{}, usagef("--%s %q is neither a duration (10m, 2h, 3d) nor an RFC 3339 time (2025-11-24T06:00:00Z)", flag, v)
	}
	return now.Add(-d), nil
}

// parseAgo is time.ParseDuration plus a whole-day suffix "d".
func parseAgo(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad day count %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", v)
	}
	return d, nil
}

// auditEntry is one replayed event.
type auditEntry struct {
	Time      time.Time       `json:"time"`
	StreamSeq uint64          `json:"stream_seq"`
	Subject   string          `json:"subject"`
	Type      string          `json:"type"`
	ID        string          `json:"id,omitempty"`
	Source    string          `json:"source,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// newAuditEntry reads a stored message. A payload that is not a CloudEvent
// is still shown (type "?"), since an auditor wants to see it.
func newAuditEntry(subject string, seq uint64, ts time.Time, headers nats.Header, payload []byte) auditEntry {
	e := auditEntry{Time: ts.UTC(), StreamSeq: seq, Subject: subject, Type: "?", RequestID: headers.Get(events.HeaderRequestID)}
	ev, err := events.Decode(payload)
	if err != nil {
		b, _ := json.Marshal(string(payload))
		e.Data = b
		return e
	}
	e.Type, e.ID, e.Source, e.Data = ev.Type, ev.ID, ev.Source, ev.Data
	if e.RequestID == "" {
		var d struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		e.RequestID = d.RequestID
	}
	return e
}

// shortData renders data on one line of at most width characters.
func shortData(data json.RawMessage, width int) string {
	var v any
	s := string(data)
	if json.Unmarshal(data, &v) == nil {
		if b, err := json.Marshal(v); err == nil { // compact, keys sorted
			s = string(b)
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > width {
		s = string(r[:width-1]) + "…"
	}
	return s
}

func runReplay(ctx context.Context, g *globalOptions, o replayOptions, now time.Time, out io.Writer) error {
	since, err := parseTimeFlag("since", o.Since, now)
	if err != nil {
		return err
	}
	until := now
	if o.Until != "" {
		if until, err = parseTimeFlag("until", o.Until, now); err != nil {
			return err
		}
	}
	if !until.After(since) {
		return usagef("--until (%s) is not after --since (%s)", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	if o.Subject == "" {
		o.Subject = "greenroom.>"
	}

	nc, err := g.connectNATS(nats.Name("greenroom-cli-audit"), nats.Timeout(natsConnectTimeout))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.Stream(ctx, bus.StreamName); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s does not exist yet: no Greenroom service has started on %s", bus.StreamName, settings.Redact(g.NatsURL))
		}
		return fmt.Errorf("reading stream %s: %w", bus.StreamName, err)
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.Subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return fmt.Errorf("reading stream %s from %s: %w", bus.StreamName, since.Format(time.RFC3339), err)
	}

	p := newAuditPrinter(out, o.JSON)
	err = replay(ctx, cons, o.RequestID, until, p)
	p.flush()
	if err == nil && p.count == 0 && !o.JSON {
		fmt.Fprintf(out, "(no events on %s between %s and %s)\n", o.Subject, since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return err
}

// replay prints the consumer's events about requestID (all when empty) up
// to until, and returns once it has caught up with the stream.
func replay(ctx context.Context, cons jetstream.Consumer, requestID string, until time.Time, p *auditPrinter) error {
	for {
		batch, err := cons.FetchNoWait(auditFetchBatch)
		if err != nil {
			return fmt.Errorf("fetching events: %w", err)
		}
		n, caughtUp := 0, false
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("reading event metadata: %w", err)
			}
			if md.Timestamp.After(until) {
				return nil
			}
			caughtUp = md.NumPending == 0
			e := newAuditEntry(msg.Subject(), md.Sequence.Stream, md.Timestamp, msg.Headers(), msg.Data())
			if requestID != "" && e.RequestID != requestID {
				continue
			}
			if err := p.print(e); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("fetching events: %w", err)
		}
		if n == 0 || caughtUp {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// auditPrinter writes entries as a table or as JSON lines.
type auditPrinter struct {
	json  bool
	enc   *json.Encoder
	tw    *tabwriter.Writer
	count int
}

func newAuditPrinter(out io.Writer, asJSON bool) *auditPrinter {
	if asJSON {
		return &auditPrinter{json: true, enc: json.NewEncoder(out)}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSEQ\tSUBJECT\tTYPE\tREQUEST_ID\tDATA")
	return &auditPrinter{tw: tw}
}

func (p *auditPrinter) print(e auditEntry) error {
	p.count++
	if p.json {
		return p.enc.Encode(e)
	}
	rid := e.RequestID
	if rid == "" {
		rid = "-"
	}
	fmt.Fprintf(p.tw, "%s\t%d\t%s\t%s\t%s\t%s\n",
		e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.StreamSeq, e.Subject, e.Type, rid, shortData(e.Data, auditDataWidth))
	// Flush regularly so that a long replay streams instead of buffering.
	if p.count%auditFetchBatch == 0 {
		return p.tw.Flush()
	}
	return nil
}

func (p *auditPrinter) flush() {
	if p.tw != nil && p.count > 0 {
		_ = p.tw.Flush()
	}
}
