package bench

import (
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
)

// execLog keeps the provisioner's own timing of each assign exec, from its
// "staged session assigned" log entries (field assign_exec), by session:
// it splits the provisioner's hop of a staged request into the exec as the
// provisioner saw it and everything around it.
type execLog struct {
	mu   sync.Mutex
	took map[string]time.Duration
}

func newExecLog() *execLog { return &execLog{took: map[string]time.Duration{}} }

// core is a zap core that feeds the log; it writes nothing anywhere.
func (l *execLog) core() zapcore.Core { return execCore{log: l} }

// durations returns, sorted, the exec times of the sessions in ids that
// were logged.
func (l *execLog) durations(ids []string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, id := range ids {
		if d, ok := l.took[id]; ok {
			out = append(out, d)
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
	var took time.Duration
	for _, f := range append(append([]zapcore.Field{}, c.fields...), fs...) {
		switch {
		case f.Key == "session_id" && f.Type == zapcore.StringType:
			id = f.String
		case f.Key == "assign_exec" && f.Type == zapcore.DurationType:
			took = time.Duration(f.Integer)
		}
	}
	if id != "" && took > 0 {
		c.log.mu.Lock()
		c.log.took[id] = took
		c.log.mu.Unlock()
	}
	return nil
}

func (c execCore) Sync() error { return nil }
