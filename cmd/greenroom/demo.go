package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// Demo configuration defaults; see `greenroom demo load --help`.
const (
	demoImageDefault          = "greenroom/demo-workspace:latest"
	demoDockerEndpointDefault = "unix:///var/run/docker.sock"
	demoDomainDefault         = "greenroom.localhost"
	demoStagedDefault         = 3
	demoZone                  = "zone-a"
	demoWorkspace             = "demo"
)

func newDemoCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Load the demo configuration and wait for its staged sessions",
		Long: `The demo configuration is what 'make up' loads: two zones, one Docker agent
per zone, the demo workspace, a group, two users, and a staging config that
keeps sessions of the demo workspace staged in zone-a.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDemoLoadCommand(g), newDemoWaitCommand(g))
	return cmd
}

type demoOptions struct {
	Image          string
	DockerEndpoint string
	Domain         string
	// AuthAddress is the zones' upstream_auth_address: where the gateway
	// checks sign-ins (the config service; by default the API's host).
	AuthAddress string
	// Passwords are the demo users' passwords, by user name.
	Passwords map[string]string
	Staged    int
}

// demoObject is one resource of the demo configuration.
type demoObject struct {
	Kind string // for messages
	Name string
	Path string // collection to POST to
	Body map[string]any
	// Patch, when set, is applied to an object that exists already (the
	// demo users' passwords, so that make up's stay the ones it prints).
	Patch map[string]any
}

// demoPolicy is the demo workspace's web filter policy: fixed per
// workspace, so it stays compatible with staging; the demo page shows it.
const demoPolicy = "demo-safe-browsing"

// demoConfiguration lists the objects in dependency order.
func demoConfiguration(o demoOptions) []demoObject {
	var objs []demoObject
	for i, zone := range []string{"zone-a", "zone-b"} {
		objs = append(objs, demoObject{Kind: "zone", Name: zone, Path: "/api/v1/zones", Body: map[string]any{
			"name":                   zone,
			"search_alternate_zones": true,
			// Staged sessions cannot use the $request_host$ default. The
			// gateway serves the zone's sessions on o.Domain and checks
			// sign-ins at the config service.
			"allow_origin_domain":   o.Domain,
			"upstream_auth_address": o.AuthAddress,
			"load_balancing":        "least_load",
			"priority":              i + 1,
		}})
	}
	for _, zone := range []string{"zone-a", "zone-b"} {
		objs = append(objs, demoObject{Kind: "agent", Name: "agent-" + zone, Path: "/api/v1/agents", Body: map[string]any{
			"name":            "agent-" + zone,
			"zone":            zone,
			"docker_endpoint": o.DockerEndpoint,
			"cores":           2,
			"memory_mb":       2048,
			"enabled":         true,
		}})
	}
	objs = append(objs,
		demoObject{Kind: "web filter policy", Name: demoPolicy, Path: "/api/v1/web-filter-policies", Body: map[string]any{
			"name":           demoPolicy,
			"default_allow":  true,
			"denied_domains": []string{"ads.example.com", "*.tracker.example"},
		}},
		demoObject{Kind: "workspace", Name: demoWorkspace, Path: "/api/v1/workspaces", Body: map[string]any{
			"name":              demoWorkspace,
			"image":             o.Image,
			"cores":             0.25,
			"memory_mb":         128,
			"enabled":           true,
			"port":              8080,
			"readiness_path":    "/healthz",
			"web_filter_policy": demoPolicy,
			// The image answers the HTTP assign hook (checking the
			// container's GREENROOM_ASSIGN_SECRET) and also has the exec
			// "assign" below. With both declared the hook runs and the
			// exec is skipped; the exec stays for workspaces and tests
			// that declare only it.
			"assign_hook": map[string]any{
				"path":    "/.greenroom/assign",
				"timeout": "5s",
			},
			"docker_exec_config": map[string]any{
				"assign": map[string]any{
					"cmd": []string{"/demo-workspace", "assign"},
					// The image is FROM scratch: no /etc/passwd, so the user
					// must be numeric ("root" would not resolve).
					"user": "0",
				},
			},
		}},
		// The group and the staging config name no allow_* permission:
		// both get the same defaults, so alice and bob match the staged
		// sessions (rule 3) with the smallest configuration one can write.
		demoObject{Kind: "group", Name: "everyone", Path: "/api/v1/groups", Body: map[string]any{
			"name":     "everyone",
			"priority": 100,
		}},
		demoUser("alice", o.Passwords), demoUser("bob", o.Passwords),
		demoObject{Kind: "staging config", Name: demoZone + "/" + demoWorkspace, Path: "/api/v1/staging-configs", Body: map[string]any{
			"zone":             demoZone,
			"workspace":        demoWorkspace,
			"desired_sessions": o.Staged,
			"expiration_hours": 1,
		}},
	)
	return objs
}

// demoUser is a demo user in group everyone, with its password when one
// is given.
func demoUser(name string, passwords map[string]string) demoObject {
	u := demoObject{Kind: "user", Name: name, Path: "/api/v1/users", Body: map[string]any{"username": name, "groups": []string{"everyone"}}}
	if pw, ok := passwords[name]; ok {
		u.Body["password"] = pw
		u.Patch = map[string]any{"password": pw}
	}
	return u
}

func newDemoLoadCommand(g *globalOptions) *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Create the demo configuration through the admin API (idempotent)",
		Long: `Create, through the admin API, the demo configuration:

  zones         zone-a, zone-b (search alternate zones; allow origin domain
                --domain, upstream auth address --auth-address, as staging
                requires)
  agents        agent-zone-a, agent-zone-b at --docker-endpoint, 2 cores, 2048 MB
  policy        demo-safe-browsing: web filter policy allowing all but two domains
  workspace     demo: --image, 0.25 cores, 128 MB, port 8080, readiness /healthz,
                web filter policy demo-safe-browsing,
                assign hook POST /.greenroom/assign (timeout 5s) and assign
                exec "/demo-workspace assign" (the user is passed in
                GREENROOM_USER); with both declared the hook runs and the
                exec is skipped
  group         everyone (priority 100), permissions left at their defaults
  users         alice, bob in everyone, with the passwords of --password
                (set again when they exist), to sign in at the gateway
  staging config zone-a/demo: --staged sessions, expiring after 1 hour,
                permissions left at their defaults (the same as a group's), so
                alice and bob match the staged sessions

Objects that already exist (409) are left as they are, so running it again is
harmless. 'make up' applies deploy/demo/greenroom.yaml instead, the same
configuration as a file ('greenroom apply --help'); a test keeps the two
equal.`,
		Example: `  greenroom demo load
  greenroom demo load --staged 5 --docker-endpoint tcp://10.0.0.7:2375`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Staged < 0 {
				return usagef("--staged must not be negative")
			}
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			if o.AuthAddress == "" {
				u, _ := url.Parse(g.APIURL) // checked by newAPIClient
				o.AuthAddress = u.Host
			}
			return loadDemo(cmd.Context(), api, demoConfiguration(o), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", demoImageDefault, "image of the demo workspace (built by scripts/build-demo-image.sh)")
	f.StringVar(&o.DockerEndpoint, "docker-endpoint", demoDockerEndpointDefault, "Docker endpoint of both demo agents")
	f.StringVar(&o.Domain, "domain", demoDomainDefault, "allow_origin_domain of the zones: the host the gateway serves their sessions on")
	f.StringVar(&o.AuthAddress, "auth-address", "", "upstream_auth_address of the zones, where the gateway checks sign-ins (default: the host of --api-url)")
	f.StringToStringVar(&o.Passwords, "password", nil, "a demo user's password, as NAME=PASSWORD (repeatable)")
	f.IntVar(&o.Staged, "staged", demoStagedDefault, "desired staged sessions of zone-a/demo")
	return cmd
}

func loadDemo(ctx context.Context, api *apiClient, objs []demoObject, out io.Writer) error {
	created, existing := 0, 0
	for _, obj := range objs {
		err := api.do(ctx, http.MethodPost, obj.Path, nil, obj.Body, nil)
		switch {
		case err == nil:
			created++
			fmt.Fprintf(out, "created %s %s\n", obj.Kind, obj.Name)
		case isStatus(err, http.StatusConflict):
			existing++
			fmt.Fprintf(out, "exists  %s %s\n", obj.Kind, obj.Name)
			if obj.Patch != nil {
				if err := api.do(ctx, http.MethodPatch, obj.Path+"/"+url.PathEscape(obj.Name), nil, obj.Patch, nil); err != nil {
					return fmt.Errorf("updating %s %s: %w", obj.Kind, obj.Name, err)
				}
			}
		default:
			return fmt.Errorf("creating %s %s: %w", obj.Kind, obj.Name, err)
		}
	}
	fmt.Fprintf(out, "demo configuration loaded: %d created, %d already present\n", created, existing)
	return nil
}

type demoWaitOptions struct {
	Staged          int
	Timeout         time.Duration
	Zone, Workspace string
	Interval        time.Duration
}

func newDemoWaitCommand(g *globalOptions) *cobra.Command {
	o := demoWaitOptions{}
	cmd := &cobra.Command{
		Use:   "wait --staged N [--timeout 120s]",
		Short: "Wait until the demo staging config has N staged sessions",
		Long: `Poll the admin API until the staging config of --zone/--workspace reports at
least --staged current sessions, printing progress as it changes. Fails after
--timeout with the staging config's status and last error (for example no
agent capacity, or an image that is missing).`,
		Example: `  greenroom demo wait --staged 3
  greenroom demo wait --staged 5 --timeout 5m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Staged < 0 || o.Timeout <= 0 || o.Interval <= 0 {
				return usagef("--staged must not be negative, --timeout and --interval must be positive")
			}
			api, err := newAPIClient(g)
			if err != nil {
				return err
			}
			return waitStaged(cmd.Context(), api, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Staged, "staged", demoStagedDefault, "staged sessions to wait for")
	f.DurationVar(&o.Timeout, "timeout", 120*time.Second, "how long to wait")
	f.StringVar(&o.Zone, "zone", demoZone, "zone of the staging config")
	f.StringVar(&o.Workspace, "workspace", demoWorkspace, "workspace of the staging config")
	f.DurationVar(&o.Interval, "interval", 500*time.Millisecond, "time between two polls")
	return cmd
}

func waitStaged(ctx context.Context, api *apiClient, o demoWaitOptions, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	name := o.Zone + "/" + o.Workspace
	last := ""
	var lastErr error
	var sc apiStagingConfig
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		found, err := api.findStagingConfig(ctx, o.Zone, o.Workspace)
		switch {
		case err == nil:
			sc, lastErr = found, nil
			line := fmt.Sprintf("%s: %d/%d staged (%s)", name, sc.CurrentSessions, o.Staged, sc.Status)
			if sc.LastError != "" {
				line += ": " + sc.LastError
			}
			if line != last {
				fmt.Fprintln(out, line)
				last = line
			}
			if sc.CurrentSessions >= o.Staged {
				return nil
			}
		case isStatus(err, http.StatusUnauthorized):
			return err // waiting will not fix a wrong token
		case ctx.Err() != nil:
			// The wait ended during this poll; report what was seen before.
		default:
			if lastErr == nil || lastErr.Error() != err.Error() {
				fmt.Fprintf(out, "%s: %v (retrying)\n", name, err)
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if lastErr != nil {
					return fmt.Errorf("%s: not %d staged sessions within %s: %w", name, o.Staged, o.Timeout, lastErr)
				}
				return fmt.Errorf("%s: %d of %d staged sessions after %s (status %s%s); see the provisioner's log",
					name, sc.CurrentSessions, o.Staged, o.Timeout, sc.Status, suffix(": ", sc.LastError))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}
