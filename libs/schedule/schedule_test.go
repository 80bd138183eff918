package schedule

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// mustParse parses a schedule that must be valid.
func mustParse(t testing.TB, raw string) Schedule {
	t.Helper()
	s, errs := Parse([]byte(raw))
	if len(errs) > 0 {
		t.Fatalf("Parse(%s): %v", raw, errs)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScheduleBadEntryIsNamedByField(t *testing.T) {
	cases := []struct {
		raw, field, detail string
	}{
		{`{}`, "schedule", "must be an array"},
		{`[1]`, "schedule[0]", "must be an object"},
		{`[{"timezone":"UTC","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "is required"},
		{`[{"cron":"0 13 * * *","timezone":"UTC","desired_sessions":1}]`, "schedule[0].duration", "is required"},
		{`[{"cron":"0 13 * * *","timezone":"UTC","duration":"1h"}]`, "schedule[0].desired_sessions", "is required"},
		{`[{"cron":"0 13 * *","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "is not a cron expression"},
		{`[{"cron":"61 13 * * *","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "is not a cron expression"},
		{`[{"cron":"","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "must not be empty"},
		{`[{"cron":"TZ=UTC","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "put it in timezone"},
		{`[{"cron":"CRON_TZ=Europe/Berlin 0 13 * * *","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "put it in timezone"},
		{`[{"cron":"@every 1h","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "@every is not accepted"},
		{`[{"cron":"@fortnightly","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "is not a cron expression"},
		{`[{"cron":"0 0 30 2 *","duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "never starts"},
		{`[{"cron":1,"duration":"1h","desired_sessions":1}]`, "schedule[0].cron", "must be a string"},
		{`[{"cron":"0 13 * * *","timezone":"Mars/Olympus","duration":"1h","desired_sessions":1}]`, "schedule[0].timezone", "not an IANA time zone"},
		{`[{"cron":"0 13 * * *","timezone":"Local","duration":"1h","desired_sessions":1}]`, "schedule[0].timezone", "each machine's own zone"},
		{`[{"cron":"0 13 * * *","timezone":"","duration":"1h","desired_sessions":1}]`, "schedule[0].timezone", "must not be empty"},
		{`[{"cron":"0 13 * * *","timezone":null,"duration":"1h","desired_sessions":1}]`, "schedule[0].timezone", "must be a string"},
		{`[{"cron":"0 13 * * *","duration":"30s","desired_sessions":1}]`, "schedule[0].duration", "must be at least 1m"},
		{`[{"cron":"0 13 * * *","duration":"90s","desired_sessions":1}]`, "schedule[0].duration", "whole number of minutes"},
		{`[{"cron":"0 13 * * *","duration":"8785h","desired_sessions":1}]`, "schedule[0].duration", "must be at most 8784h"},
		{`[{"cron":"0 13 * * *","duration":"two hours","desired_sessions":1}]`, "schedule[0].duration", "is not a duration"},
		{`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":-1}]`, "schedule[0].desired_sessions", "between 0 and 2147483647"},
		{`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":2147483648}]`, "schedule[0].desired_sessions", "between 0 and 2147483647"},
		{`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":1.5}]`, "schedule[0].desired_sessions", "must be an integer"},
		{`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":"3"}]`, "schedule[0].desired_sessions", "must be an integer"},
		{`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":1,"timezone":"UTC","days":[1]}]`, "schedule[0].days", "is not a known field"},
		{`[{"cron":"0 9 * * *","duration":"1h","desired_sessions":1},{"cron":"0 13 * * 8","duration":"1h","desired_sessions":1}]`, "schedule[1].cron", "is not a cron expression"},
	}
	for _, c := range cases {
		_, errs := Parse([]byte(c.raw))
		if len(errs) != 1 || errs[0].Field != c.field || !strings.Contains(errs[0].Detail, c.detail) {
			t.Errorf("Parse(%s) = %v, want one error on %s containing %q", c.raw, errs, c.field, c.detail)
		}
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"cron":"0 0 1 1 *","duration":"1m","desired_sessions":1},`, EntriesMax+1), ",") + "]"
	if _, errs := Parse([]byte(many)); len(errs) != 1 || errs[0].Field != "schedule" {
		t.Errorf("%d entries: %v, want one error on schedule", EntriesMax+1, errs)
	}
}

func TestScheduleEntryDefaultsToUTCAndRoundTrips(t *testing.T) {
	s := mustParse(t, `[{"cron":"@daily","duration":"90m","desired_sessions":0},
		{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30}]`)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"cron":"@daily","timezone":"UTC","duration":"90m","desired_sessions":0},` +
		`{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30}]`
	if string(b) != want {
		t.Errorf("marshalled %s, want %s", b, want)
	}
	if empty, errs := Parse(nil); len(errs) > 0 || empty == nil {
		t.Errorf("Parse(nil) = %#v, %v; want an empty schedule", empty, errs)
	}
	if b, _ := json.Marshal(Schedule(nil)); string(b) != "[]" {
		t.Errorf("a nil schedule is written %s, want []", b)
	}
}

// TestScheduleEffectiveAtBoundaries: the start minute is in effect, the
// end is not; Berlin's 13:00 is 12:00 UTC in winter and 11:00 in summer.
func TestScheduleEffectiveAtBoundaries(t *testing.T) {
	s := mustParse(t, `[{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30}]`)
	cases := []struct {
		at     string
		want   int
		active bool
	}{
		{"2026-12-07 11:59:59", 3, false}, // Monday, 12:59:59 in Berlin
		{"2026-12-07 12:00:00", 30, true}, // 13:00: the start is in effect
		{"2026-12-07 12:00:30", 30, true},
		{"2026-12-07 13:59:59", 30, true},
		{"2026-12-07 14:00:00", 3, false}, // 15:00: the end is not
		{"2026-12-12 12:30:00", 3, false}, // Saturday
		{"2026-07-06 11:00:00", 30, true}, // Monday in summer: 13:00 CEST
		{"2026-07-06 12:59:00", 30, true},
		{"2026-07-06 13:00:00", 3, false},
	}
	for _, c := range cases {
		got, active := Effective(s, 3, utc(c.at))
		if got != c.want || (active != nil) != c.active || (active != nil && *active != 0) {
			t.Errorf("Effective at %s UTC = %d, %v; want %d, active %v", c.at, got, active, c.want, c.active)
		}
	}
}

func TestScheduleEntryActiveAcrossMidnight(t *testing.T) {
	s := mustParse(t, `[{"cron":"0 9 * * *","duration":"1h","desired_sessions":5},
		{"cron":"0 22 * * 5","duration":"4h","desired_sessions":12}]`)
	cases := []struct {
		at     string
		want   int
		active int // -1: none
	}{
		{"2026-12-11 21:59:00", 1, -1}, // Friday
		{"2026-12-11 22:00:00", 12, 1},
		{"2026-12-11 23:59:59", 12, 1},
		{"2026-12-12 00:00:00", 12, 1}, // Saturday, still Friday's run
		{"2026-12-12 01:59:00", 12, 1},
		{"2026-12-12 02:00:00", 1, -1},
		{"2026-12-12 09:00:00", 5, 0},
		{"2026-12-12 22:30:00", 1, -1}, // Saturday night: no run
	}
	for _, c := range cases {
		got, active := Effective(s, 1, utc(c.at))
		idx := -1
		if active != nil {
			idx = *active
		}
		if got != c.want || idx != c.active {
			t.Errorf("Effective at %s = %d, entry %d; want %d, entry %d", c.at, got, idx, c.want, c.active)
		}
	}
	if got := NextChange(s, utc("2026-12-11 23:00:00")); !got.Equal(utc("2026-12-12 02:00:00")) {
		t.Errorf("NextChange during the run = %s, want its end 02:00 the next day", got)
	}
}

// TestScheduleStartInTheSkippedHourStartsWhenTheClockJumps: on
// 2026-03-29 Berlin's clocks go from 02:00 CET to 03:00 CEST (01:00 UTC);
// a 02:30 start happens at 03:00 CEST that day, and lasts its duration.
func TestScheduleStartInTheSkippedHourStartsWhenTheClockJumps(t *testing.T) {
	s := mustParse(t, `[{"cron":"30 2 * * *","timezone":"Europe/Berlin","duration":"1h","desired_sessions":7}]`)
	cases := []struct {
		at   string
		want int
	}{
		{"2026-03-28 01:29:59", 0}, // the day before: 02:30 CET is 01:30 UTC
		{"2026-03-28 01:30:00", 7},
		{"2026-03-28 02:29:59", 7},
		{"2026-03-28 02:30:00", 0},
		{"2026-03-29 00:59:59", 0}, // 01:59:59 CET
		{"2026-03-29 01:00:00", 7}, // 03:00 CEST: the first instant after the gap
		{"2026-03-29 01:59:59", 7},
		{"2026-03-29 02:00:00", 0}, // one hour later
		{"2026-03-30 00:29:59", 0}, // the day after: 02:30 CEST is 00:30 UTC
		{"2026-03-30 00:30:00", 7},
	}
	for _, c := range cases {
		if got, _ := Effective(s, 0, utc(c.at)); got != c.want {
			t.Errorf("Effective at %s UTC = %d, want %d", c.at, got, c.want)
		}
	}
	for _, c := range []struct{ from, want string }{
		{"2026-03-28 23:00:00", "2026-03-29 01:00:00"},
		{"2026-03-29 01:00:00", "2026-03-29 02:00:00"},
		{"2026-03-29 02:00:00", "2026-03-30 00:30:00"},
	} {
		if got := NextChange(s, utc(c.from)); !got.Equal(utc(c.want)) {
			t.Errorf("NextChange(%s UTC) = %s, want %s UTC", c.from, got, c.want)
		}
	}
	// Every minute of the skipped hour maps to 03:00 CEST: once.
	hourly := mustParse(t, `[{"cron":"*/15 * * * *","timezone":"Europe/Berlin","duration":"15m","desired_sessions":1}]`)
	if o := Overlaps(hourly, utc("2026-03-20 00:00:00")); o != nil {
		t.Errorf("*/15 for 15m overlaps at %s: the skipped hour's starts should be one", o.At)
	}
	var starts []time.Time
	c := newCursor(ruleOf(&hourly[0]), utc("2026-03-29 00:29:00"))
	for range 4 {
		s, _ := c.next()
		starts = append(starts, time.Unix(s, 0).UTC())
	}
	want := []time.Time{utc("2026-03-29 00:30:00"), utc("2026-03-29 00:45:00"), utc("2026-03-29 01:00:00"), utc("2026-03-29 01:15:00")}
	if !slices.EqualFunc(starts, want, time.Time.Equal) {
		t.Errorf("starts around the gap %v, want %v", starts, want)
	}
}

// TestScheduleStartInTheRepeatedHourStartsOnce: on 2026-10-25 Berlin's
// 02:00–03:00 happens twice (CEST, then CET); a 02:30 start happens at the
// first, and a 2h run does not overlap itself.
func TestScheduleStartInTheRepeatedHourStartsOnce(t *testing.T) {
	s := mustParse(t, `[{"cron":"30 2 * * *","timezone":"Europe/Berlin","duration":"2h","desired_sessions":4}]`)
	if o := Overlaps(s, utc("2026-10-01 00:00:00")); o != nil {
		t.Fatalf("overlap %+v across the end of summer time", o)
	}
	cases := []struct {
		at   string
		want int
	}{
		{"2026-10-25 00:29:59", 0},
		{"2026-10-25 00:30:00", 4}, // 02:30 CEST
		{"2026-10-25 01:30:00", 4}, // 02:30 CET: the same run, not a new one
		{"2026-10-25 02:29:59", 4},
		{"2026-10-25 02:30:00", 0}, // 2 hours after 02:30 CEST
	}
	for _, c := range cases {
		if got, _ := Effective(s, 0, utc(c.at)); got != c.want {
			t.Errorf("Effective at %s UTC = %d, want %d", c.at, got, c.want)
		}
	}
	if got := NextChange(s, utc("2026-10-25 01:30:00")); !got.Equal(utc("2026-10-25 02:30:00")) {
		t.Errorf("NextChange in the repeated hour = %s, want the run's end", got)
	}
	hourly := mustParse(t, `[{"cron":"0 * * * *","timezone":"Europe/Berlin","duration":"1h","desired_sessions":1}]`)
	if o := Overlaps(hourly, utc("2026-10-20 00:00:00")); o != nil {
		t.Errorf("hourly for 1h overlaps at %s", o.At)
	}
}

func TestScheduleOverlapsAreRefusedNamingTheEntry(t *testing.T) {
	now := utc("2026-12-01 00:00:00") // a Tuesday
	cases := []struct {
		raw, field, detail string
	}{
		{`[{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		   {"cron":"0 14 * * 1","timezone":"Europe/Berlin","duration":"1h","desired_sessions":10}]`,
			"schedule[1]", "overlaps schedule[0] on 2026-12-07 14:00 Europe/Berlin"},
		// The later entry in the list is named, whichever starts first.
		{`[{"cron":"0 14 * * 1","timezone":"Europe/Berlin","duration":"1h","desired_sessions":10},
		   {"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30}]`,
			"schedule[1]", "overlaps schedule[0] on 2026-12-07 14:00 Europe/Berlin"},
		// Two zones: 13:00 in Berlin is 12:00 UTC in winter.
		{`[{"cron":"30 11 * * *","duration":"1h","desired_sessions":1},
		   {"cron":"0 13 * * *","timezone":"Europe/Berlin","duration":"1h","desired_sessions":2}]`,
			"schedule[1]", "overlaps schedule[0] on 2026-12-01 13:00 Europe/Berlin"},
		// The same start.
		{`[{"cron":"0 9 * * *","duration":"1m","desired_sessions":1},{"cron":"0 9 1 * *","duration":"1m","desired_sessions":2}]`,
			"schedule[1]", "overlaps schedule[0] on 2026-12-01 09:00 UTC"},
		// A run that reaches its own next start (the run in effect now
		// counts).
		{`[{"cron":"0 * * * *","duration":"61m","desired_sessions":1}]`,
			"schedule[0]", "overlaps itself on 2026-12-01 00:00 UTC: it starts again before its run from 2026-11-30 23:00 has lasted 1h1m"},
		{`[{"cron":"0 0 1 1 *","duration":"8784h","desired_sessions":1}]`, // 2026 has 365 days
			"schedule[0]", "overlaps itself on 2027-01-01 00:00 UTC: it starts again before its run from 2026-01-01 00:00"},
		// No start within the horizon, but certain: its first run reaches
		// its second start.
		{`[{"cron":"0,30 0 29 2 *","duration":"1h","desired_sessions":1}]`,
			"schedule[0]", "overlaps itself on 2028-02-29 00:30 UTC"},
		// In effect now, and again soon.
		{`[{"cron":"0 23 * * *","duration":"2h","desired_sessions":1},{"cron":"0 0 * * *","duration":"1m","desired_sessions":2}]`,
			"schedule[1]", "overlaps schedule[0] on 2026-12-01 00:00 UTC"},
	}
	for _, c := range cases {
		s := mustParse(t, c.raw)
		errs := Validate(s, now)
		if len(errs) != 1 || errs[0].Field != c.field || !strings.Contains(errs[0].Detail, c.detail) {
			t.Errorf("Validate(%s) = %v, want one error on %s containing %q", c.raw, errs, c.field, c.detail)
		}
	}
}

func TestScheduleAdjacentRunsDoNotOverlap(t *testing.T) {
	now := utc("2026-12-01 00:00:00")
	for _, raw := range []string{
		`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":1},{"cron":"0 14 * * *","duration":"1h","desired_sessions":2}]`,
		`[{"cron":"* * * * *","duration":"1m","desired_sessions":1}]`,
		`[{"cron":"0 22 * * *","duration":"11h","desired_sessions":1},{"cron":"0 9 * * *","duration":"13h","desired_sessions":2}]`,
		`[{"cron":"0 0 1 1 *","duration":"8760h","desired_sessions":1}]`, // 2027 has 365 days
		`[{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		  {"cron":"0 13 * * 6,0","timezone":"Europe/Berlin","duration":"2h","desired_sessions":5}]`,
	} {
		if errs := Validate(mustParse(t, raw), now); len(errs) > 0 {
			t.Errorf("Validate(%s) = %v, want no overlap", raw, errs)
		}
	}
}

func TestScheduleNextChangeIsTheNextStartOrEnd(t *testing.T) {
	s := mustParse(t, `[{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		{"cron":"0 8 * * *","duration":"30m","desired_sessions":2}]`)
	cases := []struct{ now, want string }{
		{"2026-12-05 12:00:00", "2026-12-06 08:00:00"}, // Saturday: only the daily entry
		{"2026-12-07 08:00:00", "2026-12-07 08:30:00"}, // a run's start: its end is next
		{"2026-12-07 08:30:00", "2026-12-07 12:00:00"},
		{"2026-12-07 12:00:00", "2026-12-07 14:00:00"},
		{"2026-12-07 13:59:59", "2026-12-07 14:00:00"},
	}
	for _, c := range cases {
		if got := NextChange(s, utc(c.now)); !got.Equal(utc(c.want)) {
			t.Errorf("NextChange(%s UTC) = %s, want %s UTC", c.now, got, c.want)
		}
	}
	if got := NextChange(nil, utc("2026-12-07 12:00:00")); !got.IsZero() {
		t.Errorf("NextChange of no entries = %s, want zero", got)
	}
	leap := mustParse(t, `[{"cron":"0 0 29 2 *","duration":"1h","desired_sessions":1}]`)
	if got := NextChange(leap, utc("2028-03-01 00:00:00")); !got.Equal(utc("2032-02-29 00:00:00")) {
		t.Errorf("NextChange of 29 February = %s, want 2032-02-29", got)
	}
}

// TestScheduleStartsMatchRobfigCronAwayFromSummerTime: the cursor's walk
// is robfig/cron's reading of an expression (its Next) on days without a
// change of offset.
func TestScheduleStartsMatchRobfigCronAwayFromSummerTime(t *testing.T) {
	for _, expr := range []string{"0 13 * * 1-5", "*/7 9-17 * * *", "15 3 1,15 * *", "0 0 13 * 5", "@weekly", "@monthly",
		"0 12 * 2 *", "5 4 */10 * mon", "0 0 31 * *", "59 23 * * 0"} {
		s := mustParse(t, fmt.Sprintf(`[{"cron":%q,"timezone":"America/New_York","duration":"1m","desired_sessions":1}]`, expr))
		r := ruleOf(&s[0])
		spec := *r.spec
		spec.Location = r.loc
		from := utc("2026-04-01 00:00:00")
		c := newCursor(r, from)
		want := from
		for range 200 {
			want = spec.Next(want)
			if want.After(utc("2026-10-31 00:00:00")) {
				break
			}
			got, ok := c.next()
			if !ok || got != want.Unix() {
				t.Fatalf("%q: start %s, robfig/cron says %s", expr, time.Unix(got, 0).UTC(), want.UTC())
			}
		}
	}
}

func TestScheduleReadFromTheDatabaseIsTolerant(t *testing.T) {
	var s Schedule
	if err := s.Scan([]byte(`[{"cron":"0 13 * * *","duration":"1h","desired_sessions":3,"note":"new field"},
		{"cron":"0 14 * * * *","duration":"1h","desired_sessions":9}]`)); err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || !s[0].Valid() || s[1].Valid() {
		t.Fatalf("scanned %+v: want two entries, the first valid", s)
	}
	if got, _ := Effective(s, 1, utc("2026-12-07 13:30:00")); got != 3 {
		t.Errorf("Effective = %d, want 3 (the unknown field ignored)", got)
	}
	if got, _ := Effective(s, 1, utc("2026-12-07 14:30:00")); got != 1 {
		t.Errorf("Effective = %d, want 1 (an entry that does not parse is never in effect)", got)
	}
	if err := s.Scan(`{}`); err == nil {
		t.Error("an object scanned as a schedule")
	}
	if v, _ := (Schedule{}).Value(); v != "[]" {
		t.Errorf("Value of an empty schedule = %v", v)
	}
}

// TestScheduleEntriesBuiltByHandAreParsedWhenRead: Effective and
// NextChange do not need Parse.
func TestScheduleEntriesBuiltByHandAreParsedWhenRead(t *testing.T) {
	s := []Entry{{Cron: "0 13 * * *", Duration: "1h", DesiredSessions: 6}}
	if got, active := Effective(s, 1, utc("2026-12-07 13:00:00")); got != 6 || active == nil || *active != 0 {
		t.Errorf("Effective = %d, %v; want 6, entry 0", got, active)
	}
	if got := NextChange(s, utc("2026-12-07 13:00:00")); !got.Equal(utc("2026-12-07 14:00:00")) {
		t.Errorf("NextChange = %s", got)
	}
}

// BenchmarkOverlapsEveryMinute is the most work a valid schedule asks
// of Overlaps: a start every minute of the horizon (527,040), none
// overlapping.
func BenchmarkOverlapsEveryMinute(b *testing.B) {
	s := mustParse(b, `[{"cron":"* * * * *","timezone":"Europe/Berlin","duration":"1m","desired_sessions":1}]`)
	now := utc("2026-12-01 00:00:00")
	for b.Loop() {
		if o := Overlaps(s, now); o != nil {
			b.Fatalf("overlap %+v", o)
		}
	}
}

// BenchmarkOverlapsTimetable is a school's week: five entries in two
// zones.
func BenchmarkOverlapsTimetable(b *testing.B) {
	s := mustParse(b, `[{"cron":"0 8 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		{"cron":"30 10 * * 1-5","timezone":"Europe/Berlin","duration":"1h","desired_sessions":10},
		{"cron":"0 9 * * 6","timezone":"America/New_York","duration":"3h","desired_sessions":5},
		{"cron":"*/20 0-5 * * *","duration":"20m","desired_sessions":0}]`)
	now := utc("2026-12-01 00:00:00")
	for b.Loop() {
		if o := Overlaps(s, now); o != nil {
			b.Fatalf("overlap %+v", o)
		}
	}
}

// BenchmarkEffectiveAndNextChange is what a reconcile pass adds per
// staging config with that timetable.
func BenchmarkEffectiveAndNextChange(b *testing.B) {
	s := mustParse(b, `[{"cron":"0 8 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30},
		{"cron":"0 9 * * 6","timezone":"America/New_York","duration":"3h","desired_sessions":5}]`)
	now := utc("2026-12-05 10:00:00")
	for b.Loop() {
		Effective(s, 3, now)
		NextChange(s, now)
	}
}
