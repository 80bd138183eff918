package ports

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A form over maxFormBytes is answered 413 naming the limit, never read
// as empty fields (issue 15); one within it reaches the handler parsed.
func TestAFormOverTheLimitIs413(t *testing.T) {
	var got string
	h := boundedForms(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.PostFormValue("username") }))
	for _, tt := range []struct {
		path, body string
		status     int
	}{
		{"/login", "username=alice&password=" + strings.Repeat("x", maxFormBytes-len("username=alice&password=")), http.StatusOK},
		{"/login", "username=alice&password=" + strings.Repeat("x", maxFormBytes), http.StatusRequestEntityTooLarge},
		{"/launch", "workspace=" + strings.Repeat("x", 2*maxFormBytes), http.StatusRequestEntityTooLarge},
		{"/session/s-1/upload", strings.Repeat("x", 2*maxFormBytes), http.StatusOK}, // the container's
	} {
		got = ""
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("POST %s with %d bytes: %d, want %d", tt.path, len(tt.body), w.Code, tt.status)
		}
		if tt.status == http.StatusRequestEntityTooLarge && !strings.Contains(w.Body.String(), "64 KiB") {
			t.Errorf("the 413 does not name the limit: %q", w.Body)
		}
		if tt.status == http.StatusOK && tt.path == "/login" && got != "alice" {
			t.Errorf("the handler read username %q", got)
		}
	}
}
