package staging

import (
	"context"
	"time"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Pools are the staging pools (adapters/postgres). Each is reconciled in
// one transaction holding its staging config's row lock, so that replicas
// reconciling it at once act one after the other.
type Pools interface {
	// ListStagingConfigs returns the staging configs a pass visits: every
	// live one, and deleted ones that still hold staged or provisioning
	// sessions.
	ListStagingConfigs(ctx context.Context) ([]string, error)
	// ReconcileStagingConfig brings staging config id towards its desired
	// size (its schedule's, while a run of it is in effect) as
	// pass.Decide plans it, and says what it did.
	ReconcileStagingConfig(ctx context.Context, id string, pass PoolPass) (PoolOutcome, error)
}

// PoolPass is what a reconcile pass brings to ReconcileStagingConfig
// besides the config's id.
type PoolPass struct {
	// RefillLimit bounds the staged sessions provisioning at once over
	// every pool.
	RefillLimit int
	// CapacityWaits and Forced go to domain.PoolState as they are.
	CapacityWaits int
	Forced        bool
	// Decide is the pure decision: domain.PlanPool with the reconciler's
	// settings.
	Decide func(domain.PoolState) domain.PoolPlan
	// Outages are the engines known not to answer: the room in the zone
	// counts none on their agents, as placement puts nothing there (nil
	// when none is known).
	Outages EngineOutages
	// ScheduleAt, when set, is the time the config's schedule is read at;
	// zero means the database's clock, the pass's own time
	// (ReconcilerConfig.ScheduleClock).
	ScheduleAt time.Time
}

// EngineOutages tells which engines are known not to answer
// (app/enginehealth).
type EngineOutages interface {
	// Outage is why the engine at endpoint is known not to answer, and
	// since when; nil when it is not known to be down.
	Outage(endpoint string) *domain.EngineOutage
}

// PoolOutcome is what one reconcile of a staging config did.
type PoolOutcome struct {
	Plan domain.PoolPlan
	// Created are the sessions inserted (and their provisioning requested).
	Created []string
	// Destroyed are the sessions moved to destroying.
	Destroyed []string
	// Gone is true when the staging config no longer exists.
	Gone bool
	// Announced is set when the pass put a new cause of shortfall on the
	// config's status and emitted staging.shortfall: once per change of
	// cause, over every replica.
	Announced *domain.Shortfall
	// DBNow is the database's clock when the pass decided; Plan.RetryAt
	// is on that clock.
	DBNow time.Time
	// Recovered is true when the pass took the config out of shortfall.
	Recovered bool
	// ScheduleChange is how long after the time the pass read the
	// config's schedule at a run of it next starts or ends, changing the
	// size the pool aims for (libs/schedule.NextChange); zero when none
	// ever does, or the config is deleted.
	ScheduleChange time.Duration
}
