package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// PoolRevision names the configuration a staged container is made with:
// the workspace's revision (bumped by the database whenever a field that
// shapes its containers changes), and what the staging pool adds at the
// container's invocation — its seven permissions and its zone's
// allow_origin_domain and upstream_auth_address. It reads
// "<workspace revision>-<hash of the rest>", e.g. "7-3f2a9c1b0d4e", so an
// operator can tell which workspace revision a session has at a glance.
//
// A staged session recorded with another revision than its pool's current
// one is stale and is replaced by a rolling surge (PlanPool). A session
// with no revision (staged before revisions were recorded) is stale too:
// its container predates whatever this one would be made with.
func PoolRevision(workspaceRevision int64, perms events.Permissions, allowOriginDomain, upstreamAuthAddress string) string {
	// JSON of a struct has a fixed field order, and quoting keeps one
	// domain from running into the next.
	b, err := json.Marshal(struct {
		Permissions         events.Permissions `json:"permissions"`
		AllowOriginDomain   string             `json:"allow_origin_domain"`
		UpstreamAuthAddress string             `json:"upstream_auth_address"`
	}{perms, allowOriginDomain, upstreamAuthAddress})
	if err != nil {
		// Booleans and strings always marshal.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return strconv.FormatInt(workspaceRevision, 10) + "-" + hex.EncodeToString(sum[:6])
}
