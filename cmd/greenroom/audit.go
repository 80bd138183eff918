package main

import (
	"cmp"
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
	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/settings"
)

// auditDataWidth bounds the DATA column of the text output.
const auditDataWidth = 100

type replayOptions struct {
	Since, Until string
	Subject      string
	RequestID    string
	JSON         bool
	// Events lists the events instead of the rebuild's summary.
	Events bool
}

func newAuditCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log (the GREENROOM JetStream stream)",
		Long: `Every request, decision, container step and configuration change is an
event in the GREENROOM stream (kept for what greenroom migrate set: 30 days
unless GREENROOM_STREAM_MAX_AGE says otherwise). The audit commands read it
back, through a consumer of their own: they never publish, never touch
Docker and never write to PostgreSQL.

  timeline   one request's, session's or user's events, in order
  replay     rebuild the sessions of a time range from the log, and count
             how requests were served (--events lists the events instead)
  verify     compare that rebuild with PostgreSQL, and the stored events
             with the checkpoints of the log's hash chain`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAuditReplayCommand(g), newAuditTimelineCommand(g), newAuditVerifyCommand(g))
	return cmd
}

func newAuditReplayCommand(g *globalOptions) *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay --since 10m|RFC3339 [--until ...] [--events [--subject greenroom.>] [--request-id ID]]",
		Short: "Rebuild the sessions of a time range from the log, and summarise it",
		Long: `Rebuild, in memory and from the GREENROOM stream alone, the requests and
sessions of the events from --since (a duration back from now, like 10m, 2h
or 3d, or an RFC 3339 time) up to --until (same forms; default: now), and
print a summary: requests and their outcomes, staged hits in the requested
zone and in alternate zones, on-demand sessions by reason, failures by
reason, violations by setting, destroyed sessions by cause, configuration
changes, and the sessions by the status the log leaves them in (--json: the
same as one JSON object). Nothing is published, no container is touched and
nothing is written: it reads through a consumer of its own and stops when it
has caught up with the stream.

--events prints the events instead, in stream order: time, stream sequence,
subject, event type, request id and data (shortened; with --json, one whole
JSON object per line); --subject narrows them to a NATS subject filter
(wildcards * and > work) and --request-id to one request's.`,
		Example: `  greenroom audit replay --since 1d
  greenroom audit replay --since 2025-11-24T06:00:00Z --until 2025-11-24T07:00:00Z --json
  greenroom audit replay --since 10m --events
  greenroom audit replay --since 1h --events --subject 'greenroom.session.*' --json
  greenroom audit replay --since 1d --events --request-id ticket-42`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.Events {
				if cmd.Flags().Changed("subject") || cmd.Flags().Changed("request-id") {
					return usagef("--subject and --request-id narrow --events; the rebuild reads every event (use audit timeline --request for one request)")
				}
				return runRebuildSummary(cmd.Context(), g, o, time.Now(), cmd.OutOrStdout(), progressTo(cmd))
			}
			return runReplay(cmd.Context(), g, o, time.Now(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Since, "since", "10m", "start: a duration back from now (10m, 2h, 3d) or an RFC 3339 time")
	f.StringVar(&o.Until, "until", "", "end: a duration back from now or an RFC 3339 time (default: now)")
	f.StringVar(&o.Subject, "subject", "greenroom.>", "NATS subject filter")
	f.StringVar(&o.RequestID, "request-id", "", "only events about this request")
	f.BoolVar(&o.JSON, "json", false, "print the summary as JSON (with --events: one JSON object per event, with the whole data)")
	f.BoolVar(&o.Events, "events", false, "list the events instead of rebuilding")
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
	r, err := timeRange(o.Since, o.Until, now)
	if err != nil {
		return err
	}
	if o.Subject == "" {
		o.Subject = "greenroom.>"
	}
	r.Subjects = []string{o.Subject}
	js, closeNC, err := g.openStream("greenroom-cli-audit")
	if err != nil {
		return err
	}
	defer closeNC()
	p := newAuditPrinter(out, o.JSON)
	_, err = audit.Read(ctx, js, r, func(rec audit.Record) error {
		e := newAuditEntry(rec.Subject, rec.Seq, rec.Time, rec.Header, rec.Payload)
		if o.RequestID != "" && e.RequestID != o.RequestID {
			return nil
		}
		return p.print(e)
	})
	p.flush()
	if errors.Is(err, audit.ErrNoStream) {
		return fmt.Errorf("%w (%s)", err, settings.Redact(g.NatsURL))
	}
	if err == nil && p.count == 0 && !o.JSON {
		until := r.Until
		if until.IsZero() {
			until = now
		}
		fmt.Fprintf(out, "(no events on %s between %s and %s)\n", o.Subject, r.Since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return err
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
	rid := cmp.Or(e.RequestID, "-")
	fmt.Fprintf(p.tw, "%s\t%d\t%s\t%s\t%s\t%s\n",
		e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.StreamSeq, e.Subject, e.Type, rid, shortData(e.Data, auditDataWidth))
	// Flush regularly so that a long replay streams instead of buffering.
	if p.count%256 == 0 {
		return p.tw.Flush()
	}
	return nil
}

func (p *auditPrinter) flush() {
	if p.tw != nil && p.count > 0 {
		_ = p.tw.Flush()
	}
}
