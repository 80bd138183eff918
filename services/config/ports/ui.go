package ports

import (
	_ "embed"
	"net/http"
)

// adminPage is the admin web UI: one page that asks for the admin token and
// then shows zones, workspaces, pools and their members, staging configs and
// sessions from the API, refreshed every two seconds. Vanilla JS, no build
// step.
//
//go:embed ui/index.html
var adminPage []byte

func adminUI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	_, _ = w.Write(adminPage)
}
