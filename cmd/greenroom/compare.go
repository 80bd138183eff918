package main

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"time"
)

// unorderedFields are list fields whose order means nothing (the API may
// answer them sorted): apply compares them as sets.
var unorderedFields = map[string]bool{
	"groups": true, "labels": true, "include_labels": true, "exclude_labels": true,
	"allowed_domains": true, "denied_domains": true, "scopes": true,
}

// durationFields are read back in Go's canonical form (`8h` as `8h0m0s`):
// apply compares them as durations.
var durationFields = map[string]bool{"session_time_limit": true, "keepalive_expiration": true, "downscale_backoff": true}

// sameValue reports whether a file's value want of field equals the API's
// value have. Null, an empty list and an empty object are the same (the
// API answers [] or {} for what was never set).
func sameValue(field string, want, have any) bool {
	want, have = emptyToNil(want), emptyToNil(have)
	if durationFields[field] {
		if a, ok := want.(string); ok {
			if b, ok := have.(string); ok {
				da, errA := time.ParseDuration(a)
				db, errB := time.ParseDuration(b)
				if errA == nil && errB == nil {
					return da == db
				}
			}
		}
	}
	if unorderedFields[field] {
		want, have = sortedList(want), sortedList(have)
	}
	if field == "schedule" {
		want, have = scheduleAsStored(want), scheduleAsStored(have)
	}
	return reflect.DeepEqual(want, have)
}

// scheduleAsStored is a staging config's schedule as the API stores it:
// an entry's timezone defaults to UTC, and its duration is compared as a
// duration ("2h" is "2h0m0s"). Other values pass.
func scheduleAsStored(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(list))
	for i, e := range list {
		entry, ok := e.(map[string]any)
		if !ok {
			out[i] = e
			continue
		}
		norm := maps.Clone(entry)
		if tz, ok := norm["timezone"]; !ok || tz == nil || tz == "" {
			norm["timezone"] = "UTC"
		}
		if d, ok := norm["duration"].(string); ok {
			if parsed, err := time.ParseDuration(d); err == nil {
				norm["duration"] = parsed.String()
			}
		}
		out[i] = norm
	}
	return out
}

func emptyToNil(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

// sortedList returns a sorted copy of a list; other values pass.
func sortedList(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := slices.Clone(list)
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

// fieldDiff is what apply changes of an existing resource.
type fieldDiff struct {
	// Patch is the body of the PATCH: the fields that differ and the
	// write-only ones the file gives. Empty: nothing to send.
	Patch map[string]any
	// Changed lists the fields whose value differs, sorted.
	Changed []string
	// WriteOnly lists the write-only fields the file gives (a user's
	// password): the API never answers them, so they cannot be compared
	// and are sent every time.
	WriteOnly []string
}

// diff compares the fields of r with the API's object have.
func diff(r resource, fs fieldSets, have map[string]any) (fieldDiff, error) {
	d := fieldDiff{Patch: map[string]any{}}
	names := make([]string, 0, len(r.Fields))
	for f := range r.Fields {
		if !slices.Contains(r.Kind.Key, f) {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	for _, f := range names {
		want := r.Fields[f]
		switch {
		case fs.writeOnly(f):
			if !fs.Update[f] {
				continue // given on create only
			}
			d.Patch[f] = want
			d.WriteOnly = append(d.WriteOnly, f)
		case sameValue(f, want, have[f]):
		case !fs.Update[f]:
			return fieldDiff{}, fmt.Errorf("%s: field %s differs (%v, the API has %v) but cannot be changed: delete %s and apply again",
				r, f, want, have[f], r)
		default:
			d.Patch[f] = want
			d.Changed = append(d.Changed, f)
		}
	}
	return d, nil
}
