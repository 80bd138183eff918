package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/events"
)

const consoleScenarioName = "admin console"

// The console scenario's fixture: 50 staging configs (one per workspace)
// with 20 staged sessions each, 1,000 sessions in all (issue 14's "1,000
// sessions and 50 configs").
const (
	consoleConfigs   = 50
	consolePerConfig = 20
)

// consoleScenario (issue 14) measures the admin console in a headless
// Chromium against the API calls it is bounded by, in one run:
//
//   - the first paint of the Staging page (50 configs, 1,000 sessions) and
//     of the Sessions page, each loaded fresh, beside the one API call each
//     page makes to draw its table, timed from Go;
//   - the delay from an event (a staging config's desired sessions changed
//     through the API) to the Staging page showing it, beside the delay from
//     the PATCH's answer to the event arriving on a plain NATS subscription.
//
// Only the config service (and the assigner) run: the sessions are rows
// inserted as the provisioner would, without containers.
func consoleScenario(quick bool) error {
	loads, changes := 10, 20
	if quick {
		loads, changes = 3, 5
	}
	browserPath, err := findChromium()
	if err != nil {
		return err
	}
	e, err := startEnv(envAssign)
	if err != nil {
		return err
	}
	defer e.close()

	t0 := time.Now()
	ids, err := consoleFixture(e)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: console fixture (%d configs, %d sessions) in %s\n",
		len(ids), len(ids)*consolePerConfig, time.Since(t0).Round(time.Millisecond))

	b, err := startBrowser(browserPath)
	if err != nil {
		return err
	}
	defer b.close()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Minute)
	defer cancel()
	go func() { // an interrupt ends the browser's actions at once
		select {
		case <-stopping:
			cancel()
		case <-ctx.Done():
		}
	}()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.apiURL+"/"),
		chromedp.SendKeys("//label[normalize-space(.)='Admin Token']/following-sibling::input[1]", e.Token),
		chromedp.Click("//button[normalize-space(.)='Sign In']"),
		chromedp.WaitVisible("//nav//a[normalize-space(.)='Staging']"),
	); err != nil {
		return fmt.Errorf("signing in to the console: %w", err)
	}
	if err := waitJS(ctx, `document.body.dataset.firstPaintMs !== undefined && document.body.dataset.live === "true"`, 30*time.Second); err != nil {
		return fmt.Errorf("the console's first page after signing in: %w", err)
	}

	// First paint, each page loaded fresh, interleaved with the API call it
	// makes, timed from Go on the same machine in the same minute.
	pages := []struct {
		name, route, apiPath string
		rows                 int
	}{
		{"Staging", "staging", "/api/v1/staging-configs?limit=50", consoleConfigs},
		{"Sessions", "sessions", "/api/v1/sessions?limit=50&ended=false", 50},
	}
	for _, p := range pages {
		var paint, raw []time.Duration
		for i := 0; i < loads && !interrupted(); i++ {
			d, err := timedList(e, p.apiPath, p.rows)
			if err != nil {
				return err
			}
			raw = append(raw, d)
			fp, err := loadFresh(ctx, b, e.apiURL+"/#/"+p.route, p.route, p.rows)
			if err != nil {
				return fmt.Errorf("loading the %s page: %w", p.name, err)
			}
			paint = append(paint, fp)
		}
		if len(paint) == 0 {
			return nil
		}
		fp, api := sorted(paint), sorted(raw)
		what := fmt.Sprintf("%s page first paint, %d configs + %d sessions", p.name, len(ids), len(ids)*consolePerConfig)
		n := fmt.Sprintf(" (n=%d; raw: GET %s)", fp.n, p.apiPath)
		add(consoleScenarioName, what+" p50"+n, ms(fp.p(0.5)), "ms", ms(api.p(0.5)), ms(fp.p(0.5))/ms(api.p(0.5)), "", nil)
		add(consoleScenarioName, what+" p95"+n, ms(fp.p(0.95)), "ms", ms(api.p(0.95)), ms(fp.p(0.95))/ms(api.p(0.95)), "", nil)
	}
	if interrupted() {
		return nil
	}

	// Event → paint: the Staging page open and live; each PATCH changes one
	// row's Desired Sessions (a config.changed event through the outbox
	// relay), one at a time.
	nc, err := nats.Connect(e.NatsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	arrivals := make(chan configArrival, 256)
	sub, err := nc.Subscribe(events.TypeConfigChanged+".>", func(m *nats.Msg) {
		now := time.Now()
		a, ok := parseConfigChanged(m.Data)
		if !ok {
			return
		}
		a.at = now
		select {
		case arrivals <- a:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return err
	}
	if _, err := loadFresh(ctx, b, e.apiURL+"/#/staging", "staging", consoleConfigs); err != nil {
		return fmt.Errorf("opening the Staging page: %w", err)
	}
	if err := waitJS(ctx, `document.body.dataset.live === "true"`, 30*time.Second); err != nil {
		return fmt.Errorf("the Staging page's event stream: %w", err)
	}
	var toPaint, toBus []time.Duration
	for i := 0; i < changes && !interrupted(); i++ {
		id := ids[i%len(ids)]
		desired := consolePerConfig + 1 + i/len(ids)
		before, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.body.dataset.liveRefreshes || 0)`))
		if err != nil {
			return err
		}
		for len(arrivals) > 0 {
			<-arrivals
		}
		status, out, err := e.call(http.MethodPatch, "/api/v1/staging-configs/"+id, map[string]any{"desired_sessions": desired})
		answered := time.Now()
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("PATCH staging config %s: %d %v %v", id, status, out, err)
		}
		d, err := awaitArrival(arrivals, id, answered, 10*time.Second)
		if err != nil {
			return err
		}
		toBus = append(toBus, d)
		if err := waitJS(ctx, fmt.Sprintf(`Number(document.body.dataset.liveRefreshes || 0) > %d`, before), 30*time.Second); err != nil {
			return fmt.Errorf("the Staging page refreshing after change %d (%s): %w", i+1, b.exceptions(), err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.eventToPaintMs || ""`))
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(got, 64)
		if err != nil {
			return fmt.Errorf("body.dataset.eventToPaintMs = %q after change %d: %w", got, i+1, err)
		}
		cell, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`(document.querySelector('#view-staging tbody tr[data-key="%s"] td:nth-child(3)') || {}).textContent || ""`, id)))
		if err != nil {
			return err
		}
		if strings.TrimSpace(cell) != strconv.Itoa(desired) {
			return fmt.Errorf("after change %d the Staging page shows Desired Sessions %q for %s, want %d", i+1, cell, id, desired)
		}
		toPaint = append(toPaint, time.Duration(v*float64(time.Millisecond)))
		// Past the console's burst window (100 ms): one refresh per event.
		time.Sleep(300 * time.Millisecond)
	}
	if len(toPaint) == 0 {
		return nil
	}
	paint, bus := sorted(toPaint), sorted(toBus)
	n := fmt.Sprintf(" (n=%d; raw: PATCH answered → event on a NATS subscription)", paint.n)
	add(consoleScenarioName, "event → Staging page repainted p50"+n, ms(paint.p(0.5)), "ms", ms(bus.p(0.5)), ms(paint.p(0.5))/ms(bus.p(0.5)), "", nil)
	add(consoleScenarioName, "event → Staging page repainted p95"+n, ms(paint.p(0.95)), "ms", ms(bus.p(0.95)), ms(paint.p(0.95))/ms(bus.p(0.95)), "", nil)
	note("console: first paint is body.dataset.firstPaintMs (performance.now() when the page's first table is drawn, from navigation start; "+
		"the page loaded anew after about:blank, with its script and style sheet, which the service serves with no-cache and no validator); its raw limit is the same list call "+
		"from Go on a kept-alive connection. Event → paint is body.dataset.eventToPaintMs (Date.now() when the refreshed table is drawn − "+
		"the CloudEvent's time, written in the PATCH's transaction), which includes the console's 100 ms burst window before it refetches; "+
		"its raw limit is the PATCH's answer → the event on a plain NATS subscription to %s.> (the relay's hop, without the config "+
		"service's SSE stream). %s", events.TypeConfigChanged, b.version)
	return nil
}

// consoleFixture creates a zone with real domains, an agent, 50
// workspaces and a staging config of each (desired 20) through the API,
// then inserts 20 staged sessions of each config as the provisioner would;
// it returns the configs' ids.
func consoleFixture(e *env) ([]string, error) {
	zoneID, agentID, err := e.fixture()
	if err != nil {
		return nil, err
	}
	type config struct{ id, ws string }
	var configs []config
	for i := range consoleConfigs {
		name := fmt.Sprintf("console-%02d", i)
		ws, err := e.create("/api/v1/workspaces", e.workspace(name))
		if err != nil {
			return nil, err
		}
		sc, err := e.create("/api/v1/staging-configs", e.stagingConfig(name, consolePerConfig))
		if err != nil {
			return nil, err
		}
		configs = append(configs, config{sc, ws})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var next atomic.Int64
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	total := consoleConfigs * consolePerConfig
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || ctx.Err() != nil || interrupted() {
					return
				}
				c := configs[i/consolePerConfig]
				if err := e.insertStagedRow(ctx, c.ws, zoneID, agentID, c.id); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("inserting staged sessions: %w", err)
	}
	if interrupted() {
		return nil, fmt.Errorf("interrupted")
	}
	// What the page will show: every config at 20 staged, and the events of
	// the fixture relayed, so that none of them reaches the page later.
	status, out, err := e.call(http.MethodGet, "/api/v1/staging-configs?limit=1000", nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("listing staging configs: %d %v", status, err)
	}
	items, _ := out["items"].([]any)
	if len(items) != consoleConfigs {
		return nil, fmt.Errorf("%d staging configs listed, want %d", len(items), consoleConfigs)
	}
	for _, it := range items {
		sc, _ := it.(map[string]any)
		if n, _ := sc["current_sessions"].(float64); int(n) != consolePerConfig {
			return nil, fmt.Errorf("staging config %v has current_sessions %v, want %d", sc["id"], sc["current_sessions"], consolePerConfig)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		// The relay deletes the rows it published.
		if err := e.DB.Get(&left, `SELECT count(*) FROM outbox`); err != nil {
			return nil, err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d outbox rows of the fixture not relayed after 30 s", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ids := make([]string, len(configs))
	for i, c := range configs {
		ids[i] = c.id
	}
	return ids, nil
}

// timedList times one GET of a list page as the console makes it (the
// admin token, the body read whole and decoded) and checks it has rows
// items.
func timedList(e *env, path string, rows int) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, e.apiURL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	start := time.Now()
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, err
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &page)
	}
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	if len(page.Items) != rows {
		return 0, fmt.Errorf("GET %s: %d items, want %d", path, len(page.Items), rows)
	}
	return took, nil
}

// loadFresh loads url as a new document (after about:blank, so that a
// route of the page shown is not a same-document navigation), waits for
// the console's first table and returns body.dataset.firstPaintMs; the
// view of route must show rows rows.
func loadFresh(ctx context.Context, b *browser, url, route string, rows int) (time.Duration, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
		return 0, err
	}
	if err := waitJS(ctx, `document.body && document.body.dataset.firstPaintMs`, 30*time.Second); err != nil {
		shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + " " + JSON.stringify(document.body.dataset) + ", " +
			document.querySelectorAll(".page:not([hidden]) tbody tr").length + " rows, error: " +
			Array.from(document.querySelectorAll(".page:not([hidden]) .page-error")).map((e) => e.textContent).join(" ")`))
		return 0, fmt.Errorf("waiting for body.dataset.firstPaintMs (the page shows %q; %s): %w", shown, b.exceptions(), err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.firstPaintMs`))
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(got, 64)
	if err != nil {
		return 0, fmt.Errorf("body.dataset.firstPaintMs = %q: %w", got, err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll("#view-%s tbody tr").length`, route)))
	if err != nil {
		return 0, err
	}
	if n != rows {
		return 0, fmt.Errorf("the %s page shows %d rows, want %d", route, n, rows)
	}
	return time.Duration(v * float64(time.Millisecond)), nil
}

// waitJS evaluates a JavaScript expression on the page every 5 ms until
// it is true (an evaluation that fails, as while a document replaces
// another, is tried again). The figures are the page's own, so the
// polling's granularity is not in them.
func waitJS(ctx context.Context, js string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+js+")"))
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not true within %s (last error: %v)", js, timeout, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// configArrival is a config.changed event received on the bus.
type configArrival struct {
	id, kind string
	at       time.Time
}

// parseConfigChanged reads the changed resource's id and kind out of a
// greenroom.config.changed CloudEvent.
func parseConfigChanged(b []byte) (configArrival, bool) {
	var ev struct {
		Type string               `json:"type"`
		Data events.ConfigChanged `json:"data"`
	}
	if json.Unmarshal(b, &ev) != nil || ev.Type != events.TypeConfigChanged || ev.Data.ID == "" {
		return configArrival{}, false
	}
	return configArrival{id: ev.Data.ID, kind: ev.Data.Kind}, true
}

// awaitArrival waits for the config.changed event of id and returns its
// arrival after answered (negative when it came first).
func awaitArrival(arrivals <-chan configArrival, id string, answered time.Time, timeout time.Duration) (time.Duration, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case a := <-arrivals:
			if a.id == id {
				return a.at.Sub(answered), nil
			}
		case <-t.C:
			return 0, fmt.Errorf("no %s event of %s on the bus within %s", events.TypeConfigChanged, id, timeout)
		case <-stopping:
			return 0, fmt.Errorf("interrupted")
		}
	}
}

// findChromium finds a Chromium (Debian's chromium package) or Chrome.
func findChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("the console scenario needs Chromium (apt-get install chromium)")
}

// browser is a headless Chromium of the bench's own, with its own profile
// directory; close ends it (bounded) and removes the directory.
type browser struct {
	ctx     context.Context
	version string
	close   func()
	mu      sync.Mutex
	errs    []string // the page's uncaught exceptions, the latest last
}

// listen keeps the page's uncaught exceptions, for the errors of the
// scenario (it runs on the tab's reading goroutine: no commands).
func (b *browser) listen(ev any) {
	if ev, ok := ev.(*cdpruntime.EventExceptionThrown); ok && ev.ExceptionDetails != nil {
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		b.mu.Lock()
		b.errs = append(b.errs, msg)
		if len(b.errs) > 5 {
			b.errs = b.errs[1:]
		}
		b.mu.Unlock()
	}
}

// exceptions says the page's latest uncaught exceptions, if any.
func (b *browser) exceptions() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) == 0 {
		return "no uncaught exception on the page"
	}
	return "the page's latest uncaught exceptions: " + strings.Join(b.errs, " | ")
}

func startBrowser(path string) (*browser, error) {
	dir, err := os.MkdirTemp("", "greenroom-bench-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		// Loopback only: no host name resolves (the API is at 127.0.0.1).
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 1024),
		// A page left for about:blank is unloaded, not kept in the
		// back/forward cache with its event stream open: Chromium's six
		// connections to the API would soon all be held by cached pages.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,BackForwardCache"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{}
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithListener(b.listen))
	b.ctx = ctx
	b.close = func() {
		done := make(chan struct{})
		go func() {
			cancelCtx()
			cancelAlloc()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			fmt.Fprintln(os.Stderr, "bench: Chromium did not end within 20 s")
		}
		_ = os.RemoveAll(dir)
	}
	// The first action runs on the browser's own context: it starts the
	// browser, which contexts derived from this one then share.
	start, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		select {
		case <-start.Done():
		case <-ctx.Done():
		}
		if start.Err() == context.DeadlineExceeded {
			cancelCtx()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.close()
		return nil, fmt.Errorf("starting Chromium (%s): %w", path, err)
	}
	if out, err := exec.Command(path, "--version").Output(); err == nil {
		b.version = strings.TrimSpace(string(out)) + "."
	}
	return b, nil
}
