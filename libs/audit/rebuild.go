package audit

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Session is a session as the log describes it.
type Session struct {
	ID              string `json:"id"`
	RequestID       string `json:"request_id,omitempty"`
	User            string `json:"user,omitempty"`
	Workspace       string `json:"workspace,omitempty"`
	Zone            string `json:"zone,omitempty"`
	Agent           string `json:"agent,omitempty"`
	Server          string `json:"server,omitempty"`
	ContainerID     string `json:"container_id,omitempty"`
	StagingConfigID string `json:"staging_config_id,omitempty"`
	Origin          string `json:"origin,omitempty"`
	OnDemandReason  string `json:"on_demand_reason,omitempty"`
	Status          string `json:"status"`
	Failure         string `json:"failure,omitempty"`
	DestroyCause    string `json:"destroy_cause,omitempty"`
	FirstSeq        uint64 `json:"first_seq"`
	LastSeq         uint64 `json:"last_seq"`
	// Since is when its first event was written.
	Since time.Time `json:"since"`
}

// Request is a session request and what came of it.
type Request struct {
	ID        string `json:"request_id"`
	User      string `json:"user,omitempty"`
	Workspace string `json:"workspace,omitempty"`
	Zone      string `json:"zone,omitempty"`
	Requester string `json:"requester,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// Served: staged (in the requested zone), staged_alternate (a staged
	// session of another zone), or on_demand.
	Served         string `json:"served,omitempty"`
	ZoneSearchStep int    `json:"zone_search_step,omitempty"`
	OnDemandReason string `json:"on_demand_reason,omitempty"`
	// Outcome: ready, failed, or "" while none is in the log.
	Outcome    string `json:"outcome,omitempty"`
	FailReason string `json:"fail_reason,omitempty"`
	Seq        uint64 `json:"seq"`
}

// Violation is a staging violation in the log.
type Violation struct {
	RequestID string `json:"request_id"`
	User      string `json:"user"`
	Workspace string `json:"workspace"`
	Setting   string `json:"setting"`
	SessionID string `json:"session_id,omitempty"`
	Seq       uint64 `json:"seq"`
}

// ConfigObject is a configuration object as its last config.changed left it.
type ConfigObject struct {
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Deleted bool            `json:"deleted"`
	After   json.RawMessage `json:"after,omitempty"`
	Seq     uint64          `json:"seq"`
}

// Summary counts what a range of the log holds.
type Summary struct {
	Events          int            `json:"events"`
	FirstSeq        uint64         `json:"first_seq,omitempty"`
	LastSeq         uint64         `json:"last_seq,omitempty"`
	First           time.Time      `json:"first,omitzero"`
	Last            time.Time      `json:"last,omitzero"`
	EventsByType    map[string]int `json:"events_by_type"`
	Undecodable     int            `json:"undecodable"`
	Requests        int            `json:"requests"`
	Ready           int            `json:"ready"`
	Failed          int            `json:"failed"`
	Pending         int            `json:"pending"`
	StagedHere      int            `json:"staged_here"`
	StagedAlternate int            `json:"staged_alternate_zone"`
	OnDemand        int            `json:"on_demand"`
	// OnDemandByReason: no_staging_config, none_staged,
	// permissions_differ:<field>, incompatible:<setting>, server_pool.
	OnDemandByReason    map[string]int `json:"on_demand_by_reason"`
	FailedByReason      map[string]int `json:"failed_by_reason"`
	ViolationsBySetting map[string]int `json:"violations_by_setting"`
	DestroyedByCause    map[string]int `json:"destroyed_by_cause"`
	ConfigChanges       map[string]int `json:"config_changes"`
	// AgentsAdded and AgentsDeleted count the autoscaled agents the range
	// saw made (agent.lifecycle to provisioning) and deleted (to deleted).
	AgentsAdded      int            `json:"agents_added"`
	AgentsDeleted    int            `json:"agents_deleted"`
	Sessions         int            `json:"sessions"`
	SessionsByStatus map[string]int `json:"sessions_by_status"`
}

// State is what the log says, rebuilt event by event (Apply), in memory.
// It never writes anywhere: rebuilding has no side effects.
type State struct {
	Sessions   map[string]*Session
	Requests   map[string]*Request
	Violations []Violation
	Config     map[string]*ConfigObject // by kind + "/" + id
	summary    Summary
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Sessions: map[string]*Session{}, Requests: map[string]*Request{}, Config: map[string]*ConfigObject{},
		summary: Summary{EventsByType: map[string]int{}, OnDemandByReason: map[string]int{}, FailedByReason: map[string]int{},
			ViolationsBySetting: map[string]int{}, DestroyedByCause: map[string]int{}, ConfigChanges: map[string]int{},
			SessionsByStatus: map[string]int{}},
	}
}

// statusRank orders a session's statuses: its events may reach the stream
// out of order (different services publish them), and a session only ever
// moves forward, so the state keeps the furthest status seen. failed is
// final: a failed session whose container is later removed stays failed.
var statusRank = map[string]int{
	"provisioning": 1, "staged": 2, "assigning": 3, "running": 4, "destroying": 5, "destroyed": 6, "failed": 7,
}

// data is the union of the payload fields the rebuild reads.
type data struct {
	RequestID       string          `json:"request_id"`
	SessionID       string          `json:"session_id"`
	User            string          `json:"user"`
	Workspace       string          `json:"workspace"`
	Zone            string          `json:"zone"`
	RequestedZone   string          `json:"requested_zone"`
	ZoneSearchStep  int             `json:"zone_search_step"`
	Agent           string          `json:"agent"`
	Server          string          `json:"server"`
	ContainerID     string          `json:"container_id"`
	Origin          string          `json:"origin"`
	StagingConfigID string          `json:"staging_config_id"`
	OnDemandReason  string          `json:"on_demand_reason"`
	Reason          string          `json:"reason"`
	Cause           string          `json:"cause"`
	Setting         string          `json:"setting"`
	Kind            string          `json:"kind"`
	Op              string          `json:"op"`
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	After           json.RawMessage `json:"after"`
	To              string          `json:"to"`
}

// Apply adds one event of the log to the state.
func (s *State) Apply(r Record) {
	sm := &s.summary
	sm.Events++
	if sm.FirstSeq == 0 {
		sm.FirstSeq, sm.First = r.Seq, r.Time
	}
	sm.LastSeq, sm.Last = r.Seq, r.Time
	ev, err := r.Event()
	var d data
	if err == nil {
		err = json.Unmarshal(ev.Data, &d)
	}
	if err != nil {
		sm.Undecodable++
		return
	}
	sm.EventsByType[ev.Type]++
	switch ev.Type {
	case events.TypeSessionRequested:
		if d.RequestID == "" {
			return
		}
		if _, ok := s.Requests[d.RequestID]; !ok {
			s.Requests[d.RequestID] = &Request{ID: d.RequestID, User: d.User, Workspace: d.Workspace, Zone: d.Zone,
				Requester: events.RequesterOf(r.Subject), Seq: r.Seq}
		}
	case events.TypeSessionAssigned:
		ss := s.session(d.SessionID, r)
		ss.advance("assigning")
		ss.RequestID, ss.User, ss.Origin = d.RequestID, d.User, "staged"
		set(&ss.Workspace, d.Workspace)
		set(&ss.Zone, d.Zone)
		set(&ss.StagingConfigID, d.StagingConfigID)
		if q := s.request(d.RequestID, r); q != nil {
			q.SessionID, q.ZoneSearchStep = d.SessionID, d.ZoneSearchStep
			q.Served = served("staged", d.ZoneSearchStep, cmp.Or(d.RequestedZone, q.Zone), d.Zone)
		}
	case events.TypeProvisionRequested:
		ss := s.session(d.SessionID, r)
		ss.advance("provisioning")
		set(&ss.RequestID, d.RequestID)
		set(&ss.Workspace, d.Workspace)
		set(&ss.Origin, d.Origin)
		set(&ss.StagingConfigID, d.StagingConfigID)
		set(&ss.OnDemandReason, d.OnDemandReason)
		if q := s.request(d.RequestID, r); q != nil {
			q.SessionID, q.Served, q.OnDemandReason = d.SessionID, "on_demand", d.OnDemandReason
		}
	case events.TypeContainerCreated:
		ss := s.session(d.SessionID, r)
		set(&ss.ContainerID, d.ContainerID)
		set(&ss.Agent, d.Agent)
		set(&ss.Zone, d.Zone)
	case events.TypeSessionStaged:
		ss := s.session(d.SessionID, r)
		ss.advance("staged")
		ss.Origin = "staged"
		set(&ss.Workspace, d.Workspace)
		set(&ss.Zone, d.Zone)
		set(&ss.Agent, d.Agent)
		set(&ss.ContainerID, d.ContainerID)
		set(&ss.StagingConfigID, d.StagingConfigID)
	case events.TypeSessionReady:
		if d.SessionID != "" {
			ss := s.session(d.SessionID, r)
			ss.advance("running")
			set(&ss.RequestID, d.RequestID)
			set(&ss.User, d.User)
			set(&ss.Workspace, d.Workspace)
			set(&ss.Zone, d.Zone)
			set(&ss.Agent, d.Agent)
			set(&ss.Server, d.Server)
			set(&ss.ContainerID, d.ContainerID)
			set(&ss.Origin, d.Origin)
		}
		if q := s.request(d.RequestID, r); q != nil {
			q.Outcome = "ready"
			set(&q.SessionID, d.SessionID)
			if q.ZoneSearchStep == 0 {
				q.ZoneSearchStep = d.ZoneSearchStep
			}
			if q.Served == "" {
				// Its decision is before the range read.
				q.Served = served(d.Origin, d.ZoneSearchStep, cmp.Or(d.RequestedZone, q.Zone), d.Zone)
			}
		}
	case events.TypeSessionFailed:
		if d.SessionID != "" {
			ss := s.session(d.SessionID, r)
			if d.Reason == events.ReasonDestroyed {
				// The requester's outcome of a session destroyed before
				// it was ready; the session itself goes on to destroyed.
				ss.advance("destroying")
			} else {
				ss.advance("failed")
				ss.Failure = d.Reason
			}
			set(&ss.RequestID, d.RequestID)
		}
		// A request_id used again for another user or workspace is
		// refused under that id: the first request keeps its outcome.
		if q := s.request(d.RequestID, r); q != nil && (q.Outcome == "" || d.Reason != events.ReasonRequestConflict) {
			q.Outcome, q.FailReason = "failed", d.Reason
			set(&q.SessionID, d.SessionID)
		}
	case events.TypeSessionDestroy, events.TypeSessionExpired:
		if ss := s.Sessions[d.SessionID]; ss != nil {
			ss.advance("destroying")
			ss.touch(r)
		}
	case events.TypeSessionDestroyed:
		ss := s.session(d.SessionID, r)
		ss.advance("destroyed")
		ss.DestroyCause = cmp.Or(d.Cause, d.Reason)
		sm.DestroyedByCause[ss.DestroyCause]++
	case events.TypeStagingViolation:
		s.Violations = append(s.Violations, Violation{RequestID: d.RequestID, User: d.User, Workspace: d.Workspace,
			Setting: d.Setting, SessionID: d.SessionID, Seq: r.Seq})
		sm.ViolationsBySetting[d.Setting]++
	case events.TypeConfigChanged:
		key := d.Kind + "/" + d.ID
		s.Config[key] = &ConfigObject{Kind: d.Kind, ID: d.ID, Name: d.Name, Deleted: d.Op == "deleted", After: d.After, Seq: r.Seq}
		sm.ConfigChanges[d.Kind+" "+d.Op]++
	case events.TypeAgentLifecycle:
		switch d.To {
		case events.AgentProvisioning:
			sm.AgentsAdded++
		case events.AgentDeleted:
			sm.AgentsDeleted++
		}
	}
}

// served says how a request was served: on_demand, or staged in the zone
// it asked for or in an alternate one (a later step of the zone search, or
// another zone than the one requested).
func served(origin string, step int, requested, zone string) string {
	if origin != "staged" {
		return origin
	}
	if step > 1 || (requested != "" && zone != "" && requested != zone) {
		return "staged_alternate"
	}
	return "staged"
}

func (s *State) session(id string, r Record) *Session {
	ss := s.Sessions[id]
	if ss == nil {
		ss = &Session{ID: id, FirstSeq: r.Seq, Since: r.Time}
		s.Sessions[id] = ss
	}
	ss.touch(r)
	return ss
}

func (ss *Session) touch(r Record) { ss.LastSeq = r.Seq }

// advance moves the session to status unless it is already further on.
func (ss *Session) advance(status string) {
	if statusRank[status] > statusRank[ss.Status] {
		ss.Status = status
	}
}

// request is the request of id, made known by its own event or, when that
// is before the range read, by this one.
func (s *State) request(id string, r Record) *Request {
	if id == "" {
		return nil
	}
	q := s.Requests[id]
	if q == nil {
		q = &Request{ID: id, Seq: r.Seq}
		s.Requests[id] = q
	}
	return q
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// Summary counts the state: requests and how they were served, on-demand
// sessions by reason, failures by reason, violations by setting.
func (s *State) Summary() Summary {
	sm := s.summary
	sm.OnDemandByReason, sm.FailedByReason, sm.SessionsByStatus = map[string]int{}, map[string]int{}, map[string]int{}
	sm.Requests, sm.Ready, sm.Failed, sm.Pending, sm.StagedHere, sm.StagedAlternate, sm.OnDemand = 0, 0, 0, 0, 0, 0, 0
	for _, q := range s.Requests {
		sm.Requests++
		switch q.Outcome {
		case "ready":
			sm.Ready++
		case "failed":
			sm.Failed++
			sm.FailedByReason[q.FailReason]++
		default:
			sm.Pending++
		}
		switch q.Served {
		case "staged":
			sm.StagedHere++
		case "staged_alternate":
			sm.StagedAlternate++
		case "on_demand":
			sm.OnDemand++
			sm.OnDemandByReason[cmp.Or(q.OnDemandReason, "unknown")]++
		}
	}
	for _, ss := range s.Sessions {
		sm.Sessions++
		sm.SessionsByStatus[cmp.Or(ss.Status, "unknown")]++
	}
	return sm
}

// SortedKeys returns a count map's keys, largest count first.
func SortedKeys(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return keys
}
