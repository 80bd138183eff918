package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newDeleteCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete KIND NAME...",
		Short: "Delete configuration resources by kind and name",
		Long: `Delete configuration resources through the admin API (DELETE
/api/v1/<kind>/<name>), each reported as deleted; the first failure stops
the command with the API's reason — for example a zone that agents, servers
or staging configs still name, or a workspace with live sessions (409).

KIND is one of: ` + kindNames() + `
(singular or plural); a staging config's NAME is ZONE/WORKSPACE or its id.
Deleting a staging config has the provisioner destroy its staged sessions;
sessions already assigned keep running.`,
		Example: `  greenroom delete user bob
  greenroom delete staging-config zone-a/demo
  greenroom delete api-key ci-runner`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("%s needs a KIND and at least one NAME", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, ok := kindNamed(args[0])
			if !ok {
				return usagef("unknown kind %q (one of %s)", args[0], kindNames())
			}
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			return deleteResources(cmd.Context(), api, k, args[1:], cmd.OutOrStdout())
		},
	}
	return cmd
}

// deleteResources deletes the resources of kind k called names, in order.
func deleteResources(ctx context.Context, api *apiClient, k *kind, names []string, w io.Writer) error {
	for _, name := range names {
		id := name
		if k.Name == "staging-config" {
			objs, err := fetchObjects(ctx, api, k, []string{name})
			if err != nil {
				return err
			}
			id = pathKey(k, objs[0])
			name = k.keyOf(objs[0])
		}
		if err := api.do(ctx, http.MethodDelete, k.itemPath(id), nil, nil, nil); err != nil {
			return fmt.Errorf("deleting %s/%s: %w", k.Name, name, err)
		}
		fmt.Fprintf(w, "%s/%s deleted\n", k.Name, strings.TrimSpace(name))
	}
	return nil
}
