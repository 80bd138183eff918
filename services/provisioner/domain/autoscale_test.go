package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

func TestDecideScale(t *testing.T) {
	now := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	cores := func(c float64, mb int64) domain.Resources {
		return domain.Resources{MilliCores: domain.MilliCores(c), MemoryMB: mb}
	}
	cfg := domain.ScaleConfig{Enabled: true, Standby: cores(2, 0), MinAgents: 0, MaxAgents: 3,
		Backoff: 10 * time.Minute, AgentSize: cores(4, 8192)}
	// agent is an autoscaled, active agent of 4 cores and 8 GiB that
	// answers, using used cores and 1 GiB a core.
	agent := func(name string, used float64) domain.ScaleAgent {
		return domain.ScaleAgent{Name: name, Lifecycle: domain.LifecycleActive, Since: now.Add(-time.Hour), Autoscaled: true,
			Capacity: cores(4, 8192), Used: cores(used, int64(used*1024)), Sessions: int(used), UserSessions: int(used)}
	}
	with := func(a domain.ScaleAgent, f func(*domain.ScaleAgent)) domain.ScaleAgent { f(&a); return a }
	tests := []struct {
		name   string
		cfg    func(*domain.ScaleConfig)
		agents []domain.ScaleAgent
		last   time.Duration // since the last change; 0: never
		failed time.Duration // since the last failure; 0: none
		want   domain.ScaleDecision
		reason string // a part of the reason
	}{
		{name: "disabled does nothing, even below min",
			cfg:  func(c *domain.ScaleConfig) { c.Enabled = false; c.MinAgents = 2 },
			want: domain.ScaleDecision{Action: domain.ScaleNone}, reason: "disabled"},
		{name: "no agent and a standby: one agent",
			want: domain.ScaleDecision{Action: domain.ScaleUp, Count: 1}, reason: "0 cores, 0 MiB free, standby is 2 cores"},
		{name: "min_agents brings the difference at once",
			cfg:    func(c *domain.ScaleConfig) { c.MinAgents = 3 },
			agents: []domain.ScaleAgent{agent("a1", 0)},
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 2}, reason: "1 agent(s), min_agents is 3"},
		{name: "enough free: nothing, at min",
			cfg:    func(c *domain.ScaleConfig) { c.MinAgents = 1 },
			agents: []domain.ScaleAgent{agent("a1", 1)},
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "3 cores, 7168 MiB free"},
		{name: "the first agent filling up: a second before it is full",
			agents: []domain.ScaleAgent{agent("a1", 2.5)},
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 1}, reason: "1.5 cores, 5632 MiB free, standby is 2 cores"},
		{name: "one at a time: wait for the agent being made",
			agents: []domain.ScaleAgent{agent("a1", 4), with(agent("a2", 0), func(a *domain.ScaleAgent) {
				a.Lifecycle = domain.LifecycleProvisioning
				a.Capacity = cores(1, 1024)
			})},
			want: domain.ScaleDecision{Action: domain.ScaleNone}, reason: "waiting for agent a2 to come up"},
		{name: "an agent being made counts at its full size",
			agents: []domain.ScaleAgent{agent("a1", 4), with(agent("a2", 0), func(a *domain.ScaleAgent) { a.Lifecycle = domain.LifecycleProvisioning })},
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "agent a2 is coming up"},
		{name: "aggressive: as many as the shortfall needs",
			cfg: func(c *domain.ScaleConfig) {
				c.Aggressive = true
				c.Standby = cores(10, 0)
				c.MaxAgents = 5
			},
			agents: []domain.ScaleAgent{agent("a1", 3)},
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 3}, reason: "(aggressive)"},
		{name: "aggressive by memory, bounded by max_agents",
			cfg: func(c *domain.ScaleConfig) {
				c.Aggressive = true
				c.Standby = cores(0, 40000)
			},
			agents: []domain.ScaleAgent{agent("a1", 4)},
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 2}},
		{name: "at max_agents: nothing, and the reason says so",
			cfg:    func(c *domain.ScaleConfig) { c.MaxAgents = 2 },
			agents: []domain.ScaleAgent{agent("a1", 4), agent("a2", 3)},
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "at max_agents (2)"},
		{name: "an agent that does not answer gives nothing free",
			agents: []domain.ScaleAgent{with(agent("a1", 0), func(a *domain.ScaleAgent) { a.Down = true })},
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 1}, reason: "0 cores"},
		{name: "hand-entered agents count towards the free capacity only",
			cfg: func(c *domain.ScaleConfig) { c.MaxAgents = 1 },
			agents: []domain.ScaleAgent{with(agent("manual", 0), func(a *domain.ScaleAgent) { a.Autoscaled = false }),
				agent("a1", 0)},
			last: time.Hour,
			want: domain.ScaleDecision{Action: domain.ScaleDrain, Agent: "a1"}},
		{name: "short of the standby: a draining agent is taken back before a new one",
			agents: []domain.ScaleAgent{agent("a1", 4), with(agent("a2", 1), func(a *domain.ScaleAgent) { a.Lifecycle = domain.LifecycleDraining })},
			want:   domain.ScaleDecision{Action: domain.ScaleUndrain, Agent: "a2"}},
		{name: "more than needed, within the backoff: nothing",
			agents: []domain.ScaleAgent{agent("a1", 1), agent("a2", 0)},
			last:   5 * time.Minute,
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "no agent is taken away before 2026-12-06T13:05:00Z"},
		{name: "more than needed, past the backoff: drain the emptiest, newest agent",
			agents: []domain.ScaleAgent{agent("a1", 1), agent("a2", 0), with(agent("a3", 0), func(a *domain.ScaleAgent) { a.Since = now.Add(-time.Minute * 30) })},
			last:   11 * time.Minute,
			want:   domain.ScaleDecision{Action: domain.ScaleDrain, Agent: "a3"}, reason: "without it"},
		{name: "no drain when the others would fall below the standby",
			agents: []domain.ScaleAgent{agent("a1", 3), agent("a2", 3)},
			last:   time.Hour,
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "without agent a1 only 1 cores"},
		{name: "the emptiest agent cannot go but another can",
			agents: []domain.ScaleAgent{agent("a1", 3), agent("a2", 2)},
			last:   time.Hour,
			// Without a2 (2 users) 1 core is free; without a1 (3 users), 2.
			want: domain.ScaleDecision{Action: domain.ScaleDrain, Agent: "a1"}},
		{name: "staged sessions of the drained agent count against the others",
			cfg: func(c *domain.ScaleConfig) { c.Standby = cores(1, 0) },
			agents: []domain.ScaleAgent{with(agent("manual", 3), func(a *domain.ScaleAgent) { a.Autoscaled = false }),
				with(agent("a2", 2), func(a *domain.ScaleAgent) {
					a.StagedUsed = cores(2, 2048)
					a.UserSessions = 0
				})},
			last: time.Hour,
			// 3 cores free; without a2 the manual agent takes its 2 staged
			// sessions: 1 - 2 < 1.
			want: domain.ScaleDecision{Action: domain.ScaleNone}, reason: "without agent a2 only -1 cores"},
		{name: "an agent that does not answer is drained first",
			agents: []domain.ScaleAgent{agent("a1", 0), agent("a2", 0), with(agent("dead", 2), func(a *domain.ScaleAgent) { a.Down = true })},
			last:   time.Hour,
			want:   domain.ScaleDecision{Action: domain.ScaleDrain, Agent: "dead"}},
		{name: "at max_agents, one down for the backoff is drained to be replaced",
			cfg: func(c *domain.ScaleConfig) { c.MaxAgents = 2 },
			agents: []domain.ScaleAgent{agent("a1", 4), with(agent("dead", 2), func(a *domain.ScaleAgent) {
				a.Down = true
				a.DownSince = now.Add(-11 * time.Minute)
			})},
			want: domain.ScaleDecision{Action: domain.ScaleDrain, Agent: "dead"}, reason: "has not answered since 2026-12-06T12:49:00Z"},
		{name: "at max_agents, one down for less than the backoff stays",
			cfg: func(c *domain.ScaleConfig) { c.MaxAgents = 2 },
			agents: []domain.ScaleAgent{agent("a1", 4), with(agent("dead", 2), func(a *domain.ScaleAgent) {
				a.Down = true
				a.DownSince = now.Add(-time.Minute)
			})},
			want: domain.ScaleDecision{Action: domain.ScaleNone}, reason: "at max_agents (2)"},
		{name: "max_agents lowered: drain down to it, standby or not",
			cfg:    func(c *domain.ScaleConfig) { c.MaxAgents = 1 },
			agents: []domain.ScaleAgent{agent("a1", 4), agent("a2", 3)},
			want:   domain.ScaleDecision{Action: domain.ScaleDrain, Agent: "a2"}, reason: "2 agent(s), max_agents is 1"},
		{name: "short: a drained agent is taken back rather than deleted",
			agents: []domain.ScaleAgent{agent("a1", 4), with(agent("a2", 0), func(a *domain.ScaleAgent) {
				a.Lifecycle = domain.LifecycleDraining
				a.Since = now.Add(-time.Hour)
			})},
			want: domain.ScaleDecision{Action: domain.ScaleUndrain, Agent: "a2"}},
		{name: "a GPU standby that the machines cannot meet adds none",
			cfg: func(c *domain.ScaleConfig) {
				c.Standby = domain.Resources{}
				c.StandbyGPUs = 1
			},
			agents: []domain.ScaleAgent{agent("a1", 0)},
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "a new agent would add no GPUs"},
		{name: "never below min_agents",
			cfg:    func(c *domain.ScaleConfig) { c.MinAgents = 2 },
			agents: []domain.ScaleAgent{agent("a1", 0), agent("a2", 0)},
			last:   time.Hour,
			want:   domain.ScaleDecision{Action: domain.ScaleNone}},
		{name: "a drained agent with sessions left stays",
			agents: []domain.ScaleAgent{agent("a1", 0), with(agent("a2", 1), func(a *domain.ScaleAgent) {
				a.Lifecycle = domain.LifecycleDraining
				a.Since = now.Add(-time.Hour)
			})},
			last: time.Hour,
			want: domain.ScaleDecision{Action: domain.ScaleNone}},
		{name: "a drained, empty agent is deleted after the backoff",
			agents: []domain.ScaleAgent{agent("a1", 0), with(agent("a2", 0), func(a *domain.ScaleAgent) {
				a.Lifecycle = domain.LifecycleDraining
				a.Since = now.Add(-11 * time.Minute)
			})},
			want: domain.ScaleDecision{Action: domain.ScaleDelete, Agent: "a2"}, reason: "drained since 2026-12-06T12:49:00Z"},
		{name: "a drained, empty agent within the backoff stays",
			agents: []domain.ScaleAgent{agent("a1", 0), with(agent("a2", 0), func(a *domain.ScaleAgent) {
				a.Lifecycle = domain.LifecycleDraining
				a.Since = now.Add(-9 * time.Minute)
			})},
			last: 9 * time.Minute,
			want: domain.ScaleDecision{Action: domain.ScaleNone}},
		{name: "GPUs: a standby of GPUs adds agents that have them",
			cfg: func(c *domain.ScaleConfig) {
				c.Standby = domain.Resources{}
				c.StandbyGPUs = 1
				c.AgentGPUs = 1
			},
			agents: []domain.ScaleAgent{agent("a1", 0)},
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 1}, reason: "standby is 0 cores, 0 MiB, 1 GPUs"},
		{name: "a failure holds scale-up back for RetryAfter",
			agents: []domain.ScaleAgent{agent("a1", 4)},
			failed: 30 * time.Second,
			want:   domain.ScaleDecision{Action: domain.ScaleNone}, reason: "the last attempt failed at 2026-12-06T12:59:30Z"},
		{name: "and no longer after it",
			agents: []domain.ScaleAgent{agent("a1", 4)},
			failed: 2 * time.Minute,
			want:   domain.ScaleDecision{Action: domain.ScaleUp, Count: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			s := domain.ScaleState{Config: c, Agents: tt.agents, Now: now, RetryAfter: time.Minute}
			if tt.failed > 0 {
				s.FailedAt = now.Add(-tt.failed)
			}
			if tt.last > 0 {
				s.LastScaleAt = now.Add(-tt.last)
			}
			got := domain.DecideScale(s)
			if got.Action != tt.want.Action || got.Count != tt.want.Count || got.Agent != tt.want.Agent {
				t.Fatalf("DecideScale = %s %d %q (%s), want %s %d %q", got.Action, got.Count, got.Agent, got.Reason,
					tt.want.Action, tt.want.Count, tt.want.Agent)
			}
			if got.Reason == "" || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", got.Reason, tt.reason)
			}
		})
	}
}
