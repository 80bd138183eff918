package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/greenroom-dev/greenroom/libs/apptest"
)

// browserFor starts a headless Chromium (Debian's chromium package; .ci/run
// installs it) of its own, with its own profile, for one user. The zone's
// domain resolves to the gateway, as DNS would.
func browserFor(t *testing.T, g *greenroom) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser test needs Chromium (apt-get install chromium; .ci/run installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("host-resolver-rules", "MAP "+zoneDomain+" 127.0.0.1"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox as root (CI containers)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// screenshot writes the page as name.png under the test's output folder
// (go test -artifacts keeps it).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Errorf("writing %s: %v", file, err)
	}
}

func signInWithBrowser(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), user+"-secret-pw"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("user")),
	); err != nil {
		t.Fatalf("%s signing in: %v", user, err)
	}
	if who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("user"))); err != nil || who != user {
		t.Fatalf("signed in as %q (%v), want %s", who, err, user)
	}
}

// TestInABrowserAliceLaunchesTheDemoTileBobIsRefusedAndAliceEndsIt
// (issue 13, point 7): a real headless Chromium signs alice in at the
// gateway, clicks the demo tile and gets the staged session's page naming
// her; bob, signed in in his own browser, gets 403 on it; alice ends it
// from her dashboard and its container goes.
func TestInABrowserAliceLaunchesTheDemoTileBobIsRefusedAndAliceEndsIt(t *testing.T) {
	g := start(t)
	g.gatewayWorld(t)
	base := "http://" + net.JoinHostPort(zoneDomain, mustURL(t, g.gw.URL).Port())

	alice := browserFor(t, g)
	signInWithBrowser(t, alice, base, "alice")
	screenshot(t, alice, "1-alice-dashboard")

	clicked := time.Now()
	if err := chromedp.Do(alice,
		chromedp.Click(chromedp.CSS(`button.tile[data-workspace="demo"]`)),
		chromedp.WaitVisible(chromedp.ID("status")),
	); err != nil {
		t.Fatalf("alice launching the demo tile: %v", err)
	}
	tookToPage := time.Since(clicked)
	status, err := chromedp.Run(alice, chromedp.Text(chromedp.ID("status")))
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := chromedp.Run(alice, chromedp.Text(chromedp.ID("viewer")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, "Assigned to alice") || !strings.Contains(viewer, "alice") {
		t.Fatalf("the session page says %q / %q, want it assigned to and viewed by alice", status, viewer)
	}
	sessionURL, err := chromedp.Run(alice, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("browser: click on the demo tile → the session page naming alice in %s (a staged session, handed over)", tookToPage.Round(time.Millisecond))
	screenshot(t, alice, "2-alice-session")
	id := strings.TrimSuffix(strings.TrimPrefix(mustURL(t, sessionURL).Path, "/session/"), "/")
	var origin string
	if err := g.env.DB.Get(&origin, `SELECT origin FROM sessions WHERE id = $1`, id); err != nil || origin != "staged" {
		t.Errorf("the tile's session %s is %q (%v), want a staged one", id, origin, err)
	}

	bob := browserFor(t, g)
	signInWithBrowser(t, bob, base, "bob")
	res, err := chromedp.Run(bob, chromedp.NavigateResponse(sessionURL))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 403 {
		t.Errorf("bob opening alice's session: %d, want 403", res.Status)
	}
	screenshot(t, bob, "3-bob-refused")

	var container string
	if err := g.env.DB.Get(&container, `SELECT container_id FROM sessions WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(alice, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	// The End form posts and the dashboard comes back: wait for that page,
	// not for an element the old one had too.
	ended, err := chromedp.RunResponse(alice, chromedp.Click(chromedp.CSS(`tr[data-session="`+id+`"] button`)))
	if err != nil || ended.Status != 200 || !strings.HasSuffix(ended.URL, "/") {
		t.Fatalf("alice ending her session: %v %v", ended, err)
	}
	screenshot(t, alice, "4-alice-ended")
	apptest.Eventually(t, 60*time.Second, "the ended session's container gone", func() bool {
		out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "id="+container).Output()
		return err == nil && strings.TrimSpace(string(out)) == ""
	})
}
