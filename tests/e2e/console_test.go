package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/greenroom-dev/greenroom/libs/apptest"
)

// adminConsole drives the admin console in a headless Chromium the way an
// administrator does: by the words on the screen (the seeds' click
// paths), never by ids of the page's own making.
type adminConsole struct {
	t   *testing.T
	ctx context.Context
	g   *greenroom
}

// shown is the XPath of the page of the console on screen.
const shown = "//main/section[not(@hidden)]"

// xq quotes s for an XPath expression.
func xq(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

func openConsole(t *testing.T, g *greenroom) *adminConsole {
	t.Helper()
	c := &adminConsole{t: t, ctx: browserFor(t, g), g: g}
	// The first action on the browser's own context starts it; actions on
	// contexts derived from it (with their timeouts) then use that browser.
	if err := chromedp.Do(c.ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	// An exception the console's script does not catch fails the test.
	var (
		mu         sync.Mutex
		exceptions []string
	)
	messages := chromedp.Console(c.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			t.Errorf("the console's script threw: %s", e)
		}
	})
	c.do("opening the console and signing in",
		chromedp.Navigate(g.api.URL+"/"),
		chromedp.SendKeys(shown+"//label[normalize-space(.)='Admin Token']/following-sibling::input[1]", g.token),
		chromedp.Click(shown+"//button[normalize-space(.)='Sign In']"),
		chromedp.WaitVisible("//nav//a[normalize-space(.)='Staging']"),
	)
	// Live: the event stream is open before anything is changed.
	c.waitFor("the live indicator", `document.body.dataset.live === "true"`)
	return c
}

func (c *adminConsole) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		screenshot(c.t, c.ctx, "failed")
		c.t.Fatalf("console: %s: %v", what, err)
	}
}

// waitFor polls a JavaScript condition on the page.
func (c *adminConsole) waitFor(what, js string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 90*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		screenshot(c.t, c.ctx, "failed")
		c.t.Fatalf("console: waiting for %s: %v", what, err)
	}
}

// nav clicks navigation items by their words ("Infrastructure", "Pools").
func (c *adminConsole) nav(items ...string) {
	c.t.Helper()
	for _, item := range items {
		c.do("clicking "+item+" in the navigation", chromedp.Click("//nav//*[self::a or self::summary][normalize-space(.)="+xq(item)+"]"))
	}
	c.do("waiting for the page", chromedp.WaitVisible(shown+"//h1"))
}

// click clicks the button or link of the page on screen with these words.
func (c *adminConsole) click(words string) {
	c.t.Helper()
	c.do("clicking "+words, chromedp.Click(shown+"//*[self::button or self::a][normalize-space(.)="+xq(words)+"]"))
}

// rowAction clicks the button or link with words in the row of the table
// on screen that has a cell reading cell.
func (c *adminConsole) rowAction(cell, words string) {
	c.t.Helper()
	sel := shown + "//tr[td[normalize-space(.)=" + xq(cell) + "]]//*[self::button or self::a][normalize-space(.)=" + xq(words) + "]"
	// A live refresh may redraw the row between finding the button and
	// clicking it (the click then never happened): find it again, as a
	// user would look again.
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(c.ctx, 60*time.Second)
		err := chromedp.Do(ctx, chromedp.Click(sel))
		cancel()
		if err == nil {
			return
		}
		if try == 3 || !strings.Contains(err.Error(), "Could not find node") {
			screenshot(c.t, c.ctx, "failed")
			c.t.Fatalf("console: clicking %s in the row of %s: %v", words, cell, err)
		}
	}
}

// openForm clicks words (a create or Edit button) and waits for its form
// to be ready (its choices loaded).
func (c *adminConsole) openForm(words string, rowCell ...string) {
	c.t.Helper()
	if len(rowCell) > 0 {
		c.rowAction(rowCell[0], words)
	} else {
		c.click(words)
	}
	c.do("waiting for the form", chromedp.WaitVisible(shown+"//form//button[normalize-space(.)='Submit' and not(@disabled)]"))
}

// control is the XPath of the input, select or text area labelled label.
func control(label string) string {
	return shown + "//label[normalize-space(.)=" + xq(label) + "]/following-sibling::*[self::input or self::select or self::textarea][1]"
}

// fill sets the field labelled label to value (for a select: the option
// with that value, once it is there).
func (c *adminConsole) fill(label, value string) {
	c.t.Helper()
	// Emptied first (as select-all would), then typed.
	empty := fmt.Sprintf(`document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue.value = ""`, control(label))
	c.do("filling "+label, chromedp.WaitVisible(control(label)), chromedp.Evaluate[chromedp.Void](empty), chromedp.SendKeys(control(label), value))
}

func (c *adminConsole) choose(label, value string) {
	c.t.Helper()
	c.do("choosing "+value+" for "+label,
		chromedp.WaitReady(control(label)+"/option[@value="+xq(value)+"]"),
		chromedp.SetValue(control(label), value))
}

// tick sets the checkbox labelled label.
func (c *adminConsole) tick(label string, on bool) {
	c.t.Helper()
	box := shown + "//label[normalize-space(.)=" + xq(label) + "]/input[@type='checkbox']"
	checked, err := chromedp.Run(c.ctx, chromedp.JavascriptAttribute[bool](box, "checked"))
	if err != nil {
		c.t.Fatalf("console: reading %s: %v", label, err)
	}
	if checked != on {
		c.do("ticking "+label, chromedp.Click(box))
	}
}

// submit clicks Submit and waits for the list page the form returns to.
func (c *adminConsole) submit() {
	c.t.Helper()
	c.click("Submit")
	c.do("waiting for the list", chromedp.WaitVisible(shown+"[contains(@class,'view')]//table"))
}

// fieldError is the problem shown next to the field labelled label (""
// while there is none).
func (c *adminConsole) fieldError(label string) string {
	c.t.Helper()
	text, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
		const label = [...document.querySelectorAll("main > section:not([hidden]) label")].find((l) => l.textContent.trim() === %q);
		return label ? label.closest(".field").querySelector(".error").textContent : "no field " + %q;
	})()`, label, label)))
	if err != nil {
		c.t.Fatal(err)
	}
	return text
}

// cellText is the text of the cell under column in the row with key.
func cellJS(key, column string) string {
	return fmt.Sprintf(`(() => {
		const page = document.querySelector("main > section:not([hidden])");
		const cols = [...page.querySelectorAll("thead th")].map((th) => th.textContent.trim());
		const row = page.querySelector('tbody tr[data-key=%q]');
		return row ? row.children[cols.indexOf(%q)].textContent.trim() : "";
	})()`, key, column)
}

func (c *adminConsole) cell(key, column string) string {
	c.t.Helper()
	text, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](cellJS(key, column)))
	if err != nil {
		c.t.Fatal(err)
	}
	return text
}

// apiGet reads one resource through the API.
func (g *greenroom) apiGet(t *testing.T, path string) map[string]any {
	t.Helper()
	status, body := g.call(http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, status, body)
	}
	return body
}

// TestTheAdminConsoleWalksTheSeedsClickPaths (issue 14): in a real
// headless Chromium, an administrator follows the seeds' click paths by
// their words — Zones → Edit; Infrastructure → Pools → Add → Assign;
// Workspaces, Groups and Users with their settings; Staging → Create New
// Config → Submit, with Current Sessions reaching Desired Sessions live;
// Sessions with staged ones without a user, then the username, and
// Destroy; Violations — and each step's outcome is checked through the
// API. A refused form shows the API's problem at its field.
func TestTheAdminConsoleWalksTheSeedsClickPaths(t *testing.T) {
	g := start(t)
	auth := mustURL(t, g.api.URL).Host
	c := openConsole(t, g)

	// ---- Zones: Add, then Edit next to the zone: Allow Origin Domain and
	// Upstream Auth Address.
	c.nav("Zones")
	c.openForm("Add")
	c.fill("Name", "zone-a")
	c.fill("Priority", "1")
	c.submit()
	c.openForm("Edit", "zone-a")
	c.fill("Allow Origin Domain", zoneDomain)
	c.fill("Upstream Auth Address", auth)
	c.tick("Search Alternate Zones", true)
	c.submit()
	zone := g.apiGet(t, "/api/v1/zones/zone-a")
	if zone["allow_origin_domain"] != zoneDomain || zone["upstream_auth_address"] != auth || zone["search_alternate_zones"] != true {
		t.Fatalf("zone-a after Edit: %v", zone)
	}
	// A zone left at $request_host$, for the refusal below.
	c.openForm("Add")
	c.fill("Name", "zone-rh")
	c.submit()
	screenshot(t, c.ctx, "1-zones")

	// ---- Infrastructure → Docker Agents → Add, and Servers → Add.
	c.nav("Infrastructure", "Docker Agents")
	c.openForm("Add")
	c.fill("Name", "agent-a")
	c.choose("Zone", "zone-a")
	c.fill("Docker Endpoint", "unix:///var/run/docker.sock")
	c.fill("Cores", "8")
	c.fill("Memory (MiB)", "8192")
	c.tick("Enabled", true)
	c.submit()
	if agent := g.apiGet(t, "/api/v1/agents/agent-a"); agent["zone"] != "zone-a" || agent["cores"] != float64(8) || agent["memory_mb"] != float64(8192) {
		t.Fatalf("agent-a after Add: %v", agent)
	}
	c.nav("Infrastructure", "Servers")
	c.openForm("Add")
	c.fill("Name", "desk-1")
	c.choose("Zone", "zone-a")
	c.fill("Address", "desk-1.internal")
	c.submit()
	if server := g.apiGet(t, "/api/v1/servers/desk-1"); server["address"] != "desk-1.internal" {
		t.Fatalf("desk-1 after Add: %v", server)
	}

	// ---- Infrastructure → Pools → Add; the pool's page → Assign.
	c.nav("Infrastructure", "Pools")
	c.openForm("Add")
	c.fill("Name", "agents")
	c.choose("Type", "docker_agent")
	c.fill("Labels", "ssd\nfast")
	c.submit()
	c.rowAction("agents", "agents") // the pool's name opens its page
	c.do("waiting for the pool page", chromedp.WaitVisible(shown+"//h2[normalize-space(.)='Docker Agents']"))
	c.choose("Existing Docker Agents", "agent-a")
	c.click("Assign")
	c.do("waiting for the member", chromedp.WaitVisible(shown+"//table//td[normalize-space(.)='agent-a']"))
	if agent := g.apiGet(t, "/api/v1/agents/agent-a"); agent["pool"] != "agents" {
		t.Fatalf("agent-a after Assign: pool %v", agent["pool"])
	}
	screenshot(t, c.ctx, "2-pool-assigned")
	if pool := g.apiGet(t, "/api/v1/pools/agents"); fmt.Sprint(pool["labels"]) != "[ssd fast]" || pool["type"] != "docker_agent" {
		t.Fatalf("pool agents: %v", pool)
	}
	// A server pool with Server Assignment, and a server assigned to it.
	c.nav("Infrastructure", "Pools")
	c.openForm("Add")
	c.fill("Name", "desktops")
	c.choose("Type", "server")
	c.tick("Server Assignment", true)
	c.submit()
	c.rowAction("desktops", "desktops")
	c.do("waiting for the pool page", chromedp.WaitVisible(shown+"//h2[normalize-space(.)='Servers']"))
	c.choose("Existing Servers", "desk-1")
	c.click("Assign")
	c.do("waiting for the member", chromedp.WaitVisible(shown+"//table//td[normalize-space(.)='desk-1']"))
	if pool := g.apiGet(t, "/api/v1/pools/desktops"); pool["server_assignment"] != true || pool["type"] != "server" {
		t.Fatalf("pool desktops: %v", pool)
	}
	if server := g.apiGet(t, "/api/v1/servers/desk-1"); server["pool"] != "desktops" {
		t.Fatalf("desk-1 after Assign: pool %v", server["pool"])
	}
	c.nav("Infrastructure", "Docker Agents")
	// The list's earlier rows show until its new read is painted.
	c.waitFor("Docker Agents showing agent-a in pool agents", cellJS("agent-a", "Pool")+` === "agents"`)

	// ---- Infrastructure → VM Providers, DNS Providers and AutoScale →
	// Add ("All VM Provider Configs", "All DNS Provider Configs", "All
	// AutoScale Configs"); the pool's Edit page shows its autoscale
	// config, as Kasm recommends reaching it. Disabled: this test makes
	// no machine.
	c.nav("Infrastructure", "VM Providers")
	c.do("waiting for the VM providers", chromedp.WaitVisible(shown+"//h1[normalize-space(.)='All VM Provider Configs']"))
	c.openForm("Add")
	c.fill("Name", "local")
	c.choose("Type", "local_docker")
	c.fill("Settings", `{"cores": 2, "memory_mb": 2048}`)
	c.submit()
	if p := g.apiGet(t, "/api/v1/vm-providers/local"); p["ca_fingerprint"] == "" || p["type"] != "local_docker" {
		t.Fatalf("VM provider local: %v", p)
	}
	c.nav("Infrastructure", "DNS Providers")
	c.openForm("Add")
	c.fill("Name", "bind")
	c.choose("Type", "rfc2136")
	c.fill("Settings", `{"server": "127.0.0.1:53", "zone": "agents.example.com", "tsig_key_name": "greenroom"}`)
	c.fill("Secrets", `{"tsig_secret": "c2VjcmV0"}`)
	c.submit()
	if p := g.apiGet(t, "/api/v1/dns-providers/bind"); fmt.Sprint(p["secrets_set"]) != "[tsig_secret]" || p["secrets"] != nil {
		t.Fatalf("DNS provider bind: %v", p)
	}
	c.nav("Infrastructure", "AutoScale")
	c.do("waiting for the autoscale configs", chromedp.WaitVisible(shown+"//h1[normalize-space(.)='All AutoScale Configs']"))
	c.openForm("Add")
	c.fill("Name", "agents-a")
	c.choose("Pool", "agents")
	c.choose("Zone", "zone-a")
	c.tick("Enabled", false)
	c.fill("Standby Cores", "2")
	c.fill("Max Agents", "3")
	c.fill("Downscale Backoff", "10m")
	c.choose("VM Provider", "local")
	c.choose("DNS Provider", "bind")
	c.submit()
	if a := g.apiGet(t, "/api/v1/autoscale-configs/agents-a"); a["enabled"] != false || a["standby_cores"] != 2.0 ||
		a["max_agents"] != 3.0 || a["downscale_backoff"] != "10m0s" || a["dns_provider"] != "bind" {
		t.Fatalf("autoscale config after Add: %v", a)
	}
	c.nav("Infrastructure", "Pools")
	c.openForm("Edit", "agents")
	c.do("waiting for the pool's autoscale config", chromedp.WaitVisible(shown+"//div[contains(@class,'pool-autoscale')]//td[normalize-space(.)='agents-a']"))
	screenshot(t, c.ctx, "2b-pool-edit-autoscale")

	// ---- Workspaces: Add with its settings, JSON ones included; Edit.
	c.nav("Workspaces")
	c.openForm("Add")
	c.fill("Name", "demo")
	c.fill("Image", demoImage)
	c.fill("Cores", "0.1")
	c.fill("Memory (MiB)", "64")
	c.fill("Port", "8080")
	c.fill("Readiness Path", "/healthz")
	c.fill("Run Config", `{"environment": {"GREENROOM_DEMO_INIT_DELAY": "300ms"}}`)
	c.fill("Docker Exec Config", `{"assign": {"cmd": ["/demo-workspace", "assign"], "user": "root"}}`)
	c.submit()
	c.openForm("Edit", "demo")
	c.fill("Include Labels", "ssd")
	c.submit()
	ws := g.apiGet(t, "/api/v1/workspaces/demo")
	if fmt.Sprint(ws["include_labels"]) != "[ssd]" || ws["port"] != float64(8080) || ws["image"] != demoImage {
		t.Fatalf("workspace demo: %v", ws)
	}
	if rc, _ := ws["run_config"].(map[string]any); rc == nil || fmt.Sprint(rc["environment"]) != "map[GREENROOM_DEMO_INIT_DELAY:300ms]" {
		t.Fatalf("workspace demo run_config: %v", ws["run_config"])
	}

	// ---- Groups and Users, with their settings.
	c.nav("Groups")
	c.openForm("Add")
	c.fill("Name", "everyone")
	c.fill("Priority", "100")
	for _, p := range []string{"Allow Audio", "Allow Clipboard Down", "Allow Clipboard Up", "Allow Downloads", "Allow Microphone", "Allow Uploads", "Allow Gamepad"} {
		c.tick(p, true)
	}
	c.fill("Keepalive Expiration", "10m")
	c.submit()
	c.openForm("Add")
	c.fill("Name", "ssh")
	c.fill("Priority", "1")
	c.tick("Inject SSH Keys", true)
	c.submit()
	group := g.apiGet(t, "/api/v1/groups/everyone")
	for _, p := range permissions {
		if group[p] != true {
			t.Errorf("group everyone after Add: %s is %v", p, group[p])
		}
	}
	if group["priority"] != float64(100) || !strings.HasPrefix(fmt.Sprint(group["keepalive_expiration"]), "10m") {
		t.Errorf("group everyone after Add: %v", group)
	}
	for _, u := range []struct{ name, group string }{{"alice", "everyone"}, {"carol", "ssh"}} {
		c.nav("Users")
		c.openForm("Add")
		c.fill("Username", u.name)
		c.do("choosing the group", chromedp.Click(shown+"//fieldset[legend[normalize-space(.)='Groups']]//label[normalize-space(.)="+xq(u.group)+"]/input"))
		c.fill("Password", u.name+"-secret-pw")
		c.submit()
	}
	c.openForm("Edit", "alice")
	c.fill("Attributes", `{"department": "design"}`)
	c.submit()
	alice := g.apiGet(t, "/api/v1/users/alice")
	if fmt.Sprint(alice["groups"]) != "[everyone]" || alice["has_password"] != true || fmt.Sprint(alice["attributes"]) != "map[department:design]" {
		t.Fatalf("user alice: %v", alice)
	}
	if got := c.cell("alice", "Password"); got != "Yes" {
		t.Errorf("Users shows alice's password as %q", got)
	}

	// ---- Staging → Create New Config on a $request_host$ zone: refused at
	// the Zone field, as the API says.
	c.nav("Staging")
	c.openForm("Create New Config")
	c.choose("Zone", "zone-rh")
	c.choose("Workspace", "demo")
	c.fill("Desired Sessions", "2")
	c.click("Submit")
	c.waitFor("the refusal at the Zone field", fmt.Sprintf(`(%s) !== ""`, `document.querySelector("main > section:not([hidden]) .field[data-field=zone] .error").textContent`))
	if msg := c.fieldError("Zone"); !strings.Contains(msg, "$request_host$") {
		t.Errorf("the refusal at Zone says %q, want the $request_host$ rule", msg)
	}
	screenshot(t, c.ctx, "3-refused-at-zone")

	// ---- ... and on zone-a: Current Sessions reaches 2 on the page, live.
	c.choose("Zone", "zone-a")
	for _, p := range []string{"Allow Audio", "Allow Clipboard Down", "Allow Clipboard Up", "Allow Downloads", "Allow Microphone", "Allow Uploads", "Allow Gamepad"} {
		c.tick(p, true)
	}
	c.fill("Expiration (Hours)", "1")
	c.submit()
	_, list := g.call(http.MethodGet, "/api/v1/staging-configs", nil)
	items, _ := list["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("staging configs after Submit: %v", list)
	}
	sc := items[0].(map[string]any)
	id := sc["id"].(string)
	if sc["desired_sessions"] != float64(2) || sc["allow_gamepad"] != true || sc["expiration_hours"] != float64(1) {
		t.Fatalf("staging config: %v", sc)
	}
	refreshes := c.liveRefreshes()
	c.waitFor("Current Sessions 2 on the Staging page", fmt.Sprintf(`%s === "2"`, cellJS(id, "Current Sessions")))
	if c.liveRefreshes() == refreshes {
		t.Errorf("Current Sessions reached 2 without a live refresh: the page is not fed by the bus")
	}
	if g.staged(id) != 2 {
		t.Errorf("the page shows 2 current sessions, the database %d", g.staged(id))
	}
	if got := c.cell(id, "Desired Sessions"); got != "2" {
		t.Errorf("Desired Sessions on the page %q, want 2", got)
	}
	// The reconciler records "ok" on its next pass after the second
	// container is ready, which may come after the page shows 2 current
	// sessions: wait for that event to reach the page too.
	c.waitFor("Status ok on the Staging page", fmt.Sprintf(`%s === "ok"`, cellJS(id, "Status")))
	screenshot(t, c.ctx, "4-staging-current-2")
	// Edit next to it.
	c.openForm("Edit", "zone-a")
	c.fill("Desired Sessions", "1")
	c.submit()
	c.waitFor("Current Sessions back to 1", fmt.Sprintf(`%s === "1"`, cellJS(id, "Current Sessions")))

	// ---- Sessions: staged without a user; once assigned, the username.
	c.nav("Sessions")
	c.waitFor("a staged session without a user", `[...document.querySelectorAll("main > section:not([hidden]) tbody tr")].some((tr) => tr.textContent.includes("staged") && tr.children[1].textContent.trim() === "—")`)
	s, _ := g.session(t, "alice", "demo", "zone-a")
	aliceSession := s["id"].(string)
	c.waitFor("alice's session on the page", fmt.Sprintf(`%s === "alice"`, cellJS(aliceSession, "User")))
	if got := c.cell(aliceSession, "Origin"); got != "staged" {
		t.Errorf("alice's session origin on the page %q", got)
	}
	// carol's group injects SSH keys: on demand, with its reason and a
	// violation.
	s, _ = g.session(t, "carol", "demo", "zone-a")
	carolSession := s["id"].(string)
	c.waitFor("carol's on-demand session", fmt.Sprintf(`%s === "incompatible:inject_ssh_keys"`, cellJS(carolSession, "On Demand Reason")))
	screenshot(t, c.ctx, "5-sessions")
	c.rowAction("carol", "Destroy")
	c.rowAction("carol", "Confirm Destroy")
	apptest.Eventually(t, 60*time.Second, "carol's session destroyed", func() bool {
		return g.apiGet(t, "/api/v1/sessions/"+carolSession)["status"] == "destroyed"
	})
	c.waitFor("the ended session hidden", fmt.Sprintf(`!document.querySelector('main > section:not([hidden]) tbody tr[data-key=%q]')`, carolSession))
	c.tick("Hide ended sessions", false)
	c.waitFor("the ended session shown again", fmt.Sprintf(`%s === "destroyed"`, cellJS(carolSession, "Status")))

	// ---- Violations.
	c.nav("Violations")
	c.waitFor("carol's violation", `[...document.querySelectorAll("main > section:not([hidden]) tbody tr")].some((tr) => tr.textContent.includes("carol") && tr.textContent.includes("inject_ssh_keys"))`)
	screenshot(t, c.ctx, "6-violations")

	// ---- Pages: one row a page (?page_size=1), Next Page and First Page.
	c.do("opening the console with pages of one row", chromedp.Navigate(g.api.URL+"/?page_size=1#/zones"),
		chromedp.WaitVisible(shown+"//tbody/tr"))
	rows := func() string {
		text, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("main > section:not([hidden]) tbody tr")].map((tr) => tr.dataset.key).join(",")`))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	c.waitFor("zone-a alone on the first page", `document.querySelectorAll("main > section:not([hidden]) tbody tr").length === 1`)
	if got := rows(); got != "zone-a" {
		t.Fatalf("first page of zones: %q", got)
	}
	c.click("Next Page")
	c.waitFor("the second page", `[...document.querySelectorAll("main > section:not([hidden]) tbody tr")].map((tr) => tr.dataset.key).join(",") === "zone-rh"`)
	c.click("First Page")
	c.waitFor("the first page again", `[...document.querySelectorAll("main > section:not([hidden]) tbody tr")].map((tr) => tr.dataset.key).join(",") === "zone-a"`)

	// ---- Delete, with its confirmation: a zone (on the second page), and
	// the staging config.
	c.click("Next Page")
	c.waitFor("the second page", `[...document.querySelectorAll("main > section:not([hidden]) tbody tr")].map((tr) => tr.dataset.key).join(",") === "zone-rh"`)
	c.rowAction("zone-rh", "Delete")
	c.rowAction("zone-rh", "Confirm Delete")
	apptest.Eventually(t, 10*time.Second, "zone-rh deleted", func() bool {
		status, _ := g.call(http.MethodGet, "/api/v1/zones/zone-rh", nil)
		return status == http.StatusNotFound
	})
	c.nav("Staging")
	c.rowAction("zone-a", "Delete")
	c.rowAction("zone-a", "Confirm Delete")
	apptest.Eventually(t, 10*time.Second, "the staging config deleted", func() bool {
		status, _ := g.call(http.MethodGet, "/api/v1/staging-configs/"+id, nil)
		return status == http.StatusNotFound
	})
	c.waitFor("the staging table empty", `document.querySelectorAll("main > section:not([hidden]) tbody tr").length === 0`)
}

func (c *adminConsole) liveRefreshes() string {
	c.t.Helper()
	n, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](`document.body.dataset.liveRefreshes || "0"`))
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}
