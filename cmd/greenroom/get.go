package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// getOutputs are the formats of `get -o`.
var getOutputs = []string{"table", "json", "yaml"}

func newGetCommand(g *globalOptions) *cobra.Command {
	output := "table"
	cmd := &cobra.Command{
		Use:   "get KIND|all [NAME...] [-o table|json|yaml]",
		Short: "Show configuration resources, as a table or as documents apply reads",
		Long: `Show configuration resources of one kind (or one of them by NAME), or of
every kind apply covers with 'all', through the admin API.

KIND is one of: ` + kindNames() + `
(singular or plural, e.g. zones); a staging config's NAME is ZONE/WORKSPACE or
its id.

-o table (the default) shows each resource's main fields, its state
included (sessions, free capacity, current sessions, status, last error).
-o yaml and -o json write the documents 'greenroom apply' reads — kind, then
the fields of the API's create body — so that the output applies cleanly
to another deployment: read-only fields (id, created_at, updated_at,
current_sessions, status, sessions, free_cores, revision, ...) are left out,
as are write-only ones (a user's password: not answered by the API), and a
$ that apply would read as a variable is written $$. yaml is a stream of
documents, json one array. 'get all' leaves out API keys (their secret is
shown only when a key is created); 'get api-keys' lists them.`,
		Example: `  greenroom get zones
  greenroom get staging-config zone-a/demo -o json
  greenroom get all -o yaml > greenroom.yaml
  greenroom get all -o yaml | greenroom apply -f - --api-url http://other:8080`,
		Args: kindArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(getOutputs, output) {
				return usagef("-o %q is not one of %s", output, strings.Join(getOutputs, ", "))
			}
			var ks []*kind
			if strings.EqualFold(args[0], "all") {
				if len(args) > 1 {
					return usagef("get all takes no names, got %q", args[1:])
				}
				for _, k := range kinds {
					if k.Applied {
						ks = append(ks, k)
					}
				}
			} else {
				k, ok := kindNamed(args[0])
				if !ok {
					return usagef("unknown kind %q (one of all, %s)", args[0], kindNames())
				}
				ks = []*kind{k}
			}
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			return getResources(cmd.Context(), api, ks, args[1:], output, len(ks) > 1, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", output, "table, json or yaml (the documents apply reads)")
	return cmd
}

// getResources shows the resources of ks (those called names, when any)
// in format output; all says that ks are every kind.
func getResources(ctx context.Context, api *apiClient, ks []*kind, names []string, output string, all bool, w io.Writer) error {
	var docs []document
	shown := 0
	for _, k := range ks {
		objs, err := fetchObjects(ctx, api, k, names)
		if err != nil {
			return err
		}
		if output == "table" {
			if all && len(objs) == 0 {
				continue
			}
			if shown > 0 {
				fmt.Fprintln(w)
			}
			printObjects(w, k, objs)
			shown++
			continue
		}
		for _, obj := range k.configured(objs) {
			d, err := documentOf(k, obj)
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
	}
	switch output {
	case "yaml":
		return writeYAML(w, docs)
	case "json":
		if docs == nil {
			docs = []document{}
		}
		return writeJSON(w, docs)
	}
	if shown == 0 {
		fmt.Fprintln(w, "(no configuration)")
	}
	return nil
}

// fetchObjects returns the resources of kind k sorted by key: all of
// them, or those called names (each must exist).
func fetchObjects(ctx context.Context, api *apiClient, k *kind, names []string) ([]map[string]any, error) {
	if len(names) > 0 && k.Name != "staging-config" {
		var out []map[string]any
		for _, name := range names {
			var obj map[string]any
			if err := api.do(ctx, http.MethodGet, k.itemPath(name), nil, nil, &obj); err != nil {
				return nil, fmt.Errorf("getting %s/%s: %w", k.Name, name, err)
			}
			out = append(out, obj)
		}
		return out, nil
	}
	objs, err := api.listObjects(ctx, k.path(), nil)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", k.Plural, err)
	}
	slices.SortFunc(objs, func(a, b map[string]any) int { return strings.Compare(k.keyOf(a), k.keyOf(b)) })
	if len(names) == 0 {
		return objs, nil
	}
	var out []map[string]any
	for _, name := range names {
		obj, err := findObject(objs, k, name)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// findObject returns the object of objs whose key or id is name.
func findObject(objs []map[string]any, k *kind, name string) (map[string]any, error) {
	for _, obj := range objs {
		if k.keyOf(obj) == name || obj["id"] == name {
			return obj, nil
		}
	}
	return nil, fmt.Errorf("no %s %s (a staging config is named ZONE/WORKSPACE or by its id)", k.Name, name)
}

// printObjects writes a table of objs of kind k: key, then k.Columns.
func printObjects(w io.Writer, k *kind, objs []map[string]any) {
	if len(objs) == 0 {
		fmt.Fprintf(w, "(no %s)\n", k.Plural)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{strings.ToUpper(k.Name)}
	for _, c := range k.Columns {
		header = append(header, strings.ToUpper(strings.ReplaceAll(c, "_", " ")))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, obj := range objs {
		row := []string{k.keyOf(obj)}
		for _, c := range k.Columns {
			row = append(row, cell(obj[c]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// cell renders a JSON value in a table: - for nothing, yes/no, lists
// comma-separated.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		if x == "" {
			return "-"
		}
		return strings.ReplaceAll(x, "\n", " ")
	case []any:
		if len(x) == 0 {
			return "-"
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// kindArg requires a KIND argument.
func kindArg(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usagef("%s needs a KIND (one of %s)", cmd.CommandPath(), kindNames())
	}
	return nil
}
