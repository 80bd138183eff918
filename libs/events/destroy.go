package events

// Causes: why a session ended, as greenroom.session.destroyed says in its
// cause, and why a container was removed, as greenroom.container.removed
// says. A session.destroyed's reason is the destroy's own words, free text
// that any publisher of greenroom.session.destroy chooses; its cause is
// one of these, so that the audit log can be read without knowing every
// reason ever sent.
const (
	// CauseExpired: a staged session reached its staging config's
	// expiration and was replaced.
	CauseExpired = "expired"
	// CauseTimeLimit: a running session reached its group's
	// session_time_limit.
	CauseTimeLimit = "time_limit"
	// CauseKeepalive: a running session had no keepalive within its
	// group's keepalive_expiration.
	CauseKeepalive = "keepalive"
	// CauseShrunk: a staged session beyond its pool's desired size.
	CauseShrunk = "shrunk"
	// CauseRolled: a staged session made with another revision of its
	// pool's configuration (a workspace, permission or zone change),
	// replaced by the roll.
	CauseRolled = "rolled"
	// CauseDeleted: someone asked for the session's end: the admin API's
	// DELETE, the user's End at the gateway, its staging config deleted.
	CauseDeleted = "deleted"
	// CauseOrphan: a container whose session has no row or had ended,
	// removed by the orphan collector.
	CauseOrphan = "orphan"
	// CauseFailed: the container of a session that had failed was
	// removed.
	CauseFailed = "failed"
	// CauseProvisioningTimeout: the session stayed in provisioning past
	// its timeout; the expiry service failed it.
	CauseProvisioningTimeout = "provisioning_timeout"
	// CauseAssignTimeout: a claimed staged session stayed in assigning
	// past its timeout; the expiry service failed it.
	CauseAssignTimeout = "assign_timeout"
	// CauseOther: a reason no Greenroom service gives (an operator's own
	// greenroom.session.destroy, a test's). DestroyCause never returns it
	// for a reason of DestroyReasons.
	CauseOther = "other"
)

// DestroyCauses lists every cause of greenroom.session.destroyed, the
// schema's enum.
var DestroyCauses = []string{CauseExpired, CauseTimeLimit, CauseKeepalive, CauseShrunk, CauseRolled,
	CauseDeleted, CauseOrphan, CauseFailed, CauseProvisioningTimeout, CauseAssignTimeout, CauseOther}

// Reasons Greenroom's services give greenroom.session.destroy, besides
// the expiry reasons (ExpiryReasons) of greenroom.session.expired.
const (
	// DestroyReasonAPI: the admin API's DELETE /api/v1/sessions/{id}
	// (the config service).
	DestroyReasonAPI = "api"
	// DestroyReasonUser: the user ended the session at the gateway.
	DestroyReasonUser = "user"
	// DestroyReasonRetry: the expiry service asks again for the destroy
	// of a session stuck in destroying; the destroy that began it (and
	// its reason) is an earlier event of the log.
	DestroyReasonRetry = "destroy_retry"
	// DestroyReasonPoolShrink: a staged session beyond its pool's desired
	// size (the provisioner's reconciler).
	DestroyReasonPoolShrink = "pool_shrink"
	// DestroyReasonPoolRoll: a staged session made with another revision
	// of its pool's configuration, replaced by the roll.
	DestroyReasonPoolRoll = "pool_roll"
	// DestroyReasonStagingConfigDeleted: a session of a staging config
	// that was deleted.
	DestroyReasonStagingConfigDeleted = "staging_config_deleted"
)

// destroyCauses maps every reason a Greenroom service gives a destroy to
// its cause.
var destroyCauses = map[string]string{
	ExpiredStaged:       CauseExpired,
	ExpiredTimeLimit:    CauseTimeLimit,
	ExpiredKeepalive:    CauseKeepalive,
	ExpiredProvisioning: CauseProvisioningTimeout,
	ExpiredAssigning:    CauseAssignTimeout,

	DestroyReasonAPI:                  CauseDeleted,
	DestroyReasonUser:                 CauseDeleted,
	DestroyReasonStagingConfigDeleted: CauseDeleted,
	DestroyReasonPoolShrink:           CauseShrunk,
	DestroyReasonPoolRoll:             CauseRolled,
	// A retry finishes a destroy that was asked for and never done: the
	// session was ended on purpose, by whichever event began it (its
	// reason is not kept on the session row, so it cannot be told here).
	DestroyReasonRetry: CauseDeleted,
}

// DestroyReasons lists every reason Greenroom's services give a destroy:
// the expiry reasons and the DestroyReason* constants.
var DestroyReasons = []string{
	ExpiredStaged, ExpiredTimeLimit, ExpiredKeepalive, ExpiredProvisioning, ExpiredAssigning,
	DestroyReasonAPI, DestroyReasonUser, DestroyReasonRetry,
	DestroyReasonPoolShrink, DestroyReasonPoolRoll, DestroyReasonStagingConfigDeleted,
}

// DestroyCause is the cause of a live session's destroy given for reason:
// CauseOther for a reason no Greenroom service gives.
func DestroyCause(reason string) string {
	if c, ok := destroyCauses[reason]; ok {
		return c
	}
	return CauseOther
}

// DestroyCauseOfFailed is the cause of session.destroyed for a session
// that had failed before its container was removed: its failure ended it
// (CauseFailed), whatever the destroy's reason, unless the failure was the
// expiry service's timeout, whose session.expired is that destroy
// (CauseProvisioningTimeout, CauseAssignTimeout).
func DestroyCauseOfFailed(reason string) string {
	switch c := DestroyCause(reason); c {
	case CauseProvisioningTimeout, CauseAssignTimeout:
		return c
	}
	return CauseFailed
}
