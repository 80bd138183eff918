// Package ports is how users reach the gateway over HTTP: the sign-in page
// (/login, /logout), the dashboard (/) and their sessions
// (/session/{id}/…, HTTP and WebSocket, proxied to the container), plus
// the operator endpoints.
package ports

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/gateway/app"
	"github.com/greenroom-dev/greenroom/services/gateway/domain"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// UserHeader carries the session's user to the container.
const UserHeader = "X-Greenroom-User"

// Config wires the handler.
type Config struct {
	Gateway *app.Gateway
	// Ops serves /healthz, /readyz and /metrics.
	Ops http.Handler
	Log *zap.Logger
	// Transport reaches the containers.
	Transport http.RoundTripper
	// SecureCookie makes the sign-in cookie Secure on plain HTTP too: the
	// gateway is behind a load balancer that terminates TLS.
	SecureCookie bool
}

type handler struct {
	gw           *app.Gateway
	log          *zap.Logger
	transport    http.RoundTripper
	secureCookie bool
}

// secure says whether the sign-in cookie is Secure: under TLS, or always
// when the gateway is behind a TLS-terminating load balancer.
func (h *handler) secure(r *http.Request) bool { return r.TLS != nil || h.secureCookie }

// NewHandler returns the gateway's HTTP handler.
func NewHandler(cfg Config) http.Handler {
	h := &handler{gw: cfg.Gateway, log: cfg.Log, transport: cfg.Transport, secureCookie: cfg.SecureCookie}
	if h.transport == nil {
		h.transport = http.DefaultTransport
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", cfg.Ops)
	mux.Handle("GET /readyz", cfg.Ops)
	mux.Handle("GET /metrics", cfg.Ops)
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("POST /launch", h.launch)
	mux.HandleFunc("POST /sessions/{id}/end", h.end)
	mux.HandleFunc(domain.SessionPrefix, h.session)
	mux.HandleFunc("GET /{$}", h.dashboard)
	return securityHeaders(sameOriginPosts(boundedForms(mux)))
}

// maxFormBytes bounds the body of the gateway's own forms (sign-in,
// launch, end, sign-out), which are a few fields.
const maxFormBytes = 64 << 10

// boundedForms reads the form of a POST to the gateway's own pages (not a
// session's, which the container answers) up to maxFormBytes: a larger
// body is answered 413, a malformed one 400, instead of being read as
// empty fields.
func boundedForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !strings.HasPrefix(r.URL.Path, domain.SessionPrefix) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
					http.Error(w, fmt.Sprintf("the form is larger than the limit of %d KiB", maxFormBytes>>10), http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "malformed form: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// sameOriginPosts refuses a POST whose Origin is another site: the forms
// of the gateway's pages only (with the SameSite cookie, no other site can
// sign a user out, launch or end a session in their name).
func sameOriginPosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !strings.HasPrefix(r.URL.Path, domain.SessionPrefix) {
			if o := r.Header.Get("Origin"); o != "" && !domain.OriginAllowed(o, r.Host, domain.RequestHost) {
				http.Error(w, "a form of another site", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders keeps the gateway's own pages out of frames of other
// sites. Proxied pages keep the container's headers.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, domain.SessionPrefix) {
			w.Header().Set("X-Frame-Options", "DENY")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		}
		next.ServeHTTP(w, r)
	})
}

// token is the request's sign-in token: the cookie, or a bearer token
// (for clients that are not browsers).
func token(r *http.Request) string {
	if c, err := r.Cookie(signin.CookieName); err == nil && c.Value != "" {
		return c.Value
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return ""
}

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// localPath is next when it is a path on this site, else "/": no scheme
// or host, no backslash and no control character (browsers drop tabs and
// newlines from URLs, so "/\t/evil.example" would become "//evil.example").
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

type loginData struct {
	Next, User, Error string
}

func (h *handler) render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		h.log.Warn("rendering a page", zap.String("page", page), zap.Error(err))
	}
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "login.html", loginData{Next: localPath(r.URL.Query().Get("next"))})
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	user, password, next := r.PostFormValue("username"), r.PostFormValue("password"), localPath(r.PostFormValue("next"))
	tok, expires, err := h.gw.SignIn(r.Context(), user, password, clientOf(r))
	switch {
	case errors.Is(err, app.ErrTooManyAttempts):
		w.Header().Set("Retry-After", strconv.Itoa(int(h.gw.Config().FailedSignInEvery.Seconds())+1))
		h.render(w, http.StatusTooManyRequests, "login.html", loginData{Next: next, User: user, Error: err.Error()})
		return
	case errors.Is(err, signin.ErrBadCredentials):
		h.render(w, http.StatusUnauthorized, "login.html", loginData{Next: next, User: user, Error: "Unknown user or wrong password."})
		return
	case err != nil:
		h.log.Error("sign-in failed", zap.Error(err))
		http.Error(w, "sign-in failed", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signin.CookieName, Value: tok, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if t := token(r); t != "" {
		if err := h.gw.SignOut(r.Context(), t); err != nil {
			h.log.Warn("sign-out", zap.Error(err))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: signin.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.secure(r)})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type dashboardData struct {
	User       string
	Workspaces []app.Workspace
	Sessions   []app.SessionSummary
	Error      string
}

// signedIn returns the request's user, or answers (a redirect to the
// sign-in page) and returns false.
func (h *handler) signedIn(w http.ResponseWriter, r *http.Request) (signin.User, bool) {
	u, err := h.gw.CurrentUser(r.Context(), token(r))
	if errors.Is(err, app.ErrUnauthorized) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return u, false
	}
	if err != nil {
		h.fail(w, err)
		return u, false
	}
	return u, true
}

func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	u, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.renderDashboard(w, r, u, http.StatusOK, "")
}

func (h *handler) renderDashboard(w http.ResponseWriter, r *http.Request, u signin.User, status int, problem string) {
	list, err := h.gw.Sessions(r.Context(), u.ID)
	if err != nil {
		h.fail(w, err)
		return
	}
	tiles, err := h.gw.Workspaces(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, status, "dashboard.html", dashboardData{User: u.Name, Workspaces: tiles, Sessions: list, Error: problem})
}

// launchTimeout bounds the wait for a launched session (a staged one is
// handed over in milliseconds; one made on demand takes seconds).
const launchTimeout = 90 * time.Second

// launch requests a session of the tile's workspace and opens it.
func (h *handler) launch(w http.ResponseWriter, r *http.Request) {
	u, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), launchTimeout)
	defer cancel()
	l, err := h.gw.Launch(ctx, u, r.PostFormValue("workspace"), r.Host)
	if err != nil {
		h.log.Info("launch failed", zap.String("user", u.Name), zap.Error(err))
		h.renderDashboard(w, r, u, http.StatusServiceUnavailable, "Could not start "+r.PostFormValue("workspace")+": "+err.Error())
		return
	}
	// The session's url is on its zone's domain (an alternate zone's may
	// be another); a fixed server's session (tcp://…) is listed, not
	// opened.
	target := l.URL
	if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		target = "/"
	} else if domain.ServedOn(r.Host, u.Host) {
		target = domain.SessionPrefix + l.SessionID + "/"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// end ends one of the user's sessions.
func (h *handler) end(w http.ResponseWriter, r *http.Request) {
	u, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	switch err := h.gw.End(r.Context(), u, r.PathValue("id")); {
	case errors.Is(err, app.ErrUnknownSession):
		http.Error(w, "no such session", http.StatusNotFound)
	case errors.Is(err, app.ErrForbidden):
		http.Error(w, err.Error(), http.StatusForbidden)
	case err != nil:
		h.fail(w, err)
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	h.log.Error("request failed", zap.Error(err))
	http.Error(w, "the gateway could not serve this request", http.StatusInternalServerError)
}

// session proxies a request for /session/{id}/… to the session's
// container, for the session's user only.
func (h *handler) session(w http.ResponseWriter, r *http.Request) {
	// The escaped path, so that an encoded slash stays one for the
	// container.
	id, rest, ok := domain.SessionPath(r.URL.EscapedPath())
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rest == "" {
		http.Redirect(w, r, domain.SessionPrefix+id+"/", http.StatusMovedPermanently)
		return
	}
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	grant, err := h.gw.Authorize(r.Context(), app.Request{SessionID: id, Token: token(r), Host: r.Host,
		Origin: r.Header.Get("Origin"), Upgrade: upgrade})
	switch {
	case errors.Is(err, app.ErrUnknownSession):
		http.Error(w, "no such session", http.StatusNotFound)
		return
	case errors.Is(err, app.ErrWrongDomain):
		http.Error(w, err.Error(), http.StatusMisdirectedRequest)
		return
	case errors.Is(err, app.ErrForeignOrigin), errors.Is(err, app.ErrForbidden):
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case errors.Is(err, app.ErrUnauthorized):
		if r.Method == http.MethodGet && !upgrade {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	case err != nil:
		h.log.Warn("cannot authorize a session request", zap.String("session_id", id), zap.Error(err))
		http.Error(w, "the session's sign-in could not be checked", http.StatusBadGateway)
		return
	}

	// Traffic keeps the session alive. An open WebSocket (a desktop being
	// watched) keeps it alive for as long as it is open and its user may
	// still use it: it is checked again each period, and closed once the
	// sign-in ended or the session is no longer its user's.
	tok := token(r)
	h.gw.Touch(id)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if upgrade {
		go func() {
			t := time.NewTicker(h.gw.Config().KeepaliveEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := h.gw.Authorize(ctx, app.Request{SessionID: id, Token: tok, Host: r.Host,
						Origin: r.Header.Get("Origin"), Upgrade: true}); err != nil {
						h.log.Info("closing a WebSocket whose session its user may no longer use",
							zap.String("session_id", id), zap.Error(err))
						cancel()
						return
					}
					h.gw.Touch(id)
				}
			}
		}()
	}
	proxy := &httputil.ReverseProxy{
		Transport: h.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out = pr.Out.WithContext(ctx) // cancelling it closes an upgraded connection
			pr.SetURL(grant.Upstream)
			pr.Out.URL.RawPath = rest
			pr.Out.URL.Path, _ = url.PathUnescape(rest)
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Prefix", domain.SessionPrefix+id)
			// The user is the gateway's to say: drop the client's, under
			// any spelling a CGI-style server would read as the same.
			for name := range pr.Out.Header {
				if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), UserHeader) {
					pr.Out.Header.Del(name)
				}
			}
			pr.Out.Header.Set(UserHeader, grant.User)
			// The user's sign-in is the gateway's, never the container's.
			if pr.Out.Header.Get("Authorization") == "Bearer "+tok {
				pr.Out.Header.Del("Authorization")
			}
			withoutSignIn(pr.Out.Header)
		},
		// A container may not set the gateway's cookie nor claim the
		// gateway's pages for a service worker: it is served on the
		// gateway's origin.
		ModifyResponse: func(res *http.Response) error {
			res.Header.Del("Service-Worker-Allowed")
			kept := res.Header.Values("Set-Cookie")[:0:0]
			for _, c := range res.Header.Values("Set-Cookie") {
				if !isSignInCookie(c) {
					kept = append(kept, c)
				}
			}
			res.Header.Del("Set-Cookie")
			for _, c := range kept {
				res.Header.Add("Set-Cookie", c)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.log.Warn("the session's container did not answer", zap.String("session_id", id), zap.Error(err))
			http.Error(w, "the session's container did not answer", http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// isSignInCookie says whether a cookie, as a Cookie header's name=value
// pair or a Set-Cookie value, is the gateway's sign-in cookie.
func isSignInCookie(c string) bool {
	name, _, _ := strings.Cut(c, "=")
	return strings.TrimSpace(name) == signin.CookieName
}

// withoutSignIn removes the sign-in cookie from a request's Cookie
// headers, leaving the others exactly as the browser wrote them.
func withoutSignIn(h http.Header) {
	var kept []string
	for _, line := range h.Values("Cookie") {
		var parts []string
		for _, part := range strings.Split(line, ";") {
			if !isSignInCookie(part) {
				// Only the blanks a cookie parser trims (net/http's:
				// space and tab), so that a part it would skip ("x\v")
				// does not become a cookie the container reads.
				parts = append(parts, strings.Trim(part, " \t"))
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	h.Del("Cookie")
	for _, line := range kept {
		h.Add("Cookie", line)
	}
}
