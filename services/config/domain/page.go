package domain

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// Every list of the API is paginated by keyset: a page holds at most Limit
// items in the list's order, and the cursor of the next page is the sort
// key of the last item of this one, so a page is one index range scan
// however far in the list it is, and rows inserted meanwhile neither repeat
// nor shift an item off the page.
const (
	// DefaultPageLimit is the page size without ?limit=.
	DefaultPageLimit = 100
	// MaxPageLimit is the largest ?limit= accepted.
	MaxPageLimit = 1000
)

// Page selects one page of a list: at most Limit items after the item
// whose sort key is After (the first page when After is empty).
type Page struct {
	Limit int
	After []string
}

// Paged is one page of a list and the sort key of its last item when more
// items follow (empty on the last page).
type Paged[T any] struct {
	Items []T
	Next  []string
}

// ParsePage reads the ?limit= and ?cursor= query parameters.
func ParsePage(limit, cursor string) (Page, FieldErrors) {
	var errs FieldErrors
	p := Page{Limit: DefaultPageLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxPageLimit {
			errs.Add("limit", "must be a whole number from 1 to %d", MaxPageLimit)
		}
		p.Limit = n
	}
	if cursor != "" {
		after, ok := decodeCursor(cursor)
		if !ok {
			errs.Add("cursor", "is not a cursor this API gave out (use next_cursor of the previous page as it is)")
		}
		p.After = after
	}
	return p, errs
}

// Cursor is the opaque ?cursor= of the page after the one whose last
// item's sort key is key ("" when key is empty: no next page).
func Cursor(key []string) string {
	if len(key) == 0 {
		return ""
	}
	b, _ := json.Marshal(key) // a []string always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) ([]string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	var key []string
	if err := json.Unmarshal(b, &key); err != nil || len(key) == 0 {
		return nil, false
	}
	return key, true
}
