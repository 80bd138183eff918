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
		Handler:           newHandler(cfg.statePath, cfg.sessionID),
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
func newHandler(statePath, sessionID string) http.Handler {
	current := func(w http.ResponseWriter) (state, bool) {
		st, err := readState(statePath)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return st, false
		}
		st.SessionID = sessionID // the container's own id is authoritative
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
{{if .User -}}
<p id="status">Assigned to {{.User}}{{if .UserID}} (user id {{.UserID}}){{end}}{{with .AssignedAt}} at {{.Format "2006-01-02 15:04:05 MST"}}{{end}}</p>
{{- else -}}
<p id="status">Staged: unassigned, waiting for a user.</p>
{{- end}}
</body>
</html>
`))
