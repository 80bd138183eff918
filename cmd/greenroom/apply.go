package main

import (
	"context"
	"errors"
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

Apply plans every resource (and every deletion) before its first change:
a field that differs but cannot be changed, a pool's type while something
is in it, or a prune the API would refuse because sessions of a deleted
staging config still refer to a zone or agent it deletes (their workspace
stays) is refused with nothing changed, every such resource named.
--dry-run reports the same lines, or the same refusal, and changes nothing.
Otherwise apply stops at the first error from the API, naming the resource
and where the file gives it.`,
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
// It plans every change first (planApply) and makes none when the plan
// refuses something.
func applyResources(ctx context.Context, api *apiClient, rs []resource, o applyOptions, out, progress io.Writer) (applySummary, error) {
	sum := applySummary{DryRun: o.DryRun}
	plan, err := planApply(ctx, api, rs, o.Prune)
	if err != nil {
		return sum, err
	}
	for _, s := range plan.Steps {
		line, err := s.run(ctx, api, o.DryRun, &sum)
		if err != nil {
			return sum, fmt.Errorf("%s (%s): %w", s.R, s.R.Source, err)
		}
		fmt.Fprintln(out, line)
	}
	err = prune(ctx, api, plan.Prune, o, &sum, out, progress)
	return sum, err
}

// applyPlan is everything an apply will do, computed before its first
// change.
type applyPlan struct {
	// Steps are the files' resources in the order they are applied.
	Steps []applyStep
	// Prune lists the resources --prune deletes, in that order.
	Prune []pruneStep
}

// applyStep is what apply does with one resource of the files: create it
// (Have is nil), or change what Diff says.
type applyStep struct {
	R    resource
	Have map[string]any
	Diff fieldDiff
}

// pruneStep is one resource --prune deletes: of kind K, with key Key, as
// the API listed it.
type pruneStep struct {
	K   *kind
	Key string
	Obj map[string]any
}

func (p pruneStep) String() string { return p.K.Name + "/" + p.Key }

// planApply lists the existing resources of the kinds rs mention and
// decides, for every resource, whether it is created, changed (and how) or
// unchanged, and with prune what is deleted. A refusal — a field that
// differs but cannot be changed, a deletion the API would refuse — is an
// error naming every such resource, so that apply changes nothing rather
// than stopping halfway; a dry run reports the same error.
func planApply(ctx context.Context, api *apiClient, rs []resource, withPrune bool) (applyPlan, error) {
	var plan applyPlan
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
			return plan, fmt.Errorf("listing %s: %w", k.Plural, err)
		}
		existing[k] = map[string]map[string]any{}
		for _, obj := range k.configured(objs) {
			existing[k][k.keyOf(obj)] = obj
		}
	}

	var refusals []error
	for _, k := range kinds {
		for _, r := range rs {
			if r.Kind != k {
				continue
			}
			s := applyStep{R: r, Have: existing[k][r.key()]}
			if s.Have != nil {
				fs, err := fieldsOf(k)
				if err != nil {
					return plan, err
				}
				if s.Diff, err = diff(r, fs, s.Have); err == nil {
					err = changeRefused(r, s.Have, s.Diff)
				}
				if err != nil {
					refusals = append(refusals, fmt.Errorf("%s (%s): %w", r, r.Source, err))
					continue
				}
			}
			plan.Steps = append(plan.Steps, s)
		}
	}
	if withPrune {
		named := map[string]bool{}
		for _, r := range rs {
			named[r.String()] = true
		}
		for i := len(kinds) - 1; i >= 0; i-- {
			k := kinds[i]
			for _, key := range sortedKeys(existing[k]) {
				if p := (pruneStep{K: k, Key: key, Obj: existing[k][key]}); !named[p.String()] {
					plan.Prune = append(plan.Prune, p)
				}
			}
		}
		kept, err := pruneKeptSessions(ctx, api, plan.Prune)
		if err != nil {
			return plan, err
		}
		refusals = append(refusals, kept...)
	}
	if len(refusals) > 0 {
		return applyPlan{}, fmt.Errorf("nothing was changed: %w", errors.Join(refusals...))
	}
	return plan, nil
}

// changeRefused says why the API would refuse the change d of r, whose
// object is have, whatever else the files change (nil if it would not):
// a pool's type while agents, servers or workspaces are in it, or its
// server_assignment turned off while servers of it are assigned to users.
// Pools are applied before their members, so moving those in the same
// files comes too late.
func changeRefused(r resource, have map[string]any, d fieldDiff) error {
	if r.Kind.Name != "pool" {
		return nil
	}
	members, _ := have["members"].([]any)
	workspaces, _ := have["workspaces"].([]any)
	if slices.Contains(d.Changed, "type") && len(members)+len(workspaces) > 0 {
		return fmt.Errorf("%s: field type differs (%v, the API has %v) but the API refuses to change it while %d member(s) and %d workspace(s) are in the pool: move them first",
			r, r.Fields["type"], have["type"], len(members), len(workspaces))
	}
	if slices.Contains(d.Changed, "server_assignment") && r.Fields["server_assignment"] == false {
		assigned := 0
		for _, m := range members {
			if m, ok := m.(map[string]any); ok && m["assigned_user"] != nil {
				assigned++
			}
		}
		if assigned > 0 {
			return fmt.Errorf("%s: server_assignment cannot be turned off while %d server(s) of the pool are assigned to a user: set their assigned_user to null first",
				r, assigned)
		}
	}
	return nil
}

// pruneKeptSessions refuses the deletions of prune that the API would
// refuse because of the sessions of a staging config prune deletes: the
// API keeps a session, ended or not, as history until its workspace is
// deleted, and a zone or agent a session refers to cannot be deleted. When
// the workspace stays, its deleted staging configs' sessions keep their
// zone and agent.
func pruneKeptSessions(ctx context.Context, api *apiClient, prune []pruneStep) ([]error, error) {
	deleted := map[string]bool{} // kind/key
	for _, p := range prune {
		deleted[p.String()] = true
	}
	var refusals []error
	for _, p := range prune {
		if p.K.Name != "staging-config" {
			continue
		}
		ws, _ := p.Obj["workspace"].(string)
		if deleted["workspace/"+ws] {
			continue // its ended sessions go with the workspace
		}
		id, _ := p.Obj["id"].(string)
		var sessions []map[string]any
		listed := false
		for _, ref := range []string{"zone", "agent"} {
			if !slices.ContainsFunc(prune, func(q pruneStep) bool { return q.K.Name == ref }) {
				continue
			}
			if !listed {
				var err error
				if sessions, err = api.listObjects(ctx, "/api/v1/sessions", url.Values{"staging_config": {id}}); err != nil {
					return nil, fmt.Errorf("listing the sessions of %s: %w", p, err)
				}
				listed = true
			}
			counts := map[string]int{}
			for _, s := range sessions {
				if name, _ := s[ref].(string); deleted[ref+"/"+name] {
					counts[name]++
				}
			}
			for _, name := range sortedKeys(counts) {
				refusals = append(refusals, fmt.Errorf("--prune would delete %s/%s, which %d session(s) of %s refer to; "+
					"the API keeps them (ended ones too) until workspace/%s is deleted and would refuse (409): "+
					"have the files leave out workspace/%s as well, or keep %s/%s in them",
					ref, name, counts[name], p, ws, ws, ref, name))
			}
		}
	}
	return refusals, nil
}

// run makes the change of s (none in a dry run) and returns the line that
// reports it.
func (s applyStep) run(ctx context.Context, api *apiClient, dryRun bool, sum *applySummary) (string, error) {
	r := s.R
	dry := ""
	if dryRun {
		dry = " (dry run)"
	}
	if s.Have == nil {
		if !dryRun {
			if err := api.do(ctx, http.MethodPost, r.Kind.path(), nil, r.Fields, nil); err != nil {
				return "", err
			}
		}
		sum.Created++
		return r.String() + " created" + dry, nil
	}
	d := s.Diff
	if len(d.Patch) > 0 && !dryRun {
		if err := api.do(ctx, http.MethodPatch, r.Kind.itemPath(pathKey(r.Kind, s.Have)), nil, d.Patch, nil); err != nil {
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

// prune makes the deletions of steps. Before deleting the workspace or
// zone of a staging config it deleted, it waits for that config's staged
// sessions to go.
func prune(ctx context.Context, api *apiClient, steps []pruneStep, o applyOptions, sum *applySummary, out, progress io.Writer) error {
	suffix := ""
	if o.DryRun {
		suffix = " (dry run)"
	}
	var gone []map[string]any // staging configs deleted, whose staged sessions are waited for
	for _, p := range steps {
		if !o.DryRun {
			if err := waitStagedGone(ctx, api, gone, p.K, p.Key, o.WaitTimeout, progress); err != nil {
				return err
			}
			if err := api.do(ctx, http.MethodDelete, p.K.itemPath(pathKey(p.K, p.Obj)), nil, nil, nil); err != nil {
				return fmt.Errorf("deleting %s: %w", p, err)
			}
		}
		if p.K.Name == "staging-config" {
			gone = append(gone, p.Obj)
		}
		sum.Deleted++
		fmt.Fprintln(out, p.String()+" deleted"+suffix)
	}
	return nil
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

// waitStagedGone waits, before the workspace or zone k/name is deleted,
// until the staging configs in gone that are of it have no staged session
// left: one not ended (destroyed or failed) and not assigned to a user —
// the provisioner destroys them once it hears of the deletion —, showing
// progress on progress. Sessions already assigned to a user keep running;
// the deletion then says so. (An agent needs no wait: the sessions on it
// of a deleted workspace went with the workspace, deleted before it, and
// planApply refuses the prune when the workspace stays; a server hosts no
// staged sessions.)
func waitStagedGone(ctx context.Context, api *apiClient, gone []map[string]any, k *kind, name string, timeout time.Duration, progress io.Writer) error {
	if k.Name != "workspace" && k.Name != "zone" {
		return nil
	}
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

// stagedLeft counts the sessions of the staging configs ids that have not
// ended (the API's ended=false: neither destroyed nor
// failed) and have no user. Only sessions that have not ended are listed,
// not a staging config's whole history.
func stagedLeft(ctx context.Context, api *apiClient, ids []string) (int, error) {
	left := 0
	for _, id := range ids {
		sessions, err := api.listObjects(ctx, "/api/v1/sessions", url.Values{"staging_config": {id}, "ended": {"false"}})
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
