package events

import "time"

// AuditCheckpoint is the payload of greenroom.audit.checkpoint: the audit
// notary (libs/audit) covered the stream sequences FirstSeq..LastSeq (but
// Missing) with one 8-byte digest per event (Digests, base64) and a SHA-256
// hash chain over them that continues PrevChain, the previous checkpoint's
// (libs/audit: the chain starts with a hash of every other field).
type AuditCheckpoint struct {
	Checkpoint int64   `json:"checkpoint"`
	FirstSeq   uint64  `json:"first_seq"`
	LastSeq    uint64  `json:"last_seq"`
	Events     int     `json:"events"`
	Missing    []int64 `json:"missing,omitempty"`
	// FirstTime and LastTime are when the server stored the first and
	// the last event covered; StreamCreated when the stream was created.
	FirstTime     time.Time `json:"first_time"`
	LastTime      time.Time `json:"last_time"`
	StreamCreated time.Time `json:"stream_created"`
	Digests       string    `json:"digests,omitempty"`
	PrevChain     string    `json:"prev_chain"`
	Chain         string    `json:"chain"`
}
