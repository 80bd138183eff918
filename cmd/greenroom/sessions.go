package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

type sessionsOptions struct {
	User, Status, StagingConfig, Origin string
	JSON                                bool
}

var sessionStatuses = []string{"provisioning", "staged", "assigning", "running", "destroying", "destroyed", "failed"}

func newSessionsCommand(g *globalOptions) *cobra.Command {
	var o sessionsOptions
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List sessions (staged ones have no user)",
		Long: `List sessions through the admin API (GET /api/v1/sessions). Staged sessions
that wait for a user show an empty USER; once assigned, the username appears.
ON-DEMAND REASON says why an on-demand session was not served staged
(no_staging_config, none_staged, permissions_differ:<field>,
incompatible:<setting>, server_pool); --json has it as on_demand_reason.
Needs the admin token (GREENROOM_ADMIN_TOKEN, --admin-token, or the
.run/admin-token file written by make up).`,
		Example: `  greenroom sessions
  greenroom sessions --status staged
  greenroom sessions --user alice --json
  greenroom sessions --staging-config zone-a/demo`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			q, err := o.query(cmd.Context(), api)
			if err != nil {
				return err
			}
			return showList(cmd.Context(), api, "/api/v1/sessions", q, o.JSON, cmd.OutOrStdout(), func(items []apiSession) {
				printSessions(cmd.OutOrStdout(), items, time.Now())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.User, "user", "", "only sessions of this username")
	f.StringVar(&o.Status, "status", "", "only sessions in this status: "+strings.Join(sessionStatuses, ", "))
	f.StringVar(&o.StagingConfig, "staging-config", "", "only sessions of this staging config: its id, or ZONE/WORKSPACE")
	f.StringVar(&o.Origin, "origin", "", "only staged or only on_demand sessions")
	f.BoolVar(&o.JSON, "json", false, "print the API's JSON answer")
	return cmd
}

// query builds the list filters, resolving a ZONE/WORKSPACE staging config
// to its id.
func (o sessionsOptions) query(ctx context.Context, api *apiClient) (url.Values, error) {
	q := url.Values{}
	if o.User != "" {
		q.Set("user", o.User)
	}
	if o.Status != "" {
		if !contains(sessionStatuses, o.Status) {
			return nil, usagef("--status %q is not one of %s", o.Status, strings.Join(sessionStatuses, ", "))
		}
		q.Set("status", o.Status)
	}
	if o.Origin != "" {
		if o.Origin != "staged" && o.Origin != "on_demand" {
			return nil, usagef("--origin %q is not staged or on_demand", o.Origin)
		}
		q.Set("origin", o.Origin)
	}
	if sc := o.StagingConfig; sc != "" {
		if _, err := uuid.Parse(sc); err != nil {
			zone, workspace, ok := strings.Cut(sc, "/")
			if !ok || zone == "" || workspace == "" {
				return nil, usagef("--staging-config %q is neither an id nor ZONE/WORKSPACE", sc)
			}
			found, err := api.findStagingConfig(ctx, zone, workspace)
			if err != nil {
				return nil, err
			}
			sc = found.ID
		}
		q.Set("staging_config", sc)
	}
	return q, nil
}

func printSessions(out io.Writer, items []apiSession, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tWORKSPACE\tZONE\tSTATUS\tORIGIN\tON-DEMAND REASON\tAGENT/SERVER\tURL\tAGE")
	for _, s := range items {
		host := deref(s.Agent)
		if s.Server != nil {
			host = "server " + *s.Server
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			s.ID, deref(s.User), s.Workspace, s.Zone, s.Status, s.Origin, deref(s.OnDemandReason), host, s.URL, age(now.Sub(s.CreatedAt)))
	}
	_ = tw.Flush()
	if len(items) == 0 {
		fmt.Fprintln(out, "(no sessions)")
	}
}

// age renders a duration as kubectl does: the largest unit or two.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// showList GETs every page of the list at path (see apiClient.list) and
// shows its items: with asJSON as one answer {"items": [...]} with the
// items as the API gave them, indented; else decoded, through table.
func showList[T any](ctx context.Context, api *apiClient, path string, query url.Values, asJSON bool, w io.Writer, table func([]T)) error {
	var raw []json.RawMessage
	var items []T
	err := api.list(ctx, path, query, func(page json.RawMessage) error {
		var pageRaw []json.RawMessage
		if err := json.Unmarshal(page, &pageRaw); err != nil {
			return err
		}
		raw = append(raw, pageRaw...)
		if asJSON {
			return nil
		}
		var pageItems []T
		err := json.Unmarshal(page, &pageItems)
		items = append(items, pageItems...)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		if raw == nil {
			raw = []json.RawMessage{}
		}
		all, err := json.Marshal(map[string]any{"items": raw})
		if err != nil {
			return err
		}
		return writeIndentedJSON(w, all)
	}
	table(items)
	return nil
}

func writeIndentedJSON(out io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decoding the API answer: %w", err)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
