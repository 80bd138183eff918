package service_test

// Scheduled desired sessions (issue 17): a staging config's schedule is
// validated entry by entry and for overlaps, stored and shown as written
// (time zone filled in), and read at the database's clock into
// effective_desired_sessions and schedule_active.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// scheduleEntry is one entry of a schedule body; tz "" leaves the time
// zone out.
func scheduleEntry(cron, tz, duration string, desired int) obj {
	e := obj{"cron": cron, "duration": duration, "desired_sessions": desired}
	if tz != "" {
		e["timezone"] = tz
	}
	return e
}

// withSchedule is a staging config body for eu/demo with desired sessions
// and a schedule.
func withSchedule(desired int, entries ...obj) obj {
	if entries == nil {
		entries = []obj{}
	}
	return obj{"zone": "eu", "workspace": "demo", "desired_sessions": desired, "schedule": entries}
}

func TestStagingScheduleBadEntryIsA400NamingItsField(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.world()
	weekdays := scheduleEntry("0 13 * * 1-5", "Europe/Berlin", "2h", 30)
	cases := []struct {
		name   string
		body   obj
		field  string
		detail string
	}{
		{"bad cron", withSchedule(2, scheduleEntry("0 13 * *", "", "1h", 3)), "schedule[0].cron", "is not a cron expression"},
		{"@every", withSchedule(2, scheduleEntry("@every 1h", "", "1h", 3)), "schedule[0].cron", "@every is not accepted"},
		{"unknown time zone", withSchedule(2, weekdays, scheduleEntry("0 9 * * *", "Europe/Atlantis", "1h", 3)), "schedule[1].timezone", "not an IANA time zone"},
		{"duration 30s", withSchedule(2, scheduleEntry("0 9 * * *", "", "30s", 3)), "schedule[0].duration", "at least 1m"},
		{"duration 90s", withSchedule(2, scheduleEntry("0 9 * * *", "", "90s", 3)), "schedule[0].duration", "whole number of minutes"},
		{"overlap", withSchedule(2, weekdays, scheduleEntry("30 14 * * 3", "Europe/Berlin", "1h", 10)), "schedule[1]", "overlaps schedule[0] on "},
		{"overlaps itself", withSchedule(2, scheduleEntry("*/30 * * * *", "", "45m", 1)), "schedule[0]", "overlaps itself on "},
		{"null", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 2, "schedule": nil}, "schedule", "must not be null"},
	}
	for _, c := range cases {
		p := h.problem(400, c.field, "POST", "/api/v1/staging-configs", c.body)
		if !strings.Contains(p.Errors[0].Detail, c.detail) {
			t.Errorf("%s: %s: %q, want it to say %q", c.name, p.Errors[0].Field, p.Errors[0].Detail, c.detail)
		}
	}

	// The same checks on PATCH, which replaces the whole schedule.
	sc := h.create("staging-configs", withSchedule(2, weekdays))
	p := h.problem(400, "schedule[1]", "PATCH", "/api/v1/staging-configs/"+sc.str("id"),
		obj{"schedule": []obj{weekdays, scheduleEntry("0 12 * * 5", "UTC", "1h", 5)}})
	// 13:00 in Berlin is 12:00 UTC in winter, 11:00 in summer: either
	// way a Friday's runs meet.
	if !strings.Contains(p.Errors[0].Detail, "overlaps schedule[0] on ") || !strings.HasSuffix(p.Errors[0].Detail, " UTC") {
		t.Errorf("PATCH overlap: %q", p.Errors[0].Detail)
	}
	h.problem(400, "schedule[0].desired_sessions", "PATCH", "/api/v1/staging-configs/"+sc.str("id"),
		obj{"schedule": []obj{scheduleEntry("0 9 * * *", "", "1h", -1)}})
	var got obj
	h.must(200, "GET", "/api/v1/staging-configs/"+sc.str("id"), nil, &got)
	if entries, _ := got["schedule"].([]any); len(entries) != 1 {
		t.Errorf("schedule after refused PATCHes: %v, want the one entry", got["schedule"])
	}
}

func TestStagingScheduleRoundTrips(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.world()
	// Two entries that are not in effect now: they start in 3 and 5
	// hours, for an hour.
	later := time.Now().UTC().Add(3 * time.Hour)
	evening := fmt.Sprintf("%d %d * * *", later.Minute(), later.Hour())
	berlin := time.Now().In(mustLocation(t, "Europe/Berlin")).Add(5 * time.Hour)
	night := fmt.Sprintf("%d %d * * *", berlin.Minute(), berlin.Hour())
	sc := h.create("staging-configs", withSchedule(2, scheduleEntry(evening, "", "1h", 4), scheduleEntry(night, "Europe/Berlin", "60m", 0)))
	want := []any{
		map[string]any{"cron": evening, "timezone": "UTC", "duration": "1h", "desired_sessions": float64(4)},
		map[string]any{"cron": night, "timezone": "Europe/Berlin", "duration": "60m", "desired_sessions": float64(0)},
	}
	check := func(what string, got obj, want []any) {
		t.Helper()
		if fmt.Sprint(got["schedule"]) != fmt.Sprint(want) {
			t.Errorf("%s: schedule %v, want %v", what, got["schedule"], want)
		}
		if got["effective_desired_sessions"] != got["desired_sessions"] || got["schedule_active"] != nil {
			t.Errorf("%s: effective_desired_sessions %v, schedule_active %v; want desired_sessions (%v) and null: no entry is in effect",
				what, got["effective_desired_sessions"], got["schedule_active"], got["desired_sessions"])
		}
	}
	check("POST", sc, want)
	var got obj
	h.must(200, "GET", "/api/v1/staging-configs/"+sc.str("id"), nil, &got)
	check("GET", got, want)
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/staging-configs", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("list: %v", list.Items)
	}
	check("list", list.Items[0], want)

	// A PATCH without schedule keeps it; [] removes it.
	h.must(200, "PATCH", "/api/v1/staging-configs/"+sc.str("id"), obj{"desired_sessions": 3}, &got)
	check("PATCH desired_sessions", got, want)
	h.must(200, "PATCH", "/api/v1/staging-configs/"+sc.str("id"), obj{"schedule": []obj{}}, &got)
	check("PATCH []", got, []any{})
	if got := h.create("staging-configs", obj{"zone": h.stagingZone("us").str("name"), "workspace": "demo", "desired_sessions": 1}); fmt.Sprint(got["schedule"]) != "[]" {
		t.Errorf("a config created without schedule has %v, want []", got["schedule"])
	}
}

// TestStagingScheduleEntryInEffectSetsEffectiveDesiredSessions: an entry
// whose run covers now replaces desired_sessions in
// effective_desired_sessions, and schedule_active names it.
func TestStagingScheduleEntryInEffectSetsEffectiveDesiredSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.world()
	// Started this minute on Berlin's clock, for 10 minutes.
	now := time.Now().In(mustLocation(t, "Europe/Berlin"))
	current := scheduleEntry(fmt.Sprintf("%d %d * * *", now.Minute(), now.Hour()), "Europe/Berlin", "10m", 7)
	later := now.Add(3 * time.Hour)
	notYet := scheduleEntry(fmt.Sprintf("%d %d * * *", later.Minute(), later.Hour()), "Europe/Berlin", "1h", 9)

	sc := h.create("staging-configs", withSchedule(2, notYet))
	if sc["effective_desired_sessions"] != float64(2) || sc["schedule_active"] != nil {
		t.Errorf("no entry in effect: effective %v, active %v; want 2, null", sc["effective_desired_sessions"], sc["schedule_active"])
	}
	id := sc.str("id")
	var got obj
	h.must(200, "PATCH", "/api/v1/staging-configs/"+id, obj{"schedule": []obj{notYet, current}}, &got)
	if got["effective_desired_sessions"] != float64(7) || got["schedule_active"] != float64(1) || got["desired_sessions"] != float64(2) {
		t.Errorf("entry 1 in effect: desired %v, effective %v, active %v; want 2, 7, 1",
			got["desired_sessions"], got["effective_desired_sessions"], got["schedule_active"])
	}
	h.must(200, "GET", "/api/v1/staging-configs/"+id, nil, &got)
	if got["effective_desired_sessions"] != float64(7) || got["schedule_active"] != float64(1) {
		t.Errorf("GET: effective %v, active %v; want 7, 1", got["effective_desired_sessions"], got["schedule_active"])
	}
	// Changing desired_sessions does not change what the run holds.
	h.must(200, "PATCH", "/api/v1/staging-configs/"+id, obj{"desired_sessions": 4}, &got)
	if got["effective_desired_sessions"] != float64(7) {
		t.Errorf("desired 4 during a run of 7: effective %v, want 7", got["effective_desired_sessions"])
	}
	h.must(200, "PATCH", "/api/v1/staging-configs/"+id, obj{"schedule": []obj{notYet}}, &got)
	if got["effective_desired_sessions"] != float64(4) || got["schedule_active"] != nil {
		t.Errorf("run removed: effective %v, active %v; want 4, null", got["effective_desired_sessions"], got["schedule_active"])
	}
}

func mustLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
