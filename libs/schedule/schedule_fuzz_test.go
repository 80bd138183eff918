package schedule

import (
	"testing"
	"time"
)

// FuzzParse feeds a schedule body to Parse: it never panics (robfig/cron's
// parser has on some inputs), and a schedule it accepts can be validated
// and read without panicking, its effective size one of its entries' or
// the base.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `[1]`, `[{}]`, `[null]`,
		`[{"cron":"0 13 * * 1-5","timezone":"Europe/Berlin","duration":"2h","desired_sessions":30}]`,
		`[{"cron":"@daily","duration":"1m","desired_sessions":0},{"cron":"30 2 * * *","timezone":"Europe/Berlin","duration":"90m","desired_sessions":2}]`,
		`[{"cron":"TZ=UTC","duration":"1h","desired_sessions":1}]`, `[{"cron":"CRON_TZ=","duration":"1h","desired_sessions":1}]`,
		`[{"cron":"*/0 * * * *","duration":"1h","desired_sessions":1}]`, `[{"cron":"0 0 29 2 *","duration":"8784h","desired_sessions":1}]`,
		`[{"cron":"* * * * *","timezone":"Australia/Lord_Howe","duration":"1m","desired_sessions":2147483647}]`,
	} {
		f.Add([]byte(s), int64(1796083200))
	}
	f.Fuzz(func(t *testing.T, raw []byte, at int64) {
		s, errs := Parse(raw)
		if len(errs) > 0 {
			return
		}
		now := time.Unix(at%(1<<34), 0)
		_ = Validate(s, now)
		desired, active := Effective(s, 3, now)
		if active == nil && desired != 3 || active != nil && desired != int(s[*active].DesiredSessions) {
			t.Fatalf("Effective = %d, %v for %s", desired, active, raw)
		}
		if next := NextChange(s, now); !next.IsZero() && !next.After(now) {
			t.Fatalf("NextChange(%s) = %s, not after %s", raw, next, now)
		}
	})
}
