package domain

import "github.com/greenroom-dev/greenroom/libs/events"

// DestroyReason is the reason of the greenroom.session.destroy a reconcile
// pass sends for member id of the pool, one of its plan's Destroy: every
// session of a deleted staging config goes because the config was deleted
// (staging_config_deleted); a stale or unclaimable one, made with another
// revision of the pool's configuration, is replaced by the roll
// (pool_roll); a fresh one is beyond the pool's desired size
// (pool_shrink).
func (s PoolState) DestroyReason(id string) string {
	if s.Deleted {
		return events.DestroyReasonStagingConfigDeleted
	}
	for _, m := range s.Members {
		if m.ID == id && !m.fresh() {
			return events.DestroyReasonPoolRoll
		}
	}
	return events.DestroyReasonPoolShrink
}
