package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newPoolsCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pools [NAME]",
		Short: "List pools with their members and the sessions on them",
		Long: `List pools through the admin API (GET /api/v1/pools, or /api/v1/pools/NAME
for one): each pool's type, labels and server assignment, the workspaces
whose sessions run on its servers, and its members — the servers of a server
pool with their sessions out of max_sessions and their assigned user, or the
agents of a docker_agent pool with their sessions and free capacity. A
member's labels are its effective ones: its own and its pool's. Session
counts are the live sessions (not destroyed or failed) on each member.
Needs the admin token (GREENROOM_ADMIN_TOKEN, --admin-token, or the
.run/admin-token file written by make up).`,
		Example: `  greenroom pools
  greenroom pools desktops
  greenroom pools --json`,
		Args: atMostOnePool,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				var p apiPool
				return api.show(cmd.Context(), "/api/v1/pools/"+url.PathEscape(args[0]), nil, asJSON, out, &p, func() {
					printPools(out, []apiPool{p})
				})
			}
			return showList(cmd.Context(), api, "/api/v1/pools", nil, asJSON, out, func(items []apiPool) {
				printPools(out, items)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

func atMostOnePool(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usagef("%s takes at most one pool name, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// printPools writes a summary line per pool, then each pool's members.
func printPools(out io.Writer, pools []apiPool) {
	if len(pools) == 0 {
		fmt.Fprintln(out, "(no pools)")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tTYPE\tSERVER ASSIGNMENT\tLABELS\tMEMBERS\tSESSIONS\tWORKSPACES")
	for _, p := range pools {
		assignment := "-"
		if p.Type == "server" {
			assignment = yesNo(p.ServerAssignment)
		}
		sessions := 0
		for _, m := range p.Members {
			sessions += m.Sessions
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", p.Name, p.Type, assignment, commaList(p.Labels),
			len(p.Members), sessions, commaList(p.Workspaces))
	}
	_ = tw.Flush()
	for _, p := range pools {
		fmt.Fprintf(out, "\n%s (%s pool)\n", p.Name, p.Type)
		printMembers(out, p)
	}
}

// printMembers writes a pool's servers with their sessions out of their
// maximum, or its agents with their sessions and free capacity.
func printMembers(out io.Writer, p apiPool) {
	kind := "agents"
	if p.Type == "server" {
		kind = "servers"
	}
	if len(p.Members) == 0 {
		fmt.Fprintf(out, "  (no %s)\n", kind)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if kind == "servers" {
		fmt.Fprintln(tw, "  SERVER\tZONE\tADDRESS\tENABLED\tSESSIONS\tASSIGNED USER\tLABELS")
		for _, m := range p.Members {
			user := "-"
			if m.AssignedUser != nil {
				user = *m.AssignedUser
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", m.Name, m.Zone, m.Address, yesNo(m.Enabled),
				m.Sessions, m.MaxSessions, user, commaList(m.EffectiveLabels))
		}
	} else {
		fmt.Fprintln(tw, "  AGENT\tZONE\tENABLED\tSESSIONS\tFREE CORES\tFREE MEMORY (MiB)\tLABELS")
		for _, m := range p.Members {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%g/%g\t%d/%d\t%s\n", m.Name, m.Zone, yesNo(m.Enabled),
				m.Sessions, m.FreeCores, m.Cores, m.FreeMemoryMB, m.MemoryMB, commaList(m.EffectiveLabels))
		}
	}
	_ = tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// commaList joins names with commas, "-" when there are none.
func commaList(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}
