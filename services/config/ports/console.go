package ports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The admin console: one page, rendered once from console/console.html
// with the views and forms of console_model.go, whose script
// (console/app.js, plain JavaScript, no build step) calls the API with the
// administrator's token, and keeps the page live from GET /api/v1/events.
// Everything is embedded in the binary.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP lets the page load its own script, styles and API and
// nothing else: no inline script or style, no other origin, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// navItem is one entry of the navigation: a view, or a menu of views.
type navItem struct {
	Label string
	View  consoleView
	Items []consoleView
}

// console serves the page at / and its files under /console/.
type console struct {
	page   []byte
	static http.Handler
	// etags are the console files' content hashes, by path under
	// /console/: a browser revalidates and gets 304 while they are the same.
	etags map[string]string
}

func newConsole(ctx context.Context) (*console, error) {
	views, err := buildConsole(ctx)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("console.html").Funcs(template.FuncMap{"join": strings.Join, "words": optionLabel}).
		ParseFS(consoleFiles, "console/console.html")
	if err != nil {
		return nil, fmt.Errorf("parsing the console template: %w", err)
	}
	var nav []navItem
	for _, v := range views {
		if v.Menu == "" {
			nav = append(nav, navItem{Label: v.Nav, View: v})
			continue
		}
		if n := len(nav); n > 0 && nav[n-1].Label == v.Menu {
			nav[n-1].Items = append(nav[n-1].Items, v)
			continue
		}
		nav = append(nav, navItem{Label: v.Menu, Items: []consoleView{v}})
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, map[string]any{"Views": views, "Nav": nav}); err != nil {
		return nil, fmt.Errorf("rendering the console: %w", err)
	}
	files, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		return nil, err
	}
	etags := map[string]string{}
	err = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags[path] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &console{page: page.Bytes(), static: http.StripPrefix("/console/", http.FileServerFS(files)), etags: etags}, nil
}

func consoleHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidated on each load, so that an upgrade shows at once.
	h.Set("Cache-Control", "no-cache")
}

// servePage serves GET /.
func (c *console) servePage(w http.ResponseWriter, _ *http.Request) {
	consoleHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(c.page)
}

// serveFile serves GET /console/{file}: the script and the style sheet.
func (c *console) serveFile(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, ".html") || strings.HasSuffix(r.URL.Path, "/") {
		http.NotFound(w, r) // the template is rendered at /, not served raw
		return
	}
	consoleHeaders(w)
	if etag, ok := c.etags[strings.TrimPrefix(r.URL.Path, "/console/")]; ok {
		w.Header().Set("ETag", etag) // http.FileServer answers If-None-Match with 304
	}
	c.static.ServeHTTP(w, r)
}

// optionLabel is how a choice of an enum reads ("docker_agent": "Docker
// Agent").
func optionLabel(value string) string {
	return labelOf(value)
}
