// Package schedule owns a staging config's timetable, its `schedule`:
// entries that, from each start a cron expression gives in a time zone and
// for a duration, replace the config's desired_sessions with their own
// ("30 sessions from 13:00 on weekdays, for two hours"). The config
// service validates with it (a bad entry, or two entries whose runs
// overlap, is a 400 naming the entry) and computes the read-only
// effective_desired_sessions and schedule_active with it; the
// provisioner's reconciler reads the size a pool aims for and when it next
// changes with it, so the two services never disagree on when an entry is
// in effect.
//
// An entry is in effect from each of its starts (the start minute
// included) until its duration has passed (the end excluded). Starts are
// read on the wall clock of the entry's time zone: a wall-clock time that
// happens twice (the hour repeated when summer time ends) starts the entry
// once, at its first occurrence; one that does not happen at all (the hour
// skipped when summer time begins) starts it when the clock jumps, at the
// first instant after the gap, so a class at 02:30 still gets its sessions
// on that day.
package schedule

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Field is the staging config field a schedule is given in; errors name
// its entries below it ("schedule[1].cron").
const Field = "schedule"

// Bounds of a schedule and its entries.
const (
	// EntriesMax bounds the entries of one schedule, which bounds the work
	// of the overlap check and of every reconcile pass.
	EntriesMax = 100
	// DurationMin is the shortest run: starts are whole minutes, so a
	// shorter one could not be told from none.
	DurationMin = time.Minute
	// DurationMax is the longest run: the horizon overlaps are looked for
	// in. A longer run of an entry that starts at least once a year
	// overlaps its next start anyway.
	DurationMax = Horizon
	// DesiredSessionsMax is the bound desired_sessions has (an int32
	// column).
	DesiredSessionsMax = math.MaxInt32
	// TimezoneDefault is the time zone of an entry that names none.
	TimezoneDefault = "UTC"
)

// Horizon is how far ahead overlaps are looked for when a schedule is
// validated: 366 days, so that every date of a year (29 February too, in
// a leap year) and both changes of summer time are seen once. Runs that
// would overlap only further ahead (an expression that starts on 29
// February alone, every four years) are not refused; should they meet,
// the first entry of the schedule in effect wins (Effective).
const Horizon = 366 * 24 * time.Hour

// Entry is one line of a schedule, as a client writes it and the database
// keeps it: from each start Cron gives, read in Timezone, for Duration,
// the pool holds DesiredSessions instead of the config's desired_sessions.
type Entry struct {
	// Cron is a standard 5-field expression ("0 13 * * 1-5") or a
	// descriptor (@yearly, @monthly, @weekly, @daily, @hourly).
	Cron string `json:"cron"`
	// Timezone is an IANA time zone name ("Europe/Berlin").
	Timezone string `json:"timezone"`
	// Duration is a Go duration of whole minutes ("2h", "90m").
	Duration        string `json:"duration"`
	DesiredSessions int32  `json:"desired_sessions"`

	// rule is the entry parsed; nil when it is not valid (or was built
	// by hand and not parsed yet: see ruleOf).
	rule *rule
}

// Schedule is a staging config's entries, kept in a jsonb column. It is
// never JSON null.
type Schedule []Entry

// Error is one problem with a schedule; Field names the entry and its
// field ("schedule[0].timezone").
type Error struct {
	Field  string
	Detail string
}

// Errors lists a schedule's problems, in the order of its entries.
type Errors []Error

func (e *Errors) add(field, format string, args ...any) {
	*e = append(*e, Error{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = p.Field + ": " + p.Detail
	}
	return strings.Join(parts, "; ")
}

// rule is an entry parsed: when it starts, where, and for how long.
type rule struct {
	spec *cron.SpecSchedule
	loc  *time.Location
	dur  time.Duration
}

// entryField names entry i, or one of its fields.
func entryField(i int, field string) string {
	if field == "" {
		return fmt.Sprintf("%s[%d]", Field, i)
	}
	return fmt.Sprintf("%s[%d].%s", Field, i, field)
}

// Parse decodes a schedule as a request body gives it (a JSON array of
// entries) strictly: an unknown field, a value of the wrong type, a cron
// expression, time zone or duration that does not parse or is out of
// bounds are each an error naming the entry's field. Empty input and null
// are an empty schedule. An entry without errors is ready for Effective
// and NextChange; Validate then looks for overlaps.
func Parse(raw []byte) (Schedule, Errors) {
	return parse(raw, true)
}

// parse decodes raw; strict refuses unknown fields (a request body), and
// otherwise they are ignored (what the database holds, which a newer
// writer may have written: readers are tolerant).
func parse(raw []byte, strict bool) (Schedule, Errors) {
	var errs Errors
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Schedule{}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		errs.add(Field, "must be an array of entries ({\"cron\", \"timezone\", \"duration\", \"desired_sessions\"})")
		return Schedule{}, errs
	}
	if strict && len(items) > EntriesMax {
		errs.add(Field, "has %d entries; at most %d are allowed", len(items), EntriesMax)
		return Schedule{}, errs
	}
	s := make(Schedule, len(items))
	for i, item := range items {
		s[i] = parseEntry(&errs, i, item, strict)
	}
	return s, errs
}

// parseEntry decodes and checks entry i.
func parseEntry(errs *Errors, i int, raw json.RawMessage, strict bool) Entry {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		errs.add(entryField(i, ""), "must be an object with cron, timezone, duration and desired_sessions")
		return Entry{}
	}
	before := len(*errs)
	e := Entry{Timezone: TimezoneDefault}
	str := func(key string, required bool) (string, bool) {
		v, ok := obj[key]
		if !ok {
			if required {
				errs.add(entryField(i, key), "is required")
			}
			return "", false
		}
		var s string
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) || json.Unmarshal(v, &s) != nil {
			errs.add(entryField(i, key), "must be a string")
			return "", false
		}
		return s, true
	}
	var r rule
	if s, ok := str("cron", true); ok {
		e.Cron = s
		if spec, problem := parseCron(s); problem != "" {
			errs.add(entryField(i, "cron"), "%s", problem)
		} else {
			r.spec = spec
		}
	}
	if s, ok := str("timezone", false); ok {
		e.Timezone = s
	}
	if loc, problem := parseTimezone(e.Timezone); problem != "" {
		errs.add(entryField(i, "timezone"), "%s", problem)
	} else {
		r.loc = loc
	}
	if s, ok := str("duration", true); ok {
		e.Duration = s
		if d, problem := parseDuration(s); problem != "" {
			errs.add(entryField(i, "duration"), "%s", problem)
		} else {
			r.dur = d
		}
	}
	if v, ok := obj["desired_sessions"]; !ok {
		errs.add(entryField(i, "desired_sessions"), "is required")
	} else {
		var n int64
		switch err := json.Unmarshal(v, &n); {
		case bytes.Equal(bytes.TrimSpace(v), []byte("null")) || err != nil:
			errs.add(entryField(i, "desired_sessions"), "must be an integer from 0 to %d", DesiredSessionsMax)
		case n < 0 || n > DesiredSessionsMax:
			errs.add(entryField(i, "desired_sessions"), "must be between 0 and %d", DesiredSessionsMax)
		default:
			e.DesiredSessions = int32(n)
		}
	}
	if strict {
		for _, k := range sortedKeys(obj) {
			switch k {
			case "cron", "timezone", "duration", "desired_sessions":
			default:
				errs.add(entryField(i, k), "is not a known field")
			}
		}
	}
	if len(*errs) == before {
		e.rule = &r
	}
	return e
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseCron parses a standard expression or a descriptor, and says what
// is wrong with it otherwise.
func parseCron(s string) (spec *cron.SpecSchedule, problem string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, "must not be empty"
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		// robfig/cron reads a time zone prefix (and panics on one
		// without an expression after it); here the zone has a field
		// of its own.
		return nil, "names a time zone: put it in timezone, not in the expression"
	case strings.HasPrefix(s, "@every"):
		return nil, "@every is not accepted: an entry starts at times of the clock, not at intervals from when it was written; use an expression such as \"*/30 * * * *\""
	}
	sched, err := parseStandard(s)
	if err != nil {
		return nil, fmt.Sprintf("%q is not a cron expression (minute hour day-of-month month day-of-week, or @yearly, @monthly, @weekly, @daily, @hourly): %v", s, err)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Sprintf("%q is not a cron expression of times of the clock", s)
	}
	if neverStarts(spec) {
		return nil, fmt.Sprintf("%q never starts: none of its months has that day", s)
	}
	return spec, ""
}

// parseStandard is cron.ParseStandard, with a panic of its parser (it has
// had some on malformed input) turned into an error.
func parseStandard(s string) (sched cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			sched, err = nil, fmt.Errorf("malformed: %v", p)
		}
	}()
	return cron.ParseStandard(s)
}

// starBit is robfig/cron's mark of a field given as "*" (or "?"): a
// day-of-month or day-of-week so given makes the other alone decide.
const starBit = 1 << 63

// neverStarts reports whether spec names only dates no month has (30
// February, 31 April): only possible when the day of the week is "*" and
// so the day of the month alone decides.
func neverStarts(spec *cron.SpecSchedule) bool {
	if spec.Dow&starBit == 0 || spec.Dom&starBit != 0 {
		return false
	}
	days := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if spec.Month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= days[m]; d++ {
			if spec.Dom&(1<<d) != 0 {
				return false
			}
		}
	}
	return true
}

// parseTimezone loads an IANA zone. "Local" is refused: it would mean
// another zone on each machine.
func parseTimezone(name string) (*time.Location, string) {
	switch name {
	case "":
		return nil, "must not be empty: leave it out for UTC"
	case "Local":
		return nil, "\"Local\" is each machine's own zone: name the zone, e.g. \"Europe/Berlin\""
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Sprintf("%q is not an IANA time zone name (such as \"Europe/Berlin\" or \"UTC\")", name)
	}
	return loc, ""
}

// parseDuration parses a Go duration of whole minutes within bounds.
func parseDuration(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("%q is not a duration (such as \"2h\" or \"90m\")", s)
	case d < DurationMin:
		return 0, fmt.Sprintf("must be at least %s", fmtDuration(DurationMin))
	case d > DurationMax:
		return 0, fmt.Sprintf("must be at most %s (366 days)", fmtDuration(DurationMax))
	case d%time.Minute != 0:
		return 0, "must be a whole number of minutes: entries start and end at the minute"
	}
	return d, ""
}

// fmtDuration writes d without Go's trailing zero units ("1m", "2h").
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Validate checks a parsed schedule as a whole: no two runs may overlap
// within the Horizon from now, whether of two entries or of one entry
// whose duration reaches its own next start. It names the later entry of
// the two, and when the first overlap begins on its clock.
func Validate(s Schedule, now time.Time) Errors {
	var errs Errors
	if o := Overlaps(s, now); o != nil {
		e := s[o.Entry]
		r := ruleOf(&e)
		at := o.At.In(r.loc).Format("2006-01-02 15:04") + " " + r.loc.String()
		if o.Entry == o.With {
			errs.add(entryField(o.Entry, ""), "overlaps itself on %s: it starts again before its run from %s has lasted %s",
				at, o.RunStart.In(r.loc).Format("2006-01-02 15:04"), fmtDuration(r.dur))
		} else {
			errs.add(entryField(o.Entry, ""), "overlaps %s on %s", entryField(o.With, ""), at)
		}
	}
	return errs
}

// ruleOf is e's parsed rule; an entry built by hand rather than by Parse
// is parsed here (each time), and one that does not parse has none.
func ruleOf(e *Entry) *rule {
	if e.rule != nil {
		return e.rule
	}
	spec, problem := parseCron(e.Cron)
	if problem != "" {
		return nil
	}
	loc, problem := parseTimezone(cmpOr(e.Timezone, TimezoneDefault))
	if problem != "" {
		return nil
	}
	d, problem := parseDuration(e.Duration)
	if problem != "" {
		return nil
	}
	return &rule{spec: spec, loc: loc, dur: d}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Valid reports whether e parsed: only a valid entry is ever in effect.
func (e Entry) Valid() bool { return ruleOf(&e) != nil }

// Effective is the number of sessions a pool with the schedule's entries
// and desired_sessions base aims for at now: the desired_sessions of the
// entry in effect, or base when none is. active is that entry's index, or
// nil. Entries that overlap (possible only beyond the Horizon they were
// validated over, or in a schedule written by hand) are read in order:
// the first in effect wins.
func Effective(entries []Entry, base int, now time.Time) (desired int, active *int) {
	for i := range entries {
		r := ruleOf(&entries[i])
		if r == nil {
			continue
		}
		if _, ok := r.runAt(now); ok {
			return int(entries[i].DesiredSessions), &i
		}
	}
	return base, nil
}

// runAt returns the start of the run in effect at now, if any: the first
// start after now minus the duration, when it is not after now.
func (r *rule) runAt(now time.Time) (int64, bool) {
	c := newCursor(r, now.Add(-r.dur))
	s, ok := c.next()
	if !ok || s > now.Unix() {
		return 0, false
	}
	return s, true
}

// NextChange is when the schedule may next change what a pool aims for:
// the earliest start or end of any entry's run after now (each entry's
// next start, and the end of its run in effect). It is the zero time when
// there is none (no entries, or none that starts again).
func NextChange(entries []Entry, now time.Time) time.Time {
	var next int64
	found := false
	consider := func(t int64) {
		if !found || t < next {
			next, found = t, true
		}
	}
	for i := range entries {
		r := ruleOf(&entries[i])
		if r == nil {
			continue
		}
		dur := int64(r.dur / time.Second)
		c := newCursor(r, now.Add(-r.dur))
		for {
			s, ok := c.next()
			if !ok {
				break
			}
			if s > now.Unix() {
				consider(s)
				break
			}
			consider(s + dur) // a run in effect: its end is after now
		}
	}
	if !found {
		return time.Time{}
	}
	return time.Unix(next, 0).UTC()
}

// MarshalJSON writes an empty schedule as [] rather than null.
func (s Schedule) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]Entry(s))
}

// Scan reads a jsonb column tolerantly: unknown fields are ignored, and
// an entry that does not parse (say, written by a newer version) is kept
// but never in effect.
func (s *Schedule) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	case nil:
		*s = Schedule{}
		return nil
	default:
		return fmt.Errorf("cannot scan %T into a schedule", src)
	}
	out, errs := parse(raw, false)
	for _, e := range errs {
		if e.Field == Field { // not an array at all
			return errors.New("decoding a schedule: " + e.Detail)
		}
	}
	*s = out
	return nil
}

// Value writes a jsonb column (a string: lib/pq would send []byte as
// bytea, which jsonb does not accept).
func (s Schedule) Value() (driver.Value, error) {
	b, err := s.MarshalJSON()
	return string(b), err
}
