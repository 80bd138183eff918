package schedule

import (
	"container/heap"
	"math/bits"
	"time"
)

// scanDaysMax bounds the days a cursor walks to find the next start: 29
// February can be eight years from the previous one (2096, then 2104).
const scanDaysMax = 8*366 + 2

// Masks of the minute and hour bits of a cron.SpecSchedule (its top bit is
// starBit).
const (
	minuteBits = 1<<60 - 1
	hourBits   = 1<<24 - 1
)

// cursor walks the starts of one rule in order, after a given instant.
// It reads the expression on the wall clock of the rule's zone, day by
// day, minute by minute of the matching hours (robfig/cron's Next walks
// second by second, some 60 steps for each start of "* * * * *"), and maps
// each wall-clock minute to an instant (civilInstant), giving each instant
// once. Starts are Unix seconds.
type cursor struct {
	r *rule
	// day is the wall-clock day being walked, as its midnight in UTC;
	// dayOK says whether the expression matches it.
	day   time.Time
	dayOK bool
	// hour and minute are the next wall-clock minute of day to look at.
	hour, minute int
	// last is the instant every start given must come after.
	last int64
	// daysLeft bounds the walk to the next start.
	daysLeft int
	// dayUnix is day's midnight as if in UTC; when fast, every wall-clock
	// time of the day is one instant, its wall clock minus offset.
	dayUnix int64
	fast    bool
	offset  int64
}

// newCursor returns a cursor over r's starts after the instant after.
func newCursor(r *rule, after time.Time) *cursor {
	w := after.In(r.loc)
	y, m, d := w.Date()
	c := &cursor{
		r: r, day: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), hour: w.Hour(), minute: w.Minute(),
		last: after.Unix(), daysLeft: scanDaysMax,
	}
	c.enterDay()
	return c
}

// next returns the next start, and false when there is none within
// scanDaysMax days of the last one.
func (c *cursor) next() (int64, bool) {
	hours, minutes := c.r.spec.Hour&hourBits, c.r.spec.Minute&minuteBits
	for {
		if c.dayOK {
			for c.hour < 24 {
				if hours&(1<<c.hour) != 0 {
					if m := minutes >> c.minute; m != 0 {
						mi := c.minute + bits.TrailingZeros64(m)
						c.minute = mi + 1
						// A wall-clock minute of a skipped hour, or of a
						// repeated one, maps to an instant already given.
						if s := c.instant(c.hour, mi); s > c.last {
							c.last, c.daysLeft = s, scanDaysMax
							return s, true
						}
						continue
					}
				}
				c.hour, c.minute = c.hour+1, 0
			}
		}
		if c.daysLeft == 0 {
			return 0, false
		}
		c.daysLeft--
		c.day = c.day.AddDate(0, 0, 1)
		c.hour, c.minute = 0, 0
		c.enterDay()
	}
}

// enterDay reads whether the expression matches the new day, and whether
// its wall-clock times map to instants by one offset: they do when the
// zone keeps one offset from two days before to two days after (offsets
// are within ±14 h, so no other could give one of them an instant).
func (c *cursor) enterDay() {
	c.dayOK = c.r.dayMatches(c.day)
	if !c.dayOK {
		return
	}
	c.dayUnix = c.day.Unix()
	probe := time.Unix(c.dayUnix, 0).In(c.r.loc)
	_, off := probe.Zone()
	start, end := probe.ZoneBounds()
	const margin = 2 * 24 * 60 * 60
	c.fast = (start.IsZero() || start.Unix() <= c.dayUnix-margin) && (end.IsZero() || end.Unix() >= c.dayUnix+24*60*60+margin)
	c.offset = int64(off)
}

// instant maps the wall-clock time hour:minute of the cursor's day to an
// instant.
func (c *cursor) instant(hour, minute int) int64 {
	wall := c.dayUnix + int64(hour*3600+minute*60)
	if c.fast {
		return wall - c.offset
	}
	return civilInstant(wall, c.r.loc).Unix()
}

// dayMatches reports whether the expression matches day, as robfig/cron
// reads a day: its month, and its day of the month and day of the week —
// both when either is "*", else either.
func (r *rule) dayMatches(day time.Time) bool {
	_, m, d := day.Date()
	if r.spec.Month&(1<<uint(m)) == 0 {
		return false
	}
	dom := r.spec.Dom&(1<<uint(d)) != 0
	dow := r.spec.Dow&(1<<uint(day.Weekday())) != 0
	if r.spec.Dom&starBit != 0 || r.spec.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// civilInstant is the instant at which the wall clock of loc reads wall
// (Unix seconds of that wall-clock time read as UTC): the first of two
// when it reads it twice (the hour repeated when summer time ends), and
// the first instant after the gap when it never does (the hour skipped
// when summer time begins). time.Date leaves both cases unspecified.
func civilInstant(wall int64, loc *time.Location) time.Time {
	w := time.Unix(wall, 0).UTC()
	y, mo, d := w.Date()
	h, mi, sec := w.Clock()
	t := time.Date(y, mo, d, h, mi, sec, 0, loc)
	if wallOf(t) == wall {
		// Read twice? Then also by the offset of the period before.
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			_, off := start.Add(-time.Second).Zone()
			if first := time.Unix(wall-int64(off), 0).In(loc); first.Before(t) && wallOf(first) == wall {
				return first
			}
		}
		return t
	}
	// In a gap: t is on one side of the change; the change is the answer.
	start, end := t.ZoneBounds()
	if wallOf(t) > wall {
		return start
	}
	return end
}

// wallOf is t's wall clock read as UTC, in Unix seconds.
func wallOf(t time.Time) int64 {
	_, off := t.Zone()
	return t.Unix() + int64(off)
}

// Overlap is where two runs of a schedule first meet.
type Overlap struct {
	// Entry is the later of the two entries in the schedule (the one an
	// error names) and With the other; they are equal when an entry's run
	// reaches its own next start.
	Entry, With int
	// At is when the overlap begins: the later of the two runs' starts.
	At time.Time
	// RunStart is when the other run (the earlier) started.
	RunStart time.Time
}

// Overlaps finds the first instant, within the Horizon from now, at which
// two runs of the schedule are in effect at once, and nil when there is
// none. Runs in effect at now count. It merges the entries' streams of
// starts in order and keeps the end of the latest run: a start before it
// is an overlap. Until one is found the runs are disjoint and each at
// least a minute long, so the work is bounded by the minutes of the
// horizon (527,040 starts, for an expression that starts every minute
// with a duration of 1m) and usually far less: an expression that starts
// more often than its duration overlaps itself at its second start.
// Entries that did not parse are left out.
func Overlaps(entries []Entry, now time.Time) *Overlap {
	until := now.Add(Horizon).Unix()
	h := make(startHeap, 0, len(entries))
	for i := range entries {
		r := ruleOf(&entries[i])
		if r == nil {
			continue
		}
		st := stream{c: newCursor(r, now.Add(-r.dur)), entry: i, dur: int64(r.dur / time.Second)}
		s, ok := st.c.next()
		if !ok {
			continue
		}
		if s >= until {
			// No run within the horizon; its first must still not reach
			// its second.
			if n, ok := st.c.next(); ok && n < s+st.dur {
				return selfOverlap(i, s, n)
			}
			continue
		}
		st.start = s
		h = append(h, st)
	}
	heap.Init(&h)
	var end, runStart int64
	owner := -1
	for len(h) > 0 {
		st := &h[0]
		s := st.start
		if owner >= 0 && s < end {
			o := &Overlap{Entry: max(st.entry, owner), With: min(st.entry, owner),
				At: time.Unix(s, 0).UTC(), RunStart: time.Unix(runStart, 0).UTC()}
			return o
		}
		end, runStart, owner = s+st.dur, s, st.entry
		n, ok := st.c.next()
		switch {
		case ok && n < until:
			st.start = n
			heap.Fix(&h, 0)
		case ok && n < s+st.dur:
			// The last run within the horizon reaches the next start.
			return selfOverlap(st.entry, s, n)
		default:
			heap.Pop(&h)
		}
	}
	return nil
}

func selfOverlap(entry int, run, next int64) *Overlap {
	return &Overlap{Entry: entry, With: entry, At: time.Unix(next, 0).UTC(), RunStart: time.Unix(run, 0).UTC()}
}

// stream is one entry's starts, at its next one.
type stream struct {
	c     *cursor
	start int64
	entry int
	dur   int64
}

// startHeap orders streams by their next start, then by entry.
type startHeap []stream

func (h startHeap) Len() int { return len(h) }
func (h startHeap) Less(i, j int) bool {
	if h[i].start != h[j].start {
		return h[i].start < h[j].start
	}
	return h[i].entry < h[j].entry
}
func (h startHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *startHeap) Push(x any)   { *h = append(*h, x.(stream)) }
func (h *startHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
