package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Selector says whose timeline is wanted: one request, one session, or
// every request and session of a user.
type Selector struct {
	RequestID, SessionID, User string
}

// Related is the set of requests and sessions a selector follows, found
// from a rebuild of the whole range: a request brings its session (and the
// staged container's earlier events, by session), a session its request.
type Related struct {
	Requests map[string]bool
	Sessions map[string]bool
}

// Relate finds what sel follows in st.
func Relate(st *State, sel Selector) Related {
	rel := Related{Requests: map[string]bool{}, Sessions: map[string]bool{}}
	addRequest := func(id string) {
		if id == "" {
			return
		}
		rel.Requests[id] = true
		if q := st.Requests[id]; q != nil && q.SessionID != "" {
			rel.Sessions[q.SessionID] = true
		}
	}
	switch {
	case sel.RequestID != "":
		addRequest(sel.RequestID)
		for id, ss := range st.Sessions {
			if ss.RequestID == sel.RequestID {
				rel.Sessions[id] = true
			}
		}
	case sel.SessionID != "":
		rel.Sessions[sel.SessionID] = true
		if ss := st.Sessions[sel.SessionID]; ss != nil {
			addRequest(ss.RequestID)
		}
	case sel.User != "":
		for id, q := range st.Requests {
			if q.User == sel.User {
				addRequest(id)
			}
		}
		for id, ss := range st.Sessions {
			if ss.User == sel.User {
				rel.Sessions[id] = true
				addRequest(ss.RequestID)
			}
		}
	}
	return rel
}

// Entry is one event of a timeline.
type Entry struct {
	Seq       uint64          `json:"seq"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type"`
	Subject   string          `json:"subject"`
	Source    string          `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	SessionID string          `json:"session_id,omitempty"`
	What      string          `json:"what"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Entry returns the record as a timeline entry if it is about what rel
// follows.
func (rel Related) Entry(r Record) (Entry, bool) {
	ev, err := r.Event()
	if err != nil {
		return Entry{}, false
	}
	var d data
	if json.Unmarshal(ev.Data, &d) != nil {
		return Entry{}, false
	}
	if !rel.Requests[d.RequestID] && !rel.Sessions[d.SessionID] {
		return Entry{}, false
	}
	t := ev.Time
	if t.IsZero() {
		t = r.Time
	}
	return Entry{Seq: r.Seq, Time: t.UTC(), Type: ev.Type, Subject: r.Subject, Source: ev.Source, ID: ev.ID,
		RequestID: d.RequestID, SessionID: d.SessionID, What: describe(ev.Type, ev.Data), Data: ev.Data}, true
}

// describe says in a line what an event records.
func describe(eventType string, raw json.RawMessage) string {
	var d struct {
		data
		Zones    []string `json:"zones"`
		Image    string   `json:"image"`
		Method   string   `json:"method"`
		OK       *bool    `json:"ok"`
		Detail   string   `json:"detail"`
		Duration int      `json:"duration_ms"`
		URL      string   `json:"url"`
	}
	_ = json.Unmarshal(raw, &d)
	step := ""
	if d.ZoneSearchStep > 0 {
		step = fmt.Sprintf(" (zone search step %d)", d.ZoneSearchStep)
	}
	switch eventType {
	case events.TypeSessionRequested:
		return fmt.Sprintf("%s asks for %s in %s", d.User, d.Workspace, d.Zone)
	case events.TypeSessionAssigned:
		return fmt.Sprintf("staged session claimed for %s in %s%s, staging config %s", d.User, d.Zone, step, d.StagingConfigID)
	case events.TypeProvisionRequested:
		if d.Origin == "staged" {
			return fmt.Sprintf("staged session to create for staging config %s", d.StagingConfigID)
		}
		return fmt.Sprintf("on demand (%s), zones %s", cmp.Or(d.OnDemandReason, "?"), strings.Join(d.Zones, ", "))
	case events.TypeContainerCreated:
		return fmt.Sprintf("container %.12s created on %s (%s)", d.ContainerID, d.Agent, d.Image)
	case events.TypeContainerRemoved:
		return fmt.Sprintf("container %.12s removed from %s: %s", d.ContainerID, d.Agent, d.Cause)
	case events.TypeSessionStaged:
		return fmt.Sprintf("staged on %s in %s, container %.12s", d.Agent, d.Zone, d.ContainerID)
	case events.TypeSessionAssignRan:
		res := "failed"
		if d.OK != nil && *d.OK {
			res = "ok"
		}
		s := fmt.Sprintf("%s %s in %d ms", d.Method, res, d.Duration)
		if d.Detail != "" {
			s += ": " + d.Detail
		}
		return s
	case events.TypeSessionReady:
		where := d.Agent
		if d.Server != "" {
			where = "server " + d.Server
		}
		return fmt.Sprintf("ready for %s on %s in %s%s (%s)", d.User, where, d.Zone, step, d.Origin)
	case events.TypeSessionFailed:
		return "failed: " + events.RecordedFailure(d.Reason, d.Detail)
	case events.TypeSessionDestroy:
		return "destroy asked: " + d.Reason
	case events.TypeSessionExpired:
		return "expired: " + d.Reason
	case events.TypeSessionDestroyed:
		if d.Cause != "" && d.Cause != d.Reason {
			return fmt.Sprintf("destroyed: %s (%s)", d.Cause, d.Reason)
		}
		return "destroyed: " + d.Reason
	case events.TypeSessionKeepalive:
		return "keepalive"
	case events.TypeStagingViolation:
		return fmt.Sprintf("violation: %s for %s", d.Setting, d.User)
	}
	return eventType
}
