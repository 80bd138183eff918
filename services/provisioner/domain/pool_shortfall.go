package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// ShortfallKind names why a staging pool cannot reach its desired size. It
// leads the staging config's last_error ("no_capacity: …"), so a change of
// kind — what an operator is told about once — can be read back from it.
type ShortfallKind string

const (
	// ShortNoCapacity: no enabled agent of the zone has room.
	ShortNoCapacity ShortfallKind = "no_capacity"
	// ShortWorkspaceDisabled: the workspace is disabled.
	ShortWorkspaceDisabled ShortfallKind = "workspace_disabled"
	// ShortImageMissing: the agent has no such image. Greenroom never
	// pulls images, so only building or loading it there helps.
	ShortImageMissing ShortfallKind = "image_missing"
	// ShortProvisioningFailed: creating, starting or probing the
	// container failed (an engine that did not answer, a container that
	// exited or never became ready).
	ShortProvisioningFailed ShortfallKind = "provisioning_failed"
	// ShortProvisioningTimeout: a session stayed in provisioning past the
	// expiry service's timeout.
	ShortProvisioningTimeout ShortfallKind = "provisioning_timeout"
)

// Shortfall is why a staging pool cannot reach its desired size.
type Shortfall struct {
	Kind ShortfallKind
	// Detail is the human-readable rest of the message.
	Detail string
	// Permanent means retrying cannot help until something changes (the
	// configuration, or an image built): the pool then retries rarely.
	Permanent bool
}

// Message is the staging config's last_error and the reason of
// staging.shortfall: "<kind>: <detail>".
func (s Shortfall) Message() string { return string(s.Kind) + ": " + s.Detail }

// ShortfallKindOf reads the kind back from a last_error written by
// Message; "" when there is none.
func ShortfallKindOf(lastError string) ShortfallKind {
	kind, _, ok := strings.Cut(lastError, ": ")
	if !ok {
		return ShortfallKind(lastError)
	}
	return ShortfallKind(kind)
}

// WorkspaceDisabled is the shortfall of a pool whose workspace is disabled.
func WorkspaceDisabled(workspace string) *Shortfall {
	return &Shortfall{Kind: ShortWorkspaceDisabled, Detail: "workspace " + workspace + " is disabled", Permanent: true}
}

// NoCapacity is the shortfall of a pool whose zone has room for only room
// of the deficit sessions it lacks; short says what stops more.
func NoCapacity(zone string, room, deficit int, short string) *Shortfall {
	if short == "" {
		short = "no room"
	}
	detail := zone + ": " + short
	if room > 0 {
		detail = fmt.Sprintf("%s: room for %d of the %d sessions missing, then %s", zone, room, deficit, short)
	}
	return &Shortfall{Kind: ShortNoCapacity, Detail: detail}
}

// imageMissingPrefix leads the failure detail of a session whose image the
// agent does not have, so that the pool's reconcile pass, reading the
// failure back from the sessions table, knows it is permanent.
const imageMissingPrefix = string(ShortImageMissing) + ": "

// ImageMissingDetail is the failure detail of a session whose image agent
// does not have.
func ImageMissingDetail(image, agent string) string {
	return imageMissingPrefix + "image " + image + " is not on agent " + agent +
		" (Greenroom never pulls images: build or load it there)"
}

// DiedYoungWithin is how soon after being staged a container's death
// counts as a failed creation of its pool (it crashes after its probe
// answered) rather than the end of a healthy session.
const DiedYoungWithin = 2 * time.Minute

// ContainerRemovedSightings are what a session's failure_reason records
// (after "container_gone: ") of a container that was removed rather than
// died: the audit finding it missing or being removed (JudgeContainer),
// the engine reporting it destroyed (JudgeContainerEvent). Someone —
// `make down`, an operator — removed it behind Greenroom's back; that says
// nothing about the containers its pool makes, so such a session never
// counts as a container that died young, however young it was. Only
// containers that ended on their own (exited, dead) do.
var ContainerRemovedSightings = []string{"missing", "being removed", "removed"}

// ShortfallOfFailure says what a failed creation, as recorded in the
// session's failure_reason, means for its pool.
func ShortfallOfFailure(recorded string) *Shortfall {
	reason, detail := events.ParseRecordedFailure(recorded)
	switch reason {
	case events.ReasonNoCapacity:
		if detail == "" {
			detail = "no enabled agent of the zone had room for the last session"
		}
		return &Shortfall{Kind: ShortNoCapacity, Detail: detail}
	case events.ReasonWorkspaceDisabled:
		if detail == "" {
			detail = "the workspace was disabled"
		}
		return &Shortfall{Kind: ShortWorkspaceDisabled, Detail: detail, Permanent: true}
	case events.ReasonContainerGone:
		// Only containers that died young count as failures (see
		// DiedYoungWithin), never removed ones (ContainerRemovedSightings).
		return &Shortfall{Kind: ShortProvisioningFailed,
			Detail: fmt.Sprintf("staged containers die within %s of starting: %s", DiedYoungWithin, detail)}
	case events.ReasonProvisioningTimeout:
		if detail == "" {
			detail = "the last session was not ready before the provisioning timeout"
		}
		return &Shortfall{Kind: ShortProvisioningTimeout, Detail: detail}
	}
	if rest, ok := strings.CutPrefix(detail, imageMissingPrefix); ok {
		return &Shortfall{Kind: ShortImageMissing, Detail: rest, Permanent: true}
	}
	if detail == "" {
		detail = "creating the last session's container failed"
	}
	return &Shortfall{Kind: ShortProvisioningFailed, Detail: detail}
}
