package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/template"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	assigner "github.com/greenroom-dev/greenroom/services/assigner/service"
	configsvc "github.com/greenroom-dev/greenroom/services/config/service"
	expiry "github.com/greenroom-dev/greenroom/services/expiry/service"
	gwapp "github.com/greenroom-dev/greenroom/services/gateway/app"
	gateway "github.com/greenroom-dev/greenroom/services/gateway/service"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	provisioner "github.com/greenroom-dev/greenroom/services/provisioner/service"
)

const (
	alertRulesFile = "../../deploy/prometheus/alerts.yml"
	dashboardFile  = "../../deploy/grafana/greenroom.json"
)

// promqlParser parses PromQL as Prometheus does, with its standard functions.
var promqlParser = parser.NewParser(parser.Options{})

// TestAlertRulesAndDashboardUseOnlyMetricsTheServicesServe parses the
// Prometheus alert rules (as Prometheus loads them: rulefmt, with their
// PromQL and templates) and the Grafana dashboard's queries, then runs the
// five services, stages and claims a session, and checks that every
// metric the rules and the dashboard name is one a service registers and
// serves on /metrics.
func TestAlertRulesAndDashboardUseOnlyMetricsTheServicesServe(t *testing.T) {
	used := map[string][]string{} // metric name → where it is used
	for name, where := range alertRuleMetrics(t) {
		used[name] = append(used[name], where...)
	}
	for name, where := range dashboardMetrics(t) {
		used[name] = append(used[name], where...)
	}
	for _, want := range []string{
		// What issue 14 asks the rules to watch.
		"greenroom_staging_config_shortfall", "greenroom_bus_dead_letters_total", "greenroom_bus_consumer_pending_messages",
	} {
		if _, ok := used[want]; !ok {
			t.Errorf("neither the alert rules nor the dashboard use %s", want)
		}
	}

	served := servedMetricNames(t)
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !served[name] {
			t.Errorf("%s, used by %s, is not a metric any service registers", name, strings.Join(used[name], ", "))
		}
	}
	if !t.Failed() {
		t.Logf("%d metric names used by the rules and the dashboard, all served", len(names))
	}
}

// alertRuleMetrics loads the alert rules as Prometheus does and returns
// the metric names their expressions select, with the alerts using each.
func alertRuleMetrics(t *testing.T) map[string][]string {
	t.Helper()
	groups := loadAlertRules(t)
	used := map[string][]string{}
	var alerts int
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s has no severity label or no summary", r.Alert)
			}
			for _, name := range exprMetrics(t, r.Expr) {
				used[name] = append(used[name], "alert "+r.Alert)
			}
			// The queries its annotations run (templated queries).
			expandAnnotations(t, r, alertLabels, func(q string) promql.Vector {
				for _, name := range exprMetrics(t, q) {
					used[name] = append(used[name], "alert "+r.Alert+"'s annotations")
				}
				return nil
			})
		}
	}
	if alerts == 0 {
		t.Fatal("no alert rules")
	}
	return used
}

// loadAlertRules loads the alert rules as Prometheus does: rulefmt,
// which parses their PromQL and templates.
func loadAlertRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(alertRulesFile, false, model.LegacyValidation, promqlParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alert rules: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

// alertLabels are the labels an alert of alerts.yml may carry, with
// example values, for expanding the annotations' templates.
var alertLabels = map[string]string{"zone": "zone-a", "workspace": "demo", "consumer": "assigner", "instance": "provisioner:8080"}

// expandAnnotations renders the annotations of alert rule r as Prometheus
// does for an alert with labels, answering the templates' queries with
// query; a template that fails to render fails the test.
func expandAnnotations(t *testing.T, r rulefmt.Rule, labels map[string]string, query func(q string) promql.Vector) map[string]string {
	t.Helper()
	data := template.AlertTemplateData(labels, nil, "", promql.Sample{F: 1})
	defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	queryFunc := func(_ context.Context, q string, _ time.Time) (promql.Vector, error) { return query(q), nil }
	out := map[string]string{}
	for name, text := range r.Annotations {
		e := template.NewTemplateExpander(context.Background(), defs+text, "__alert_"+r.Alert, data, model.Now(), queryFunc, nil, nil)
		got, err := e.Expand()
		if err != nil {
			t.Errorf("alert %s: annotation %s: %v", r.Alert, name, err)
		}
		out[name] = got
	}
	return out
}

// TestShortfallAlertKeepsItsClockWhenTheCauseChanges: the shortfall alert
// is one per staging pool (zone and workspace), whatever its cause, so a
// cause that changes does not start its 10 minutes again; the cause, read
// when the alert is rendered, is in its summary.
func TestShortfallAlertKeepsItsClockWhenTheCauseChanges(t *testing.T) {
	var rule *rulefmt.Rule
	for _, g := range loadAlertRules(t).Groups {
		for i, r := range g.Rules {
			if r.Alert == "GreenroomStagingPoolShortfall" {
				rule = &g.Rules[i]
			}
		}
	}
	if rule == nil {
		t.Fatal("no alert GreenroomStagingPoolShortfall")
	}
	e, err := promqlParser.ParseExpr(rule.Expr)
	if err != nil {
		t.Fatal(err)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if a, ok := n.(*parser.AggregateExpr); ok && (a.Without || !slices.Equal(a.Grouping, []string{"zone", "workspace"})) {
			t.Errorf("%s aggregates by %v, want by (zone, workspace): the alert's labels", a, a.Grouping)
		}
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "greenroom_staging_config_status" {
			t.Errorf("the alert selects %s, want greenroom_staging_config_status{status=\"shortfall\"}", vs)
		}
		return nil
	})

	for _, c := range []struct {
		reasons []string
		want    string
	}{
		{[]string{"image_missing"}, "(image_missing)"},
		{[]string{"no_capacity", "image_missing"}, "(no_capacity, image_missing)"}, // replicas disagreeing for a scrape
		{nil, "(cause not reported)"},
	} {
		var queries []string
		got := expandAnnotations(t, *rule, map[string]string{"zone": "zone-a", "workspace": "demo"}, func(q string) promql.Vector {
			queries = append(queries, q)
			var v promql.Vector
			for _, r := range c.reasons {
				v = append(v, promql.Sample{Metric: labels.FromStrings("reason", r), F: 1})
			}
			return v
		})
		if !strings.Contains(got["summary"], c.want) {
			t.Errorf("with reasons %v the summary is %q, want it to say %s", c.reasons, got["summary"], c.want)
		}
		if len(queries) != 1 || !strings.Contains(queries[0], `greenroom_staging_config_shortfall{zone="zone-a", workspace="demo"}`) {
			t.Errorf("the summary's queries %q, want one of zone-a/demo's shortfall", queries)
		}
	}
}

// grafanaVariables are what Grafana replaces in a query before Prometheus
// sees it.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// labelValues is a template variable's query: label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// dashboardMetrics reads the dashboard and returns the metric names its
// panels' and variables' queries select, with the panels using each.
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"` // a collapsed row's
	}
	var dash struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard without a uid or title")
	}
	used := map[string][]string{}
	var queries int
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				for _, name := range exprMetrics(t, grafanaVariables.Replace(tg.Expr)) {
					used[name] = append(used[name], fmt.Sprintf("panel %q", p.Title))
				}
			}
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, s)
			continue
		}
		for _, name := range exprMetrics(t, m[1]) {
			used[name] = append(used[name], "variable "+v.Name)
		}
	}
	if queries == 0 {
		t.Fatal("no queries in the dashboard")
	}
	return used
}

// exprMetrics parses expr as PromQL and returns the metric names its
// selectors name, failing the test on a syntax error or a selector
// without a name.
func exprMetrics(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Errorf("PromQL %q: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("PromQL %q selects %s without a metric name", expr, vs)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// servedMetricNames runs the five services, has a staged session claimed
// (so that the vectors labelled per staging config have series), and
// returns every name a query may select: the names registered on each
// service's registry, and from each /metrics, the series names
// (histograms' _bucket, _sum and _count).
func servedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	g, services := startMonitored(t)
	g.create("/api/v1/zones", map[string]any{"name": "zone-m", "allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"})
	g.create("/api/v1/agents", map[string]any{"name": "agent-m", "zone": "zone-m",
		"docker_endpoint": "unix:///var/run/docker.sock", "cores": 4, "memory_mb": 4096})
	g.create("/api/v1/workspaces", workspace("demo"))
	g.create("/api/v1/groups", map[string]any{"name": "everyone", "priority": 100})
	g.create("/api/v1/users", map[string]any{"username": "alice", "groups": []string{"everyone"}})
	pool := g.create("/api/v1/staging-configs", stagingConfig("zone-m", "demo", 1))["id"].(string)
	g.waitStaged(pool, 1, 60*time.Second)
	if s, _ := g.session(t, "alice", "demo", "zone-m"); s["origin"] != "staged" {
		t.Fatalf("want a staged session: %v", s)
	}

	names := map[string]bool{}
	for name, deps := range services {
		for _, n := range registeredNames(deps.Ops.Registry) {
			names[n] = true
		}
		families := scrape(t, name, deps)
		for n, f := range families {
			names[n] = true
			if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
				names[n+"_sum"], names[n+"_count"] = true, true
			}
			if f.GetType() == dto.MetricType_HISTOGRAM {
				names[n+"_bucket"] = true
			}
		}
	}
	return names
}

// registeredNames are the metric names of every collector on reg, whether
// or not it has series yet.
func registeredNames(reg *prometheus.Registry) []string {
	descs := make(chan *prometheus.Desc)
	go func() { reg.Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// scrape reads GET /metrics of a service as Prometheus would.
func scrape(t *testing.T, name string, deps *app.Deps) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(deps.Ops.Mux)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /metrics: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s /metrics: %d %s", name, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s /metrics: %v", name, err)
	}
	return families
}

// startMonitored starts the five services as start does, and returns
// their connections, whose Ops.Registry is what each serves on /metrics.
func startMonitored(t *testing.T) (*greenroom, map[string]*app.Deps) {
	t.Helper()
	g := &greenroom{t: t, env: apptest.New(t), token: "e2e-" + uuid.NewString(), label: uuid.NewString()}
	t.Cleanup(func() { removeContainers(t, "greenroom.test="+g.label) })
	deps := map[string]*app.Deps{}
	for _, name := range []string{"config", "assigner", "gateway", "provisioner", "expiry"} {
		deps[name] = g.env.Deps(t, name)
	}
	g.deps = deps["config"]
	cfg, err := configsvc.New(deps["config"], configsvc.Config{AdminToken: g.token})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, cfg)
	g.api = httptest.NewServer(cfg.Handler())
	t.Cleanup(g.api.Close)
	asg, err := assigner.New(deps["assigner"], assigner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, asg)
	gw, err := gateway.New(deps["gateway"], gateway.Config{Config: gwapp.Config{AuthFallback: mustURL(t, g.api.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, gw)
	g.gw = httptest.NewServer(gw.Handler())
	t.Cleanup(g.gw.Close)
	prov, err := provisioner.New(deps["provisioner"], provisioner.Config{
		Provision: command.Config{ReadinessTimeout: 30 * time.Second, ExtraLabels: map[string]string{"greenroom.test": g.label},
			GatewayURL: mustURL(t, g.gw.URL)},
	})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, prov)
	exp, err := expiry.New(deps["expiry"], expiry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, exp)
	return g, deps
}
