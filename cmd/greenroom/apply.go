package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// applyWaitTimeoutDefault bounds how long --prune waits for the staged
// sessions of a deleted staging config to be destroyed before it deletes
// their workspace or zone.
const applyWaitTimeoutDefault = 2 * time.Minute

type applyOptions struct {
	Files       []string
	DryRun      bool
	Prune       bool
	WaitTimeout time.Duration
}

func newApplyCommand(g *globalOptions, getenv func(string) string) *cobra.Command {
	o := applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE...] [--dry-run] [--prune]",
		Short: "Make the configuration what files say: create, change, optionally delete",
		Long: `Read configuration resources from YAML or JSON files (-f - reads stdin) and
make the admin API's configuration match them: a resource that is missing is
created, one whose fields differ is changed (PATCH with the fields that
differ), one that matches is left alone. Each resource is reported on its
own line as created, changed (naming the fields) or unchanged.

A file is a stream of YAML documents ('---' between them), each one
resource: its kind and the fields of the API's create body, references to
other resources by name. A document may also be a list of resources, so a
JSON array is a file too. 'greenroom get all -o yaml' writes this format.

  kind: zone
  name: zone-a
  allow_origin_domain: greenroom.localhost
  upstream_auth_address: 127.0.0.1:8080
  ---
  kind: staging-config        # no name: identified by zone and workspace
  zone: zone-a
  workspace: demo
  desired_sessions: 3

Kinds, in the order they are applied (a resource after those it names):
zone, pool, web-filter-policy, group, user, agent, server, workspace,
staging-config. API keys are not applied: a key's secret is shown only
when it is created.

A field the file leaves out is left as it is. Read-only fields (id,
created_at, current_sessions, status, ...) are refused. Write-only fields —
a user's password — cannot be compared: when the file gives one it is set
on every apply, and the line says so ("password set (write-only)") without
counting it as a change.

Variables: in string values ${NAME} is the environment variable NAME,
${NAME:-default} its value or default when unset or empty, ${NAME-default}
when unset, ${NAME:?message} an error when unset or empty, $$ a literal $
(docker-compose's syntax; a lone $ as in $request_host$ stays). An empty
variable counts as unset, and an unset ${NAME} without a default is an
error. An unquoted value is read as YAML
after substitution (desired_sessions: ${N} is a number): quote a password.

--prune then deletes the resources of the kinds the files mention that the
files do not name, in the reverse order; kinds the files do not mention are
left alone (an empty file prunes nothing). Before deleting the workspace or
zone of a staging config it deleted, it waits (showing progress on stderr,
at most --wait-timeout) until that config's staged sessions are destroyed.

--dry-run reports the same lines and changes nothing. Apply stops at the
first error, naming the resource and where the file gives it.`,
		Example: `  greenroom apply -f deploy/demo/greenroom.yaml
  greenroom apply -f config.yaml --dry-run
  greenroom apply -f config.yaml --prune
  greenroom get all -o yaml | greenroom apply -f - --api-url http://other:8080`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.Files) == 0 {
				return usagef("apply needs -f FILE (or -f - for stdin)")
			}
			if o.WaitTimeout <= 0 {
				return usagef("--wait-timeout must be positive")
			}
			// An empty variable counts as unset.
			lookup := func(name string) (string, bool) { v := getenv(name); return v, v != "" }
			var rs []resource
			for _, f := range o.Files {
				got, err := readFile(f, cmd.InOrStdin(), lookup)
				if err != nil {
					return err
				}
				rs = append(rs, got...)
			}
			if dup := duplicateResource(rs); dup != "" {
				return fmt.Errorf("%s", dup)
			}
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			sum, err := applyResources(cmd.Context(), api, rs, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			fmt.Fprintln(cmd.OutOrStdout(), sum)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Files, "filename", "f", nil, "file of resources, YAML or JSON; - is stdin (repeatable)")
	f.BoolVar(&o.DryRun, "dry-run", false, "report what would be created, changed and deleted, and change nothing")
	f.BoolVar(&o.Prune, "prune", false, "delete the resources of the kinds the files mention that they do not name")
	f.DurationVar(&o.WaitTimeout, "wait-timeout", applyWaitTimeoutDefault, "with --prune, how long to wait for a deleted staging config's staged sessions to go")
	return cmd
}

// readFile reads the resources of path, or of stdin for "-".
func readFile(path string, stdin io.Reader, lookup func(string) (string, bool)) ([]resource, error) {
	if path == "-" {
		return readResources(stdin, "stdin", lookup)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return readResources(f, path, lookup)
}

// duplicateResource describes a resource given twice across files ("" if
// none).
func duplicateResource(rs []resource) string {
	seen := map[string]string{}
	for _, r := range rs {
		if first, ok := seen[r.String()]; ok {
			return fmt.Sprintf("%s: %s is also at %s; give each resource once", r.Source, r, first)
		}
		seen[r.String()] = r.Source
	}
	return ""
}

// applySummary counts what apply did, or would do in a dry run.
type applySummary struct {
	Created, Changed, Unchanged, Deleted int
	DryRun                               bool
}

func (s applySummary) String() string {
	line := fmt.Sprintf("apply: %d created, %d changed, %d unchanged, %d deleted", s.Created, s.Changed, s.Unchanged, s.Deleted)
	if s.DryRun {
		line += " (dry run: nothing was changed)"
	}
	return line
}

// applyResources makes the API's configuration match rs (see `greenroom
// apply --help`), reporting each resource on out and waits on progress.
func applyResources(ctx context.Context, api *apiClient, rs []resource, o applyOptions, out, progress io.Writer) (applySummary, error) {
	sum := applySummary{DryRun: o.DryRun}
	mentioned := map[*kind]bool{}
	for _, r := range rs {
		mentioned[r.Kind] = true
	}
	existing := map[*kind]map[string]map[string]any{}
	for _, k := range kinds {
		if !mentioned[k] {
			continue
		}
		objs, err := api.listObjects(ctx, k.path(), nil)
		if err != nil {
			return sum, fmt.Errorf("listing %s: %w", k.Plural, err)
		}
		existing[k] = map[string]map[string]any{}
		for _, obj := range objs {
			existing[k][k.keyOf(obj)] = obj
		}
	}

	for _, k := range kinds {
		for _, r := range rs {
			if r.Kind != k {
				continue
			}
			line, err := applyOne(ctx, api, r, existing[k][r.key()], o.DryRun, &sum)
			if err != nil {
				return sum, fmt.Errorf("%s (%s): %w", r, r.Source, err)
			}
			fmt.Fprintln(out, line)
		}
	}
	if !o.Prune {
		return sum, nil
	}
	named := map[string]bool{}
	for _, r := range rs {
		named[r.String()] = true
	}
	err := prune(ctx, api, existing, named, o, &sum, out, progress)
	return sum, err
}

// prune deletes, in the reverse of the apply order, the resources of
// existing (the kinds the files mention) that are not named.
func prune(ctx context.Context, api *apiClient, existing map[*kind]map[string]map[string]any, named map[string]bool,
	o applyOptions, sum *applySummary, out, progress io.Writer) error {
	suffix := ""
	if o.DryRun {
		suffix = " (dry run)"
	}
	var gone []map[string]any // staging configs deleted, whose staged sessions are waited for
	for i := len(kinds) - 1; i >= 0; i-- {
		k := kinds[i]
		for _, key := range sortedKeys(existing[k]) {
			obj := existing[k][key]
			name := k.Name + "/" + key
			if named[name] {
				continue
			}
			if !o.DryRun {
				if k.Name == "workspace" || k.Name == "zone" {
					if err := waitStagedGone(ctx, api, gone, k, key, o.WaitTimeout, progress); err != nil {
						return err
					}
				}
				if err := api.do(ctx, http.MethodDelete, k.itemPath(pathKey(k, obj)), nil, nil, nil); err != nil {
					return fmt.Errorf("deleting %s: %w", name, err)
				}
			}
			if k.Name == "staging-config" {
				gone = append(gone, obj)
			}
			sum.Deleted++
			fmt.Fprintln(out, name+" deleted"+suffix)
		}
	}
	return nil
}

// applyOne creates r when have is nil, else changes what differs; it
// returns the line that reports it.
func applyOne(ctx context.Context, api *apiClient, r resource, have map[string]any, dryRun bool, sum *applySummary) (string, error) {
	fs, err := fieldsOf(r.Kind)
	if err != nil {
		return "", err
	}
	dry := ""
	if dryRun {
		dry = " (dry run)"
	}
	if have == nil {
		if !dryRun {
			if err := api.do(ctx, http.MethodPost, r.Kind.path(), nil, r.Fields, nil); err != nil {
				return "", err
			}
		}
		sum.Created++
		return r.String() + " created" + dry, nil
	}
	d, err := diff(r, fs, have)
	if err != nil {
		return "", err
	}
	if len(d.Patch) > 0 && !dryRun {
		if err := api.do(ctx, http.MethodPatch, r.Kind.itemPath(pathKey(r.Kind, have)), nil, d.Patch, nil); err != nil {
			return "", err
		}
	}
	line := r.String() + " unchanged" + dry
	if len(d.Changed) > 0 {
		line = r.String() + " changed" + dry + ": " + strings.Join(d.Changed, ", ")
		sum.Changed++
	} else {
		sum.Unchanged++
	}
	if len(d.WriteOnly) > 0 {
		set := " set"
		if dryRun {
			set = " would be set"
		}
		line += "; " + strings.Join(d.WriteOnly, ", ") + set + " (write-only: not compared)"
	}
	return line, nil
}

// pathKey is what the API's item path names a resource by: its name, or
// a staging config's id.
func pathKey(k *kind, obj map[string]any) string {
	if k.Name == "staging-config" {
		id, _ := obj["id"].(string)
		return id
	}
	s, _ := obj[k.Key[0]].(string)
	return s
}

// waitStagedGone waits until the staging configs in gone that are of the
// workspace or zone k/name have no staged session left that is not
// destroyed or failed — the provisioner destroys them once it hears of
// the deletion —, showing progress on progress. Sessions already assigned
// to a user keep running; the deletion then says so.
func waitStagedGone(ctx context.Context, api *apiClient, gone []map[string]any, k *kind, name string, timeout time.Duration, progress io.Writer) error {
	var ids []string
	for _, sc := range gone {
		if sc[k.Name] == name { // the staging config's zone or workspace
			id, _ := sc["id"].(string)
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	what := k.Name + "/" + name
	start := time.Now()
	deadline := start.Add(timeout)
	last, lastShown := -1, time.Time{}
	for {
		left, err := stagedLeft(ctx, api, ids)
		if err != nil {
			return fmt.Errorf("deleting %s: waiting for the staged sessions of its deleted staging config(s): %w", what, err)
		}
		if left == 0 {
			if last > 0 {
				fmt.Fprintf(progress, "%s: staged sessions destroyed after %s\n", what, time.Since(start).Round(time.Second))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deleting %s: %d staged session(s) of its deleted staging config(s) not destroyed after %s (is the provisioner running?)",
				what, left, timeout)
		}
		if left != last || time.Since(lastShown) >= 5*time.Second {
			fmt.Fprintf(progress, "%s: waiting for %d staged session(s) of its deleted staging config(s) to be destroyed (%s of at most %s)\n",
				what, left, time.Since(start).Round(time.Second), timeout)
			last, lastShown = left, time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stagedLeft counts the sessions of the staging configs ids that have no
// user and are not destroyed or failed.
func stagedLeft(ctx context.Context, api *apiClient, ids []string) (int, error) {
	left := 0
	for _, id := range ids {
		sessions, err := api.listObjects(ctx, "/api/v1/sessions", url.Values{"staging_config": {id}})
		if err != nil {
			return 0, err
		}
		for _, s := range sessions {
			if s["user"] == nil && s["status"] != "destroyed" && s["status"] != "failed" {
				left++
			}
		}
	}
	return left, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
