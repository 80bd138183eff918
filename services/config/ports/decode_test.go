package ports

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// A body over maxBodyBytes is answered 413 with a problem naming the limit
// (issue 15); one at the limit is read.
func TestABodyOverTheLimitIs413NamingTheLimit(t *testing.T) {
	rs := responder{log: zap.NewNop()}
	at := `{"name":"` + strings.Repeat("a", maxBodyBytes-len(`{"name":""}`)) + `"}`
	for _, tt := range []struct {
		body   string
		status int
	}{
		{at, 0},
		{at + " ", http.StatusRequestEntityTooLarge},
		{strings.Repeat("x", 3*maxBodyBytes), http.StatusRequestEntityTooLarge},
		{`{"name":1}`, http.StatusBadRequest},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/zones", strings.NewReader(tt.body))
		_, ok := decode[domain.ZoneCreate](rs, w, r)
		if tt.status == 0 {
			if !ok {
				t.Errorf("a body of %d bytes (the limit) was refused: %d %s", len(tt.body), w.Code, w.Body)
			}
			continue
		}
		if ok || w.Code != tt.status {
			t.Fatalf("a body of %d bytes: ok %v, status %d, want %d", len(tt.body), ok, w.Code, tt.status)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type %q", ct)
		}
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Status != tt.status || p.Title != http.StatusText(tt.status) {
			t.Errorf("problem %+v", p)
		}
		if tt.status == http.StatusRequestEntityTooLarge && !strings.Contains(p.Detail, strconv.Itoa(maxBodyBytes)) {
			t.Errorf("the detail %q does not name the limit", p.Detail)
		}
	}
}
