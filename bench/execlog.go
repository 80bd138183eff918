package bench

import (
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
)

// handoff is the provisioner's own timing of one staged hand-off, from its
// "staged session assigned" log entry: the assign exec or the assign hook,
// loading the session before it, committing after it, and the whole
// handling.
type handoff struct {
	exec, hook, load, commit, handled time.Duration
}

// execLog keeps the provisioner's own timing of each staged hand-off, by
// session: it splits the provisioner's hop of a staged request into the
// exec (or hook) as the provisioner saw it and everything around it.
type execLog struct {
	mu   sync.Mutex
	took map[string]handoff
}

func newExecLog() *execLog { return &execLog{took: map[string]handoff{}} }

// core is a zap core that feeds the log; it writes nothing anywhere.
func (l *execLog) core() zapcore.Core { return execCore{log: l} }

// durations returns, sorted, the exec times of the sessions in ids that
// were logged.
func (l *execLog) durations(ids []string) []time.Duration {
	return l.pick(ids, func(h handoff) time.Duration { return h.exec })
}

// pick returns, sorted, what of returns for the sessions in ids that were
// logged with it.
func (l *execLog) pick(ids []string, of func(handoff) time.Duration) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, id := range ids {
		if h, ok := l.took[id]; ok && of(h) > 0 {
			out = append(out, of(h))
		}
	}
	return sorted(out).lat
}

type execCore struct {
	log    *execLog
	fields []zapcore.Field
}

func (c execCore) Enabled(l zapcore.Level) bool { return l >= zapcore.InfoLevel }

func (c execCore) With(fs []zapcore.Field) zapcore.Core {
	return execCore{log: c.log, fields: append(append([]zapcore.Field{}, c.fields...), fs...)}
}

func (c execCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "staged session assigned" {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c execCore) Write(_ zapcore.Entry, fs []zapcore.Field) error {
	var id string
	var h handoff
	for _, f := range append(append([]zapcore.Field{}, c.fields...), fs...) {
		if f.Key == "session_id" && f.Type == zapcore.StringType {
			id = f.String
			continue
		}
		if f.Type != zapcore.DurationType {
			continue
		}
		d := time.Duration(f.Integer)
		switch f.Key {
		case "assign_exec":
			h.exec = d
		case "assign_hook":
			h.hook = d
		case "load":
			h.load = d
		case "commit":
			h.commit = d
		case "handled":
			h.handled = d
		}
	}
	if id != "" && h.handled > 0 {
		c.log.mu.Lock()
		c.log.took[id] = h
		c.log.mu.Unlock()
	}
	return nil
}

func (c execCore) Sync() error { return nil }
