package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
)

// openStream connects to NATS for an audit command; close closes it.
func (g *globalOptions) openStream(name string) (jetstream.JetStream, func(), error) {
	nc, err := g.connectNATS(nats.Name(name), nats.Timeout(natsConnectTimeout))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// rebuild reads r into a new state, reporting progress on progress (nil:
// none) every so many events.
func rebuild(ctx context.Context, js jetstream.JetStream, r audit.Range, progress io.Writer) (*audit.State, jetstream.StreamState, error) {
	st := audit.NewState()
	start := time.Now()
	n := 0
	state, err := audit.Read(ctx, js, r, func(rec audit.Record) error {
		st.Apply(rec)
		n++
		reportProgress(progress, n, rec.Seq, start)
		return nil
	})
	return st, state, err
}

// reportProgress says on progress (nil: nowhere) how far a long read is,
// every 100,000 events.
func reportProgress(progress io.Writer, n int, seq uint64, start time.Time) {
	if progress != nil && n%100000 == 0 {
		fmt.Fprintf(progress, "… %d events read (seq %d, %s)\n", n, seq, time.Since(start).Round(time.Millisecond))
	}
}

// progressTo is where long reads report progress: standard error when it
// is a terminal, so that a redirected output stays clean.
func progressTo(cmd *cobra.Command) io.Writer {
	if f, ok := cmd.ErrOrStderr().(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return f
		}
	}
	return nil
}

func runRebuildSummary(ctx context.Context, g *globalOptions, o replayOptions, now time.Time, out, progress io.Writer) error {
	r, err := timeRange(o.Since, o.Until, now)
	if err != nil {
		return err
	}
	js, closeNC, err := g.openStream("greenroom-cli-audit-replay")
	if err != nil {
		return err
	}
	defer closeNC()
	start := time.Now()
	st, _, err := rebuild(ctx, js, r, progress)
	if err != nil {
		return err
	}
	sm := st.Summary()
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(sm)
	}
	printSummary(out, sm, r, time.Since(start))
	return nil
}

// timeRange reads --since and --until.
func timeRange(sinceFlag, untilFlag string, now time.Time) (audit.Range, error) {
	since, err := parseTimeFlag("since", sinceFlag, now)
	if err != nil {
		return audit.Range{}, err
	}
	// Without --until the read goes to the last event stored when it
	// began, whatever this machine's clock says.
	if untilFlag == "" {
		if !now.After(since) {
			return audit.Range{}, usagef("--since (%s) is not in the past", since.Format(time.RFC3339))
		}
		return audit.Range{Since: since}, nil
	}
	until, err := parseTimeFlag("until", untilFlag, now)
	if err != nil {
		return audit.Range{}, err
	}
	if !until.After(since) {
		return audit.Range{}, usagef("--until (%s) is not after --since (%s)", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	return audit.Range{Since: since, Until: until}, nil
}

func printSummary(out io.Writer, sm audit.Summary, r audit.Range, took time.Duration) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer func() { _ = tw.Flush() }()
	if sm.Events == 0 {
		fmt.Fprintf(tw, "no events since %s\n", r.Since.Format(time.RFC3339))
		return
	}
	fmt.Fprintf(tw, "events\t%d\t(seq %d–%d, %s – %s, rebuilt in %s)\n", sm.Events, sm.FirstSeq, sm.LastSeq,
		sm.First.UTC().Format(time.RFC3339), sm.Last.UTC().Format(time.RFC3339), took.Round(time.Millisecond))
	fmt.Fprintf(tw, "requests\t%d\t(ready %d, failed %d, no outcome yet %d)\n", sm.Requests, sm.Ready, sm.Failed, sm.Pending)
	fmt.Fprintf(tw, "staged, requested zone\t%d\n", sm.StagedHere)
	fmt.Fprintf(tw, "staged, alternate zone\t%d\n", sm.StagedAlternate)
	fmt.Fprintf(tw, "on demand\t%d\n", sm.OnDemand)
	counts := func(title string, m map[string]int) {
		for _, k := range audit.SortedKeys(m) {
			fmt.Fprintf(tw, "  %s %s\t%d\n", title, k, m[k])
		}
	}
	counts("on demand:", sm.OnDemandByReason)
	fmt.Fprintf(tw, "failed\t%d\n", sm.Failed)
	counts("failed:", sm.FailedByReason)
	fmt.Fprintf(tw, "violations\t%d\n", sum(sm.ViolationsBySetting))
	counts("violation:", sm.ViolationsBySetting)
	fmt.Fprintf(tw, "destroyed\t%d\n", sum(sm.DestroyedByCause))
	counts("destroyed:", sm.DestroyedByCause)
	fmt.Fprintf(tw, "configuration changes\t%d\n", sum(sm.ConfigChanges))
	counts("", sm.ConfigChanges)
	fmt.Fprintf(tw, "agents added\t%d\n", sm.AgentsAdded)
	fmt.Fprintf(tw, "agents deleted\t%d\n", sm.AgentsDeleted)
	fmt.Fprintf(tw, "sessions\t%d\n", sm.Sessions)
	counts("now", sm.SessionsByStatus)
	if sm.Undecodable > 0 {
		fmt.Fprintf(tw, "undecodable events\t%d\n", sm.Undecodable)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type timelineOptions struct {
	audit.Selector
	Since, Until string
	JSON         bool
}

func newAuditTimelineCommand(g *globalOptions) *cobra.Command {
	var o timelineOptions
	cmd := &cobra.Command{
		Use:   "timeline --request ID | --session ID | --user NAME [--since 30d] [--json]",
		Short: "One request's, session's or user's events, in order",
		Long: `Print the chain of events of one request (--request), one session
(--session) or every request and session of a user (--user): the request,
the decision (a staged session claimed, in which zone and at which step of
the zone search, or on demand and why), the container's steps (created,
staged, the assign hook or exec and its result, ready), and its end
(expired, destroyed and why), with each event's time and stream sequence.
A request brings the events of its session from before it was claimed (the
staged container's creation); a session brings its request's.

It reads the log from --since (default: 30 days back) twice: once to find
the sessions and requests concerned, once to print their events.`,
		Example: `  greenroom audit timeline --request ticket-42
  greenroom audit timeline --session 0193a1b2-… --json
  greenroom audit timeline --user alice --since 7d`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, v := range []string{o.RequestID, o.SessionID, o.User} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				return usagef("give exactly one of --request, --session and --user")
			}
			return runTimeline(cmd.Context(), g, o, time.Now(), cmd.OutOrStdout(), progressTo(cmd))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RequestID, "request", "", "a request_id")
	f.StringVar(&o.SessionID, "session", "", "a session id")
	f.StringVar(&o.User, "user", "", "a username")
	f.StringVar(&o.Since, "since", "30d", "start: a duration back from now (10m, 2h, 3d) or an RFC 3339 time")
	f.StringVar(&o.Until, "until", "", "end: a duration back from now or an RFC 3339 time (default: now)")
	f.BoolVar(&o.JSON, "json", false, "print the events as a JSON array, with their whole data")
	return cmd
}

func runTimeline(ctx context.Context, g *globalOptions, o timelineOptions, now time.Time, out, progress io.Writer) error {
	r, err := timeRange(o.Since, o.Until, now)
	if err != nil {
		return err
	}
	js, closeNC, err := g.openStream("greenroom-cli-audit-timeline")
	if err != nil {
		return err
	}
	defer closeNC()
	st, state, err := rebuild(ctx, js, r, progress)
	if err != nil {
		return err
	}
	rel := audit.Relate(st, o.Selector)
	// The second read ends where the first did, so both see the same log.
	r.UntilSeq = state.LastSeq
	var entries []audit.Entry
	if len(rel.Requests)+len(rel.Sessions) > 0 {
		if _, err := audit.Read(ctx, js, r, func(rec audit.Record) error {
			if e, ok := rel.Entry(rec); ok {
				entries = append(entries, e)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if o.JSON {
		if entries == nil {
			entries = []audit.Entry{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(out, "no events about %s since %s\n", describeSelector(o.Selector), r.Since.Format(time.RFC3339))
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSEQ\tEVENT\tSESSION\tREQUEST\tWHAT")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02T15:04:05.000Z"), e.Seq,
			strings.TrimPrefix(e.Type, "greenroom."), short(e.SessionID, 8), cmp.Or(e.RequestID, "-"), e.What)
	}
	return tw.Flush()
}

func describeSelector(s audit.Selector) string {
	switch {
	case s.RequestID != "":
		return "request " + s.RequestID
	case s.SessionID != "":
		return "session " + s.SessionID
	}
	return "user " + s.User
}

func short(s string, n int) string {
	if s == "" {
		return "-"
	}
	if len(s) > n {
		return s[:n]
	}
	return s
}

type verifyOptions struct {
	Since  string
	Settle time.Duration
	Lag    time.Duration
	JSON   bool
}

func newAuditVerifyCommand(g *globalOptions) *cobra.Command {
	var o verifyOptions
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "verify [--since 30d] [--settle 10s] [--lag 10m] [--json]",
		Short: "Check that the log, its checkpoints and PostgreSQL agree",
		Long: `Rebuild the sessions, requests and violations from the log (as audit
replay does) and compare them with PostgreSQL: every session the log names
must be in the database with the status, user, workspace, zone, agent,
container, origin and on-demand reason its events say, every session the
database created since the log's first event must be in the log, and the
same for violations. A difference that a service in the middle of its work
explains (an event committed but not yet published) is gone on a later
look: verify looks again for --settle and reports only the differences
found every time.

Then check the log's tamper evidence: every checkpoint the notary wrote
(PostgreSQL's audit_checkpoints, and their copies in the stream) must
continue the one before and hash to its chain, the stream must be the one
they were read from, with deletes and purges denied, and every stored event
must have the digest its checkpoint recorded. An event removed, altered or
inserted after it was checkpointed is named with its stream sequence;
events left unchecked for longer than --lag mean the notary is behind.

Exit status 0 when everything agrees, 1 when anything differs (each
difference on a line of its own, or --json) or the check could not be made.`,
		Example: `  greenroom audit verify
  greenroom audit verify --since 7d --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code, err := runVerify(cmd.Context(), g, o, wait, time.Now(), cmd.OutOrStdout(), progressTo(cmd))
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCodeError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Since, "since", "30d", "compare the sessions of the log from then on (the checkpoints are checked over the whole stream)")
	f.DurationVar(&o.Settle, "settle", 10*time.Second, "how long verify looks again before it reports a difference")
	f.DurationVar(&o.Lag, "lag", 10*time.Minute, "how long an event may stay unchecked before the notary is reported behind (0: never)")
	f.DurationVar(&wait, "wait", 0, "how long to wait for PostgreSQL to answer")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return cmd
}

// verifyResult is what verify prints with --json.
type verifyResult struct {
	Agree       bool              `json:"agree"`
	Events      int               `json:"events"`
	Sessions    int               `json:"sessions"`
	Differences []audit.Finding   `json:"differences"`
	Chain       audit.ChainReport `json:"chain"`
	TookMS      int64             `json:"took_ms"`
}

func runVerify(ctx context.Context, g *globalOptions, o verifyOptions, wait time.Duration, now time.Time, out, progress io.Writer) (int, error) {
	since, err := parseTimeFlag("since", o.Since, now)
	if err != nil {
		return 0, err
	}
	started := time.Now()
	conn, err := db.Open(ctx, g.DatabaseURL, wait)
	if err != nil {
		return 0, fmt.Errorf("%w (is PostgreSQL running? scripts/ensure-postgres.sh starts a local one)", err)
	}
	defer func() { _ = conn.Close() }()
	js, closeNC, err := g.openStream("greenroom-cli-audit-verify")
	if err != nil {
		return 0, err
	}
	defer closeNC()

	// The checkpoints first: every event they cover is then in the read
	// that follows, even if the notary writes one meanwhile.
	cps, err := audit.LoadCheckpoints(ctx, conn)
	if err != nil {
		return 0, err
	}
	// Read the whole stream once: the checkpoints cover all of it, and
	// the rebuild takes the events from --since.
	st := audit.NewState()
	chain := audit.NewChainChecker()
	n := 0
	state, err := audit.Read(ctx, js, audit.Range{}, func(rec audit.Record) error {
		chain.Add(rec)
		if !rec.Time.Before(since) {
			st.Apply(rec)
		}
		n++
		reportProgress(progress, n, rec.Seq, started)
		return nil
	})
	if err != nil {
		return 0, err
	}
	diffs, err := audit.Compare(ctx, conn, st)
	if err != nil {
		return 0, err
	}
	// What differs now may be work in progress: read on and look again,
	// keeping only what differs every time.
	last := state.LastSeq
	for deadline := time.Now().Add(o.Settle); len(diffs) > 0 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		s, err := audit.Read(ctx, js, audit.Range{FromSeq: last + 1}, func(rec audit.Record) error {
			st.Apply(rec)
			return nil
		})
		if err != nil {
			return 0, err
		}
		last = max(last, s.LastSeq)
		again, err := audit.Compare(ctx, conn, st)
		if err != nil {
			return 0, err
		}
		diffs = stillThere(diffs, again)
	}
	info, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return 0, err
	}
	cr := chain.Check(cps, audit.FactsOf(info.CachedInfo(), o.Lag))
	res := verifyResult{Events: st.Summary().Events, Sessions: len(st.Sessions), Differences: diffs, Chain: cr,
		TookMS: time.Since(started).Milliseconds()}
	if res.Differences == nil {
		res.Differences = []audit.Finding{}
	}
	if res.Chain.Findings == nil {
		res.Chain.Findings = []audit.Finding{}
	}
	res.Agree = len(diffs) == 0 && len(cr.Findings) == 0
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return 0, err
		}
	} else {
		fmt.Fprintf(out, "log: %d events since %s, %d sessions; checkpoints: %d covering %d events (%d not yet covered, %d past retention)\n",
			res.Events, since.UTC().Format(time.RFC3339), res.Sessions, cr.Checkpoints, cr.Covered, cr.Uncovered, cr.Expired)
		for _, d := range diffs {
			fmt.Fprintln(out, "differs:", d)
		}
		for _, f := range cr.Findings {
			fmt.Fprintln(out, "tampered:", f)
		}
		if res.Agree {
			fmt.Fprintf(out, "the log, its checkpoints and PostgreSQL agree (%s)\n", time.Since(started).Round(time.Millisecond))
		} else {
			fmt.Fprintf(out, "%d difference(s) with PostgreSQL, %d in the log's checkpoints\n", len(diffs), len(cr.Findings))
		}
	}
	if !res.Agree {
		return 1, nil
	}
	return 0, nil
}

// stillThere is what of before is also in now (the same kind and detail;
// its sequence may have moved on), as now has it.
func stillThere(before, now []audit.Finding) []audit.Finding {
	type key struct{ kind, detail string }
	was := map[key]bool{}
	for _, f := range before {
		was[key{f.Kind, f.Detail}] = true
	}
	var out []audit.Finding
	for _, f := range now {
		if was[key{f.Kind, f.Detail}] {
			out = append(out, f)
		}
	}
	return out
}
