package service_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// page is one page of a list answer.
type page struct {
	Items      []obj  `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// walk reads every page of path (with its query) at limit items a page and
// returns the values of key of every item, in order, and the page count.
func (h *harness) walk(path, key string, limit int) ([]string, int) {
	h.t.Helper()
	var (
		got    []string
		pages  int
		cursor string
	)
	for {
		u, err := url.Parse(path)
		if err != nil {
			h.t.Fatal(err)
		}
		q := u.Query()
		q.Set("limit", fmt.Sprint(limit))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u.RawQuery = q.Encode()
		var p page
		h.must(200, "GET", u.String(), nil, &p)
		pages++
		if len(p.Items) > limit {
			h.t.Fatalf("page %d of %s has %d items, more than limit %d", pages, path, len(p.Items), limit)
		}
		for _, it := range p.Items {
			got = append(got, it.str(key))
		}
		if p.NextCursor == "" {
			return got, pages
		}
		if pages > 100 {
			h.t.Fatalf("%s: still a next page after 100 pages", path)
		}
		cursor = p.NextCursor
	}
}

func TestListsArePagedInOrderWithoutRepeatsOrGaps(t *testing.T) {
	h := newHarness(t)
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("zone-%02d", 6-i) // created out of order
		h.stagingZone(name)
		want = append(want, name)
	}
	slices.Sort(want)

	got, pages := h.walk("/api/v1/zones", "name", 3)
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("zones over pages of 3: %v in %d pages, want %v in 3", got, pages, want)
	}
	// A page that ends exactly at the end says so: no next cursor.
	if got, pages := h.walk("/api/v1/zones", "name", 7); len(got) != 7 || pages != 1 {
		t.Fatalf("7 zones at 7 a page: %d in %d pages, want 7 in 1", len(got), pages)
	}

	// Without ?limit= the default page holds them all.
	var all page
	h.must(200, "GET", "/api/v1/zones", nil, &all)
	if len(all.Items) != 7 || all.NextCursor != "" {
		t.Fatalf("default page: %d items, next %q", len(all.Items), all.NextCursor)
	}
}

func TestSessionsArePagedNewestFirstAndCanHideEndedOnes(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	var live, ended []string
	for i := range 5 {
		s := h.insertSession(w, fmt.Sprintf("req-%d", i), sessions.Running, "")
		live = append(live, s.ID)
	}
	for i := range 3 {
		s := h.insertSession(w, fmt.Sprintf("gone-%d", i), sessions.Running, "")
		if _, err := sessions.Transition(t.Context(), h.deps.DB, s.ID, sessions.Running, sessions.Destroying, sessions.Change{}); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Transition(t.Context(), h.deps.DB, s.ID, sessions.Destroying, sessions.Destroyed, sessions.Change{}); err != nil {
			t.Fatal(err)
		}
		ended = append(ended, s.ID)
	}

	all, pages := h.walk("/api/v1/sessions", "id", 2)
	if len(all) != 8 || pages != 4 {
		t.Fatalf("8 sessions at 2 a page: %d in %d pages", len(all), pages)
	}
	newestFirst := append(slices.Clone(live), ended...)
	slices.Reverse(newestFirst)
	if !slices.Equal(all, newestFirst) {
		t.Fatalf("sessions are not newest first:\n got %v\nwant %v", all, newestFirst)
	}

	notEnded, _ := h.walk("/api/v1/sessions?ended=false", "id", 2)
	slices.Reverse(live)
	if !slices.Equal(notEnded, live) {
		t.Fatalf("?ended=false: %v, want the live ones %v", notEnded, live)
	}
	onlyEnded, _ := h.walk("/api/v1/sessions?ended=true", "id", 10)
	if len(onlyEnded) != 3 {
		t.Fatalf("?ended=true: %v, want the 3 destroyed ones", onlyEnded)
	}
}

func TestBadPagesAreRefusedNamingTheParameter(t *testing.T) {
	h := newHarness(t)
	for _, q := range []string{"limit=0", "limit=1001", "limit=ten"} {
		h.problem(400, "limit", "GET", "/api/v1/workspaces?"+q, nil)
	}
	h.problem(400, "cursor", "GET", "/api/v1/workspaces?cursor=not-a-cursor", nil)
	h.problem(400, "ended", "GET", "/api/v1/sessions?ended=maybe", nil)

	// A cursor of another list (one sort column, where sessions have two)
	// and a made-up one of the right shape are refused, not a 500.
	h.stagingZone("zone-a")
	h.stagingZone("zone-b")
	var p page
	h.must(200, "GET", "/api/v1/zones?limit=1", nil, &p)
	if p.NextCursor == "" {
		t.Fatal("two zones at one a page: no next cursor")
	}
	h.problem(400, "cursor", "GET", "/api/v1/sessions?cursor="+p.NextCursor, nil)
	forged := "WyJub3QgYSB0aW1lIiwibm90IGEgdXVpZCJd" // ["not a time","not a uuid"]
	h.problem(400, "cursor", "GET", "/api/v1/sessions?cursor="+forged, nil)
}
