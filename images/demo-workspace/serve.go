package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
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
	// assignSecret is the bearer token of the HTTP assign hook
	// (GREENROOM_ASSIGN_SECRET); empty turns the hook off. Never logged.
	assignSecret string
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
		// Read once: the variable stays in the environment (docker exec
		// inherits it), but the server never looks it up again.
		assignSecret: getenv("GREENROOM_ASSIGN_SECRET"),
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

// newHandler serves the page, the health check, the state API and the HTTP
// assign hook. The state file is read on every request because the exec
// "assign" runs in another process.
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
		// Through Greenroom's gateway the page also says who is looking.
		if err := pageTemplate.Execute(w, page{state: st, Viewer: r.Header.Get("X-Greenroom-User")}); err != nil {
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
	mux.Handle("POST "+assignHookPath, newAssignHook(cfg))
	return mux
}

// assignHookPath is where the HTTP assign hook listens: the path the demo
// workspace's assign_hook names.
const assignHookPath = "/.greenroom/assign"

// maxAssignBody bounds the assign hook's request body.
const maxAssignBody = 64 << 10

// assignRequest is the body Greenroom POSTs to the assign hook. Permissions
// and environment are accepted but not used by the demo; unknown fields are
// ignored so that Greenroom may add some.
type assignRequest struct {
	SessionID   string          `json:"session_id"`
	User        string          `json:"user"`
	UserID      string          `json:"user_id"`
	Permissions json.RawMessage `json:"permissions"`
	Environment json.RawMessage `json:"environment"`
}

// newAssignHook is the HTTP assign hook, POST /.greenroom/assign: Greenroom
// hands the staged container to a user by posting the assignment with
// "Authorization: Bearer $GREENROOM_ASSIGN_SECRET". It records exactly what
// the exec "assign" subcommand records and answers at once; the only I/O is
// the state file. Neither the secret nor the Authorization header is ever
// logged or echoed.
func newAssignHook(cfg serverConfig) http.Handler {
	// The secret's digest, so that the comparison takes the same time
	// whatever the length of the token presented.
	want := sha256.Sum256([]byte(cfg.assignSecret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.assignSecret == "" {
			hookAnswer(w, http.StatusNotFound, "the assign hook is off: GREENROOM_ASSIGN_SECRET is not set in the container's environment")
			return
		}
		token, ok := bearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			hookAnswer(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}

		var req assignRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAssignBody))
		err := dec.Decode(&req)
		if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
			err = errors.New("more than one JSON value")
		}
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				hookAnswer(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxAssignBody))
				return
			}
			hookAnswer(w, http.StatusBadRequest, "body is not a JSON assignment: "+err.Error())
			return
		}
		if req.User == "" {
			hookAnswer(w, http.StatusBadRequest, `no "user" in the assignment`)
			return
		}
		if req.SessionID != "" && cfg.sessionID != "" && req.SessionID != cfg.sessionID {
			hookAnswer(w, http.StatusConflict, fmt.Sprintf("this container belongs to session %q, not %q", cfg.sessionID, req.SessionID))
			return
		}
		if _, err := recordAssignment(cfg.statePath, cfg.sessionID, req.User, req.UserID); err != nil {
			log.Printf("assign hook: %v", err)
			hookAnswer(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, `{"assigned": true}`+"\n")
	})
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN" header
// (the scheme is case-insensitive).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// hookAnswer writes an assign hook failure as {"assigned": false, "error": msg}.
func hookAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Assigned bool   `json:"assigned"`
		Error    string `json:"error"`
	}{false, msg})
}

// page is what the page shows: the state, and the user the gateway says
// is looking (X-Greenroom-User), if any.
type page struct {
	state
	Viewer string
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
{{with .Viewer -}}
<p id="viewer">Viewed through the gateway by {{.}}</p>
{{end -}}
{{with .WebFilter -}}
<p id="web-filter">Web filter policy {{.Name}}: {{if .DefaultAllow}}allows{{else}}denies{{end}} by default{{with .AllowedDomains}}; allowed: {{range $i, $d := .}}{{if $i}}, {{end}}{{$d}}{{end}}{{end}}{{with .DeniedDomains}}; denied: {{range $i, $d := .}}{{if $i}}, {{end}}{{$d}}{{end}}{{end}}</p>
{{- else -}}
<p id="web-filter">No web filter policy.</p>
{{- end}}
</body>
</html>
`))
