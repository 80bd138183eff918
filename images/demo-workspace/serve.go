package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

const defaultInitDelay = 3 * time.Second

// serverConfig is everything serve needs, read from the environment once.
type serverConfig struct {
	addr      string        // listen address, ":" + $PORT
	delay     time.Duration // initialisation delay before the port opens
	statePath string        // file written by assign
	sessionID string        // shown on the page; may be empty
	// user and userID are the session's user when the container was made
	// for one (on demand); empty for a staged container until assign.
	user, userID string
	// webFilter is the web filter policy, JSON; empty for none.
	webFilter string
}

// configFromEnv reads the server configuration; a malformed delay is an
// error rather than a silent fallback, so a typo in a workspace's
// environment shows up at once.
func configFromEnv(getenv func(string) string) (serverConfig, error) {
	delay, err := parseDelay(getenv("GREENROOM_DEMO_INIT_DELAY"))
	if err != nil {
		return serverConfig{}, err
	}
	return serverConfig{
		addr:      ":" + getenvDefault(getenv, "PORT", "8080"),
		delay:     delay,
		statePath: getenvDefault(getenv, "GREENROOM_DEMO_STATE", defaultStatePath),
		sessionID: getenv("GREENROOM_SESSION_ID"),
		user:      getenv("GREENROOM_USER"),
		userID:    getenv("GREENROOM_USER_ID"),
		webFilter: getenv("GREENROOM_WEB_FILTER"),
	}, nil
}

// parseDelay parses GREENROOM_DEMO_INIT_DELAY; empty means the default.
func parseDelay(s string) (time.Duration, error) {
	if s == "" {
		return defaultInitDelay, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("GREENROOM_DEMO_INIT_DELAY=%q is not a duration such as 3s or 500ms", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("GREENROOM_DEMO_INIT_DELAY=%q is negative", s)
	}
	return d, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := configFromEnv(getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log.New(stderr, "demo-workspace: ", log.LstdFlags), nil)
}

// serve waits out the initialisation delay, then serves HTTP until ctx is
// cancelled. The port is deliberately not opened before the delay ends, so
// TCP and HTTP readiness probes both fail until the workspace is "ready".
// onListen, if not nil, is told the bound address (tests listen on port 0).
func serve(ctx context.Context, cfg serverConfig, logger *log.Logger, onListen func(net.Addr)) error {
	logger.Printf("initialising for %s", cfg.delay)
	timer := time.NewTimer(cfg.delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		logger.Print("stopped during initialisation")
		return nil
	case <-timer.C:
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	logger.Printf("listening on %s", ln.Addr())
	if onListen != nil {
		onListen(ln.Addr())
	}

	srv := &http.Server{
		Handler:           newHandler(cfg),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// docker stop sends SIGKILL after 10 s by default; finish well before.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	logger.Print("stopped")
	return err
}

// newHandler serves the page, the health check and the state API. The state
// file is read on every request because assign runs in another process.
func newHandler(cfg serverConfig) http.Handler {
	var filter *webFilter
	if cfg.webFilter != "" {
		filter = &webFilter{}
		if err := json.Unmarshal([]byte(cfg.webFilter), filter); err != nil {
			log.Printf("GREENROOM_WEB_FILTER is not a policy: %v", err)
			filter = nil
		}
	}
	current := func(w http.ResponseWriter) (state, bool) {
		st, err := readState(cfg.statePath)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return st, false
		}
		st.SessionID = cfg.sessionID // the container's own id is authoritative
		if st.User == "" && cfg.user != "" {
			// Made for its user (on demand): no assign ever runs.
			st.User, st.UserID, st.FromCreation = cfg.user, cfg.userID, true
		}
		st.WebFilter = filter
		w.Header().Set("Cache-Control", "no-store")
		return st, true
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := current(w)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pageTemplate.Execute(w, st); err != nil {
			log.Printf("render page: %v", err)
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		st, ok := current(w)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	return mux
}

// pageTemplate is html/template so a user name can never inject markup.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Greenroom demo workspace</title>
</head>
<body>
<h1>Greenroom demo workspace</h1>
<p>Session: <code>{{if .SessionID}}{{.SessionID}}{{else}}(none){{end}}</code></p>
{{if .FromCreation -}}
<p id="status">Created for {{.User}}{{if .UserID}} (user id {{.UserID}}){{end}} on demand</p>
{{- else if .User -}}
<p id="status">Assigned to {{.User}}{{if .UserID}} (user id {{.UserID}}){{end}}{{with .AssignedAt}} at {{.Format "2006-01-02 15:04:05 MST"}}{{end}}</p>
{{- else -}}
<p id="status">Staged: unassigned, waiting for a user.</p>
{{- end}}
{{with .WebFilter -}}
<p id="web-filter">Web filter policy {{.Name}}: {{if .DefaultAllow}}allows{{else}}denies{{end}} by default{{with .AllowedDomains}}; allowed: {{range $i, $d := .}}{{if $i}}, {{end}}{{$d}}{{end}}{{end}}{{with .DeniedDomains}}; denied: {{range $i, $d := .}}{{if $i}}, {{end}}{{$d}}{{end}}{{end}}</p>
{{- else -}}
<p id="web-filter">No web filter policy.</p>
{{- end}}
</body>
</html>
`))
